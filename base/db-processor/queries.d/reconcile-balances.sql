-- Accounts whose cached balance disagrees with the ledger.
SELECT a.id, a.asset, a.balance, COALESCE(SUM(l.amount), 0) AS ledger_balance
FROM account_balances a
LEFT JOIN ledger_entries l ON l.account_id = a.id AND l.asset = a.asset
GROUP BY a.id, a.asset, a.balance
HAVING a.balance <> COALESCE(SUM(l.amount), 0);
