-- A webhook event names the task whose change caused it (its own task.* events, and the asset.*
-- events of the asset it fills), so that a task's page can show the deliveries of its events.
-- Events written before this migration name none.
ALTER TABLE webhook_events ADD COLUMN task_id TEXT;

CREATE INDEX webhook_events_task ON webhook_events (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
CREATE INDEX webhook_log_delivery ON webhook_log (delivery_id, created_at);

-- A dashboard follows a project's task events and counts its tasks by phase.
CREATE INDEX task_events_project ON task_events (project_id, id);
CREATE INDEX tasks_project_phase ON tasks (project_id, phase);
