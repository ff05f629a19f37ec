-- SQLite's own queries; the rest are in ../queries.sql.  Writes run inside BEGIN IMMEDIATE, so a
-- claim holds the database's write lock from its SELECT to its UPDATE.

-- name: claim
-- waiting -> running for up to :limit runnable tasks of the given types, oldest run_at first,
-- from run_at :from_run_at on (where the store's claim cursor says the runnable ones start).
-- {types} is replaced by one placeholder per type.
UPDATE tasks
SET phase = 'running', attempt = attempt + 1, progress = NULL,
    lease_token = lower(hex(randomblob(16))), lease_expires_at = :lease_expires_at,
    worker_id = :worker_id, started_at = :now, updated_at = :now
WHERE id IN (
    SELECT id FROM tasks
    WHERE phase = 'waiting' AND run_at <= :now AND run_at >= :from_run_at AND type IN ({types})
    ORDER BY run_at, id
    LIMIT :limit
)
RETURNING *;

-- name: retry
-- failed|cancelled -> waiting with the retry count reset: a manual retry.  Not for a task whose
-- asset (the one it fills or the one it reads) is deleted: that asset never comes back.  (A
-- deletion runs in a write transaction of its own, before or after this one, never during it.)
UPDATE tasks
SET phase = 'waiting', retries = 0, rescues = 0, error_message = NULL, output = NULL,
    progress = NULL, scheduled_at = :now, run_at = :now, updated_at = :now
WHERE id = :id AND phase IN ('failed', 'cancelled')
  AND (CAST(:project_id AS TEXT) IS NULL OR project_id = :project_id)
  AND NOT EXISTS (
    SELECT 1 FROM assets AS a
    WHERE a.id IN (tasks.output_asset_id, tasks.input_asset_id)
      AND a.phase IN ('deleting', 'deleted'))
RETURNING *;

-- name: lost_tasks
-- Running tasks whose worker is gone: the lease expired, the caller knows the worker is dead
-- (:dead, a JSON array of worker ids), or the worker stopped.
SELECT *,
       CASE WHEN lease_expires_at < :now THEN 'its lease expired'
            WHEN worker_id IN (SELECT value FROM json_each(:dead))
                THEN 'its worker process is gone'
            ELSE 'its worker stopped' END AS lost_because
FROM tasks
WHERE phase = 'running'
  AND (lease_expires_at < :now
       OR worker_id IN (SELECT value FROM json_each(:dead))
       OR worker_id IN (SELECT id FROM workers WHERE stopped_at IS NOT NULL))
ORDER BY lease_expires_at
LIMIT :limit;

-- name: workers_stopped
-- Mark the workers that the rescuer found dead.
UPDATE workers SET stopped_at = :now
WHERE stopped_at IS NULL AND id IN (SELECT value FROM json_each(:dead));

-- name: complete_many
-- running -> completed for a batch (:batch, a JSON array of {id, token, output}), each guarded by
-- its lease token; what the store needs to know of the tasks that matched.
UPDATE tasks
SET phase = 'completed', output = json_extract(b.value, '$.output'), progress = 1.0,
    error_message = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = :now
FROM json_each(:batch) AS b
WHERE tasks.id = json_extract(b.value, '$.id') AND tasks.phase = 'running'
  AND tasks.lease_token = json_extract(b.value, '$.token')
RETURNING id, type, input_asset_id, output_asset_id;

-- name: extend_leases
-- Extend every lease of :held (a JSON array of {id, token}) that is still held; their ids.
UPDATE tasks SET lease_expires_at = :lease_expires_at
FROM json_each(:held) AS h
WHERE tasks.id = json_extract(h.value, '$.id') AND tasks.phase = 'running'
  AND tasks.lease_token = json_extract(h.value, '$.token')
RETURNING id;

-- name: insert_task_events
-- Append to the event log of tasks (:events, a JSON array of {task_id, name, data}), each with
-- its task's phase and progress as this transaction leaves them.
INSERT INTO task_events (task_id, project_id, name, phase, progress, at, data)
SELECT t.id, t.project_id, json_extract(e.value, '$.name'), t.phase, t.progress, :now,
       COALESCE(json_extract(e.value, '$.data'), '{}')
FROM json_each(:events) AS e
JOIN tasks AS t ON t.id = json_extract(e.value, '$.task_id')
ORDER BY e.key;

-- name: insert_task_outbox
-- Webhook events about tasks (:task_outbox, a JSON array of {task_id, name, success?}) that a live
-- webhook of the task's project subscribes to; the payload is the task's row.
INSERT INTO webhook_events (id, project_id, name, payload, created_at, task_id)
SELECT gen_random_uuid(), t.project_id, json_extract(e.value, '$.name'),
       json_patch(
           json_object('kind', 'task', 'row', json_object(
        'id', t.id,
        'project_id', t.project_id,
        'type', t.type,
        'phase', t.phase,
        'params', json(t.params),
        'output', json(t.output),
        'progress', t.progress,
        'retries', t.retries,
        'max_retries', t.max_retries,
        'attempt', t.attempt,
        'rescues', t.rescues,
        'error_message', t.error_message,
        'input_asset_id', t.input_asset_id,
        'output_asset_id', t.output_asset_id,
        'created_at', t.created_at,
        'updated_at', t.updated_at,
        'scheduled_at', t.scheduled_at,
        'run_at', t.run_at,
        'started_at', t.started_at,
        'lease_token', t.lease_token,
        'lease_expires_at', t.lease_expires_at,
        'worker_id', t.worker_id
           )),
           json_remove(e.value, '$.task_id', '$.name')),
       :now, t.id
FROM json_each(:task_outbox) AS e
JOIN tasks AS t ON t.id = json_extract(e.value, '$.task_id')
WHERE EXISTS (
    SELECT 1 FROM webhooks AS w, json_each(w.events) AS subscribed
    WHERE w.project_id = t.project_id AND w.deleted_at IS NULL
      AND subscribed.value = json_extract(e.value, '$.name'))
ORDER BY e.key;

-- name: insert_outbox
-- Webhook events with their payload (:outbox, a JSON array of {project_id, name, payload}) that a
-- live webhook of their project subscribes to.
INSERT INTO webhook_events (id, project_id, name, payload, created_at, task_id)
SELECT gen_random_uuid(), json_extract(e.value, '$.project_id'), json_extract(e.value, '$.name'),
       json_extract(e.value, '$.payload'), :now, json_extract(e.value, '$.task_id')
FROM json_each(:outbox) AS e
WHERE EXISTS (
    SELECT 1 FROM webhooks AS w, json_each(w.events) AS subscribed
    WHERE w.project_id = json_extract(e.value, '$.project_id') AND w.deleted_at IS NULL
      AND subscribed.value = json_extract(e.value, '$.name'))
ORDER BY e.key;

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

-- name: lock_url_import
-- Nothing to take: every write already holds the database's lock from BEGIN IMMEDIATE on.
SELECT 1;

-- name: assets_by_id
-- The live assets among :ids (a JSON array of asset ids).
SELECT * FROM assets WHERE id IN (SELECT value FROM json_each(:ids)) AND phase <> 'deleted';
