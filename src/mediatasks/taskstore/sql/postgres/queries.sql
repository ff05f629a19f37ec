-- PostgreSQL's own queries; the rest are in ../queries.sql.

-- name: claim
-- waiting -> running for up to :limit runnable tasks of the given types, oldest run_at first.
-- SKIP LOCKED lets many workers claim at once without waiting on each other's rows.
-- {types} is replaced by one placeholder per type.
WITH picked AS (
    SELECT id FROM tasks
    WHERE phase = 'waiting' AND run_at <= :now AND type IN ({types})
    ORDER BY run_at, id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE tasks
SET phase = 'running', attempt = attempt + 1, progress = NULL,
    lease_token = gen_random_uuid()::text, lease_expires_at = :lease_expires_at,
    worker_id = :worker_id, started_at = :now, updated_at = :now
FROM picked
WHERE tasks.id = picked.id
RETURNING tasks.*;

-- name: expired_leases
-- Running tasks whose lease has expired, locked so that two rescuers never take the same one.
SELECT * FROM tasks
WHERE phase = 'running' AND lease_expires_at < :now
ORDER BY lease_expires_at
LIMIT :limit
FOR UPDATE SKIP LOCKED;

-- name: notify_work
-- Wake idle workers; delivered when the transaction commits.
SELECT pg_notify('mediatasks_work', '');

-- name: undispatched_events
-- Outbox events not yet fanned out to webhooks, oldest first; locked for one dispatcher.
SELECT * FROM webhook_events WHERE dispatched_at IS NULL ORDER BY created_at, id LIMIT :limit
FOR UPDATE SKIP LOCKED;

-- name: claim_deliveries
-- Lock due webhook deliveries for one sender until :locked_until.
WITH picked AS (
    SELECT id FROM webhook_deliveries
    WHERE state = 'pending' AND next_attempt_at <= :now
      AND (locked_until IS NULL OR locked_until < :now)
    ORDER BY next_attempt_at, id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries SET locked_until = :locked_until, updated_at = :now
FROM picked
WHERE webhook_deliveries.id = picked.id
RETURNING webhook_deliveries.*;

-- name: ping
-- One round trip to the server: a readiness check.
SELECT 1 AS n;
