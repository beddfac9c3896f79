-- Move matched trades from the engine's outbox into the ledger, in batches.
WITH batch AS (
    SELECT id FROM trade_outbox
    WHERE settled_at IS NULL
    ORDER BY id
    LIMIT :batch_size
    FOR UPDATE SKIP LOCKED
)
INSERT INTO ledger_entries (trade_id, account_id, asset, amount, created_at)
SELECT t.id, t.account_id, t.asset, t.amount, now()
FROM trade_outbox t JOIN batch b ON b.id = t.id;
