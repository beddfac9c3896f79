-- Daily trade report for the regulator (prod only).
SELECT t.id, t.symbol, t.price, t.quantity, t.buyer_account_id, t.seller_account_id, t.executed_at
FROM trades t
WHERE t.executed_at >= date_trunc('day', now() - interval '1 day')
  AND t.executed_at <  date_trunc('day', now())
ORDER BY t.executed_at;
