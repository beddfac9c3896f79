-- Move fills older than 90 days to the archive table.
WITH moved AS (
    DELETE FROM fills
    WHERE executed_at < now() - interval '90 days'
    RETURNING *
)
INSERT INTO fills_archive SELECT * FROM moved;
