-- Webhooks, their outbox and delivery log; the same in both dialects.

-- name: insert_webhook
-- Create a webhook.
INSERT INTO webhooks (id, project_id, name, url, events, shared_secret, created_at, updated_at)
VALUES (:id, :project_id, :name, :url, :events, :shared_secret, :now, :now)
RETURNING *;

-- name: get_webhook
-- One live webhook of a project.
SELECT * FROM webhooks WHERE id = :id AND project_id = :project_id AND deleted_at IS NULL;

-- name: list_webhooks
-- The live webhooks of a project, newest first.
SELECT * FROM webhooks WHERE project_id = :project_id AND deleted_at IS NULL
ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset;

-- name: project_webhooks
-- The live webhooks of one project, for fanning out its events.
SELECT * FROM webhooks WHERE project_id = :project_id AND deleted_at IS NULL;

-- name: update_webhook
-- Replace a live webhook's settings; a null :shared_secret keeps the one it has.
UPDATE webhooks
SET name = :name, url = :url, events = :events,
    shared_secret = COALESCE(CAST(:shared_secret AS TEXT), shared_secret), updated_at = :now
WHERE id = :id AND project_id = :project_id AND deleted_at IS NULL
RETURNING *;

-- name: delete_webhook
-- Delete a webhook (kept for its log) and stop its pending deliveries.
UPDATE webhooks SET deleted_at = :now, updated_at = :now
WHERE id = :id AND project_id = :project_id AND deleted_at IS NULL
RETURNING *;

-- name: drop_pending_deliveries
-- A deleted webhook receives nothing more.
UPDATE webhook_deliveries SET state = 'failed', updated_at = :now
WHERE webhook_id = :webhook_id AND state = 'pending';

-- name: insert_delivery
-- One event to send to one webhook; locked at once when the caller sends it itself.
INSERT INTO webhook_deliveries (id, webhook_id, event_id, project_id, state, next_attempt_at,
                                locked_until, created_at, updated_at)
VALUES (:id, :webhook_id, :event_id, :project_id, 'pending', :now, :locked_until, :now, :now)
RETURNING *;

-- name: get_webhook_event
-- One outbox event.
SELECT * FROM webhook_events WHERE id = :id;

-- name: finish_attempt
-- Record the outcome of one delivery attempt by the sender that holds it.
UPDATE webhook_deliveries
SET state = :state, attempts = attempts + 1, next_attempt_at = :next_attempt_at,
    locked_until = NULL, updated_at = :now
WHERE id = :id AND state = 'pending' AND locked_until = :locked_until
RETURNING *;

-- name: insert_webhook_log
-- One delivery attempt, as sent and as answered.
INSERT INTO webhook_log (id, webhook_id, delivery_id, event_id, event, project_id, created_at,
                         duration_ms, success, request, response)
VALUES (:id, :webhook_id, :delivery_id, :event_id, :event, :project_id, :now, :duration_ms,
        :success, :request, :response)
RETURNING *;

-- name: webhook_triggered
-- Remember when a webhook was last called and how it last failed.
UPDATE webhooks
SET last_triggered_at = :now,
    last_failure = CASE WHEN :success THEN last_failure ELSE :failure END
WHERE id = :id;

-- name: list_webhook_log
-- A webhook's delivery attempts, newest first.
SELECT * FROM webhook_log WHERE webhook_id = :webhook_id AND project_id = :project_id
ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset;

-- name: list_webhook_log_by_outcome
-- A webhook's delivery attempts that succeeded (or failed), newest first.
SELECT * FROM webhook_log
WHERE webhook_id = :webhook_id AND project_id = :project_id AND success = :success
ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset;

-- name: get_webhook_log
-- One delivery attempt.
SELECT * FROM webhook_log WHERE id = :id AND webhook_id = :webhook_id AND project_id = :project_id;

-- name: queue_position
-- How many runnable tasks are ahead of a waiting one, plus one.
SELECT count(*) + 1 AS n FROM tasks
WHERE phase = 'waiting' AND (run_at < :run_at OR (run_at = :run_at AND id < :id));

-- name: task_deliveries
-- The deliveries of the webhook events a task caused, oldest event first, each with its last
-- attempt's answer.
SELECT d.id, d.webhook_id, w.name AS webhook_name, w.url AS webhook_url, d.event_id,
       e.name AS event, e.created_at AS event_at, d.state, d.attempts, d.updated_at,
       (SELECT l.response FROM webhook_log AS l WHERE l.delivery_id = d.id
        ORDER BY l.created_at DESC, l.id DESC LIMIT 1) AS last_response,
       (SELECT max(l.created_at) FROM webhook_log AS l WHERE l.delivery_id = d.id)
           AS last_attempt_at
FROM webhook_events AS e
JOIN webhook_deliveries AS d ON d.event_id = e.id
JOIN webhooks AS w ON w.id = d.webhook_id
WHERE e.task_id = :task_id AND e.project_id = :project_id
ORDER BY e.created_at, d.created_at, e.id, d.id
LIMIT :limit;
