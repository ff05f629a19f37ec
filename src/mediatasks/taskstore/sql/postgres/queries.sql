-- PostgreSQL's own queries; the rest are in ../queries.sql.

-- name: claim
-- waiting -> running for up to :limit runnable tasks of the given types, oldest run_at first,
-- from run_at :from_run_at on (where the store's claim cursor says the runnable ones start).
-- SKIP LOCKED lets many workers claim at once without waiting on each other's rows.
-- {types} is replaced by one placeholder per type.
WITH picked AS (
    SELECT id FROM tasks
    WHERE phase = 'waiting' AND run_at <= :now AND run_at >= :from_run_at AND type IN ({types})
    ORDER BY run_at, id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE tasks
SET phase = 'running', attempt = attempt + 1, progress = NULL,
    lease_token = gen_random_uuid()::text, lease_expires_at = :lease_expires_at,
    worker_id = :worker_id, started_at = :now, updated_at = :now
-- (An array of the picked ids, not a join: the planner then finds them by their key instead of
-- reading the whole table.)
WHERE tasks.id = ANY (ARRAY(SELECT id FROM picked))
RETURNING tasks.*;

-- name: claim_with_changes
-- The same claim, writing in the same statement what sqlstore asks for each claimed task: the
-- event :event (with the worker and the attempt) and the webhook events :task_outbox (a JSON array
-- of names) that a live webhook of the task's project subscribes to.  One round trip less on the
-- path from a new task to its handler.
WITH picked AS (
    SELECT id FROM tasks
    WHERE phase = 'waiting' AND run_at <= :now AND run_at >= :from_run_at AND type IN ({types})
    ORDER BY run_at, id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE tasks
    SET phase = 'running', attempt = attempt + 1, progress = NULL,
        lease_token = gen_random_uuid()::text, lease_expires_at = :lease_expires_at,
        worker_id = :worker_id, started_at = :now, updated_at = :now
    WHERE tasks.id = ANY (ARRAY(SELECT id FROM picked))
    RETURNING tasks.*
), events AS (
    INSERT INTO task_events (task_id, project_id, name, phase, progress, at, data)
    SELECT id, project_id, :event, phase, progress, :now,
           jsonb_build_object('worker', worker_id, 'attempt', attempt)
    FROM claimed ORDER BY run_at, id
), task_outbox AS (
    INSERT INTO webhook_events (id, project_id, name, payload, created_at, task_id)
    SELECT gen_random_uuid()::text, c.project_id, n.name,
           jsonb_build_object('kind', 'task', 'row', to_jsonb(c)), :now, c.id
    FROM claimed AS c
    CROSS JOIN jsonb_array_elements_text(CAST(:task_outbox AS jsonb)) AS n(name)
    WHERE EXISTS (
        SELECT 1 FROM webhooks AS w
        WHERE w.project_id = c.project_id AND w.deleted_at IS NULL AND w.events ? n.name)
)
SELECT * FROM claimed ORDER BY run_at, id;

-- name: lost_tasks
-- Running tasks whose worker is gone: the lease expired, the caller knows the worker is dead
-- (:dead, a JSON array of worker ids), the worker stopped, or its session is gone.  A worker's
-- session holds an advisory lock on its lock_key while it lives: a worker that has been silent
-- since :stale and whose lock can be taken is dead (unless the server itself started after
-- :stale, when the survivors may not have reconnected yet).  For the same reason a lease is not
-- over while the server started less than :now - :stale ago: leases run out while the server is
-- down, and their workers, alive, reconnect, beat and save what they finished within that time
-- (taking their tasks back would run finished work again).  Locked so that two rescuers never
-- take the same task.
WITH gone AS MATERIALIZED (
    SELECT id FROM workers
    WHERE id IN (SELECT worker_id FROM tasks WHERE phase = 'running')
      AND CASE
            WHEN stopped_at IS NOT NULL THEN true
            WHEN last_seen_at < :stale
                 AND pg_postmaster_start_time() < to_timestamp(:stale / 1000.0)
                THEN pg_try_advisory_xact_lock(lock_key)
            ELSE false
          END
)
SELECT *,
       CASE WHEN lease_expires_at < :now THEN 'its lease expired'
            WHEN worker_id IN (SELECT id FROM gone) THEN 'its worker stopped or lost its session'
            ELSE 'its worker process is gone' END AS lost_because
FROM tasks
WHERE phase = 'running'
  AND ((lease_expires_at < :now
        AND NOT pg_postmaster_start_time()
                BETWEEN to_timestamp(:stale / 1000.0) AND to_timestamp(:now / 1000.0))
       OR worker_id = ANY (ARRAY(SELECT jsonb_array_elements_text(CAST(:dead AS jsonb))))
       OR worker_id IN (SELECT id FROM gone))
ORDER BY lease_expires_at
LIMIT :limit
FOR UPDATE OF tasks SKIP LOCKED;

-- name: workers_stopped
-- Mark the workers that the rescuer found dead.
UPDATE workers SET stopped_at = :now
WHERE stopped_at IS NULL AND id IN (SELECT jsonb_array_elements_text(CAST(:dead AS jsonb)));

-- name: complete_many
-- running -> completed for a batch (:batch, a JSON array of {id, token, output}), each guarded by
-- its lease token; what the store needs to know of the tasks that matched.  Rows are locked in
-- the order of their ids, as in extend_leases: a worker's beat and its completions touch the same
-- rows at the same time, and would deadlock in different orders.
WITH batch AS (
    SELECT b.value ->> 'id' AS id, b.value ->> 'token' AS token, b.value -> 'output' AS output
    FROM jsonb_array_elements(CAST(:batch AS jsonb)) AS b(value)
), locked AS (
    SELECT id FROM tasks WHERE id = ANY (ARRAY(SELECT id FROM batch)) ORDER BY id FOR UPDATE
)
UPDATE tasks
SET phase = 'completed', output = batch.output, progress = 1.0, error_message = NULL,
    lease_token = NULL, lease_expires_at = NULL, updated_at = :now
FROM batch
WHERE tasks.id = ANY (ARRAY(SELECT id FROM locked))
  AND tasks.id = batch.id AND tasks.phase = 'running' AND tasks.lease_token = batch.token
RETURNING tasks.id, tasks.type, tasks.input_asset_id, tasks.output_asset_id;

-- name: extend_leases
-- Extend every lease of :held (a JSON array of {id, token}) that is still held; their ids.
-- Rows are locked in the order of their ids (see complete_many).
WITH held AS (
    SELECT h.value ->> 'id' AS id, h.value ->> 'token' AS token
    FROM jsonb_array_elements(CAST(:held AS jsonb)) AS h(value)
), locked AS (
    SELECT id FROM tasks WHERE id = ANY (ARRAY(SELECT id FROM held)) ORDER BY id FOR UPDATE
)
UPDATE tasks SET lease_expires_at = :lease_expires_at
FROM held
WHERE tasks.id = ANY (ARRAY(SELECT id FROM locked))
  AND tasks.id = held.id AND tasks.phase = 'running' AND tasks.lease_token = held.token
RETURNING tasks.id;

-- name: insert_changes
-- What one transaction collected, in one statement: its task events (:events, a JSON array of
-- {task_id, name, data}, each with its task's phase and progress as the transaction leaves
-- them), its webhook events about tasks (:task_outbox, {task_id, name, success?}, the payload
-- being the task's row) and other webhook events (:outbox, {project_id, name, payload}), each
-- written only when a live webhook of its project subscribes to it; and NOTIFY when :wake.
WITH events AS (
    INSERT INTO task_events (task_id, project_id, name, phase, progress, at, data)
    SELECT t.id, t.project_id, e.value ->> 'name', t.phase, t.progress, :now,
           COALESCE(e.value -> 'data', '{}'::jsonb)
    FROM jsonb_array_elements(CAST(:events AS jsonb)) WITH ORDINALITY AS e(value, ord)
    JOIN tasks AS t ON t.id = e.value ->> 'task_id'
    -- The array lets the planner find the tasks by their key, whatever it guesses of the batch.
    WHERE t.id = ANY (ARRAY(SELECT jsonb_array_elements(CAST(:events AS jsonb)) ->> 'task_id'))
    ORDER BY e.ord
), task_outbox AS (
    INSERT INTO webhook_events (id, project_id, name, payload, created_at, task_id)
    SELECT gen_random_uuid()::text, t.project_id, e.value ->> 'name',
           jsonb_build_object('kind', 'task', 'row', to_jsonb(t))
               || (e.value - 'task_id' - 'name'),
           :now, t.id
    FROM jsonb_array_elements(CAST(:task_outbox AS jsonb)) WITH ORDINALITY AS e(value, ord)
    JOIN tasks AS t ON t.id = e.value ->> 'task_id'
    WHERE t.id = ANY (ARRAY(SELECT jsonb_array_elements(CAST(:task_outbox AS jsonb)) ->> 'task_id'))
      AND EXISTS (
        SELECT 1 FROM webhooks AS w
        WHERE w.project_id = t.project_id AND w.deleted_at IS NULL
          AND w.events ? (e.value ->> 'name'))
    ORDER BY e.ord
), outbox AS (
    INSERT INTO webhook_events (id, project_id, name, payload, created_at, task_id)
    SELECT gen_random_uuid()::text, e.value ->> 'project_id', e.value ->> 'name',
           e.value -> 'payload', :now, e.value ->> 'task_id'
    FROM jsonb_array_elements(CAST(:outbox AS jsonb)) WITH ORDINALITY AS e(value, ord)
    WHERE EXISTS (
        SELECT 1 FROM webhooks AS w
        WHERE w.project_id = e.value ->> 'project_id' AND w.deleted_at IS NULL
          AND w.events ? (e.value ->> 'name'))
    ORDER BY e.ord
)
SELECT CASE WHEN CAST(:wake AS BOOLEAN) THEN pg_notify('mediatasks_work', '') END;

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
WHERE webhook_deliveries.id = ANY (ARRAY(SELECT id FROM picked))
RETURNING webhook_deliveries.*;

-- name: retry
-- failed|cancelled -> waiting with the retry count reset: a manual retry.  Not for a task whose
-- asset (the one it fills or the one it reads) is deleted: that asset never comes back.
-- The task's assets are locked first, whatever their phase: a deletion not committed yet holds
-- its asset's row, so the retry waits for it and then reads the row it committed (deleted);
-- a deletion that comes second waits for the retry and then cancels the task it made waiting.
-- (A snapshot alone would miss the deletion: READ COMMITTED.)  FOR NO KEY UPDATE rather than
-- FOR SHARE, because the retry goes on to update these rows (its asset follows the task): two
-- retries sharing an asset then take turns instead of deadlocking on the upgrade.
WITH locked AS MATERIALIZED (
    SELECT a.phase FROM tasks AS t
    JOIN assets AS a ON a.id IN (t.output_asset_id, t.input_asset_id)
    WHERE t.id = :id
    FOR NO KEY UPDATE OF a
)
UPDATE tasks
SET phase = 'waiting', retries = 0, rescues = 0, error_message = NULL, output = NULL,
    progress = NULL, scheduled_at = :now, run_at = :now, updated_at = :now
WHERE id = :id AND phase IN ('failed', 'cancelled')
  AND (CAST(:project_id AS TEXT) IS NULL OR project_id = :project_id)
  AND NOT EXISTS (SELECT 1 FROM locked WHERE phase IN ('deleting', 'deleted'))
RETURNING *;

-- name: lock_active_tasks_of_asset
-- Lock the unfinished tasks that fill an asset, in the order of their ids, before the asset is
-- marked deleted: a task's own transitions (a worker's outcome, a claim, a cancel) lock the
-- task's row and then its asset's (the asset follows its task), so a deletion that took the
-- asset first and then waited for such a task would deadlock with it.
SELECT id FROM tasks
WHERE output_asset_id = :asset_id AND project_id = :project_id
  AND phase IN ('pending', 'waiting', 'running')
ORDER BY id
FOR UPDATE;

-- name: ping
-- One round trip to the server: a readiness check.
SELECT 1 AS n;

-- name: lock_url_import
-- Held until the transaction ends: imports of one URL into one project take turns.
SELECT pg_advisory_xact_lock(hashtextextended(:project_id || ' ' || :url, 0));

-- name: assets_by_id
-- The live assets among :ids (a JSON array of asset ids).
SELECT * FROM assets WHERE id IN (SELECT jsonb_array_elements_text(CAST(:ids AS jsonb))) AND phase <> 'deleted';
