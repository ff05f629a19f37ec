-- Queries that read the same in SQLite and PostgreSQL.  Each starts with "-- name: <name>" and a
-- one-line description.  Parameters are written :name; the PostgreSQL backend rewrites them.
-- Times are Unix milliseconds.  Every phase change is guarded by the phase it leaves (and by the
-- lease token for a worker's transitions): a change that matches no row returns nothing, and the
-- store raises.

-- name: insert_project
-- Create a project.
INSERT INTO projects (id, name, created_at) VALUES (:id, :name, :now)
RETURNING *;

-- name: list_projects
-- Every project, oldest first.
SELECT * FROM projects ORDER BY created_at, id;

-- name: insert_api_key
-- Create an API key; only the hash of its secret is kept.
INSERT INTO api_keys (id, project_id, name, secret_hash, created_at)
VALUES (:id, :project_id, :name, :secret_hash, :now)
RETURNING *;

-- name: list_api_keys
-- The keys of one project, or of all when :project_id is null.
SELECT * FROM api_keys
WHERE CAST(:project_id AS TEXT) IS NULL OR project_id = :project_id
ORDER BY created_at, id;

-- name: revoke_api_key
-- Revoke a live key.
UPDATE api_keys SET revoked_at = :now
WHERE id = :id AND revoked_at IS NULL
RETURNING *;

-- name: authenticate
-- The live key whose secret hashes to :secret_hash.
SELECT * FROM api_keys WHERE secret_hash = :secret_hash AND revoked_at IS NULL;

-- name: insert_task
-- Create a task, pending or waiting.
INSERT INTO tasks (id, project_id, type, phase, params, max_retries, input_asset_id,
                   output_asset_id, created_at, updated_at, scheduled_at, run_at)
VALUES (:id, :project_id, :type, :phase, :params, :max_retries, :input_asset_id,
        :output_asset_id, :now, :now, :scheduled_at, :now)
RETURNING *;

-- name: get_task
-- One task, in one project when :project_id is given.
SELECT * FROM tasks
WHERE id = :id AND (CAST(:project_id AS TEXT) IS NULL OR project_id = :project_id);

-- name: list_events
-- A task's events after :after_id, oldest first.
SELECT * FROM task_events WHERE task_id = :task_id AND id > :after_id ORDER BY id LIMIT :limit;

-- name: list_project_events
-- The events of a project's tasks after :after_id, oldest first (a dashboard follows them).
SELECT * FROM task_events WHERE project_id = :project_id AND id > :after_id ORDER BY id
LIMIT :limit;

-- name: last_event_id
-- The id of a project's latest task event (0 without one): where following it starts.
SELECT COALESCE(max(id), 0) AS n FROM task_events WHERE project_id = :project_id;

-- name: count_project_tasks
-- A project's tasks by phase; the caller may replace "1 = 1" with a condition on their type.
SELECT phase, count(*) AS n FROM tasks WHERE project_id = :project_id AND 1 = 1 GROUP BY phase;

-- name: schedule
-- pending -> waiting: the task's input is complete.
UPDATE tasks SET phase = 'waiting', scheduled_at = :now, run_at = :now, updated_at = :now
WHERE id = :id AND phase = 'pending'
RETURNING *;

-- name: heartbeat
-- Extend a running task's lease and record its progress, which never goes down.
UPDATE tasks
SET lease_expires_at = :lease_expires_at,
    updated_at = :now,
    progress = CASE
        WHEN CAST(:progress AS DOUBLE PRECISION) IS NULL THEN progress
        WHEN progress IS NULL OR CAST(:progress AS DOUBLE PRECISION) > progress
            THEN CAST(:progress AS DOUBLE PRECISION)
        ELSE progress END
WHERE id = :id AND phase = 'running' AND lease_token = :lease_token
RETURNING *;

-- name: complete
-- running -> completed, by the lease holder.
UPDATE tasks
SET phase = 'completed', output = :output, progress = 1.0, error_message = NULL,
    lease_token = NULL, lease_expires_at = NULL, updated_at = :now
WHERE id = :id AND phase = 'running' AND lease_token = :lease_token
RETURNING *;

-- name: fail
-- running -> failed, by the lease holder (or the rescuer, which presents the expired token).
UPDATE tasks
SET phase = 'failed', error_message = :error_message,
    lease_token = NULL, lease_expires_at = NULL, updated_at = :now
WHERE id = :id AND phase = 'running' AND lease_token = :lease_token
RETURNING *;

-- name: retry_later
-- running -> waiting with one more retry counted, runnable from :run_at.
UPDATE tasks
SET phase = 'waiting', retries = retries + 1, error_message = :error_message,
    progress = NULL, run_at = :run_at,
    lease_token = NULL, lease_expires_at = NULL, updated_at = :now
WHERE id = :id AND phase = 'running' AND lease_token = :lease_token
RETURNING *;

-- name: release
-- running -> waiting without counting the attempt: the worker is shutting down.
UPDATE tasks
SET phase = 'waiting', attempt = attempt - 1, progress = NULL, run_at = :now,
    lease_token = NULL, lease_expires_at = NULL, worker_id = NULL, updated_at = :now
WHERE id = :id AND phase = 'running' AND lease_token = :lease_token
RETURNING *;

-- name: rescue_later
-- running -> waiting, runnable at once: the task's worker is gone, which is not the input's fault,
-- so no retry is spent; the rescue is counted instead.
UPDATE tasks
SET phase = 'waiting', rescues = rescues + 1, error_message = :error_message, progress = NULL,
    run_at = :now, lease_token = NULL, lease_expires_at = NULL, updated_at = :now
WHERE id = :id AND phase = 'running' AND lease_token = :lease_token
RETURNING *;

-- name: cancel
-- pending|waiting|running -> cancelled, by the user.
UPDATE tasks
SET phase = 'cancelled', error_message = 'task cancelled', progress = NULL,
    lease_token = NULL, lease_expires_at = NULL, updated_at = :now
WHERE id = :id AND phase IN ('pending', 'waiting', 'running')
  AND (CAST(:project_id AS TEXT) IS NULL OR project_id = :project_id)
RETURNING *;

-- name: count_tasks
-- How many tasks there are, in one phase when :phase is given.
SELECT count(*) AS n FROM tasks WHERE CAST(:phase AS TEXT) IS NULL OR phase = :phase;

-- name: queue_depth
-- Unfinished tasks by type and phase, of one project or of all when :project_id is null.
SELECT type, phase, count(*) AS n FROM tasks
WHERE phase IN ('pending', 'waiting', 'running')
  AND (CAST(:project_id AS TEXT) IS NULL OR project_id = :project_id)
GROUP BY type, phase;

-- name: finished_counts
-- A project's tasks now completed or failed whose finish (their last change) is from :since
-- (included) to :until (excluded), counted per interval of :interval_ms (0 = the first).
SELECT (updated_at - :since) / :interval_ms AS slot, phase, count(*) AS n FROM tasks
WHERE project_id = :project_id AND phase IN ('completed', 'failed')
  AND updated_at >= :since AND updated_at < :until
GROUP BY slot, phase;

-- name: insert_asset
-- Create an asset.
INSERT INTO assets (id, project_id, name, playback_id, phase, source, options, storage,
                    created_at, updated_at)
VALUES (:id, :project_id, :name, :playback_id, :phase, :source, :options, :storage, :now, :now)
RETURNING *;

-- name: get_asset
-- One live asset, in one project when :project_id is given.
SELECT * FROM assets
WHERE id = :id AND phase <> 'deleted'
  AND (CAST(:project_id AS TEXT) IS NULL OR project_id = :project_id);

-- name: mirror_asset
-- Make an asset follow its task's phase (never once it is being deleted).
UPDATE assets
SET phase = :phase, progress = :progress, error_message = :error_message, updated_at = :now
WHERE id = :id AND phase NOT IN ('deleting', 'deleted')
RETURNING *;

-- name: asset_progress
-- Mirror a running task's progress on its asset; it never goes down.
UPDATE assets
SET progress = CASE WHEN progress IS NULL OR CAST(:progress AS DOUBLE PRECISION) > progress
                    THEN CAST(:progress AS DOUBLE PRECISION) ELSE progress END,
    updated_at = :now
WHERE id = :id AND phase = 'processing'
RETURNING *;

-- name: asset_ready
-- The asset's task completed: record what it produced.
UPDATE assets
SET phase = 'ready', progress = NULL, error_message = NULL, media = :media, updated_at = :now
WHERE id = :id AND phase NOT IN ('deleting', 'deleted')
RETURNING *;

-- name: delete_asset
-- Mark an asset deleted.
UPDATE assets SET phase = 'deleted', deleted_at = :now, updated_at = :now
WHERE id = :id AND project_id = :project_id AND phase <> 'deleted'
RETURNING *;

-- name: active_tasks_of_asset
-- The unfinished tasks that fill an asset.
SELECT * FROM tasks
WHERE output_asset_id = :asset_id AND phase IN ('pending', 'waiting', 'running');

-- name: register_worker
-- Enter a starting worker in the registry.
INSERT INTO workers (id, host, node, pid, lock_key, started_at, last_seen_at)
VALUES (:id, :host, :node, :pid, :lock_key, :now, :now);

-- name: worker_seen
-- A worker's beat: it is alive now.
UPDATE workers SET last_seen_at = :now WHERE id = :worker_id;

-- name: deregister_worker
-- A worker stopped cleanly: it holds nothing.
UPDATE workers SET stopped_at = :now, last_seen_at = :now WHERE id = :id;

-- name: list_workers
-- Workers seen since :since, latest first.
SELECT * FROM workers WHERE last_seen_at >= :since ORDER BY last_seen_at DESC, id;

-- name: running_of_workers
-- What the workers seen since :since are running.
SELECT t.id, t.project_id, t.type, t.progress, t.started_at, t.worker_id
FROM tasks AS t JOIN workers AS w ON w.id = t.worker_id
WHERE t.phase = 'running' AND w.last_seen_at >= :since
ORDER BY t.started_at, t.id;

-- name: forget_workers
-- Registry rows of workers not seen for a long time.
DELETE FROM workers WHERE last_seen_at < :before;
