-- SQLite's own queries; the rest are in ../queries.sql.  Writes run inside BEGIN IMMEDIATE, so a
-- claim holds the database's write lock from its SELECT to its UPDATE.

-- name: claim
-- waiting -> running for up to :limit runnable tasks of the given types, oldest run_at first.
-- {types} is replaced by one placeholder per type.
UPDATE tasks
SET phase = 'running', attempt = attempt + 1, progress = NULL,
    lease_token = lower(hex(randomblob(16))), lease_expires_at = :lease_expires_at,
    worker_id = :worker_id, started_at = :now, updated_at = :now
WHERE id IN (
    SELECT id FROM tasks
    WHERE phase = 'waiting' AND run_at <= :now AND type IN ({types})
    ORDER BY run_at, id
    LIMIT :limit
)
RETURNING *;

-- name: expired_leases
-- Running tasks whose lease has expired.
SELECT * FROM tasks
WHERE phase = 'running' AND lease_expires_at < :now
ORDER BY lease_expires_at
LIMIT :limit;

-- name: undispatched_events
-- Outbox events not yet fanned out to webhooks, oldest first.
SELECT * FROM webhook_events WHERE dispatched_at IS NULL ORDER BY created_at, id LIMIT :limit;

-- name: claim_deliveries
-- Lock due webhook deliveries for one sender until :locked_until.
UPDATE webhook_deliveries SET locked_until = :locked_until, updated_at = :now
WHERE id IN (
    SELECT id FROM webhook_deliveries
    WHERE state = 'pending' AND next_attempt_at <= :now
      AND (locked_until IS NULL OR locked_until < :now)
    ORDER BY next_attempt_at, id
    LIMIT :limit
)
RETURNING *;

-- name: ping
-- One round trip to the database (it reads the file's schema page): a readiness check.
SELECT count(*) AS n FROM sqlite_master;
