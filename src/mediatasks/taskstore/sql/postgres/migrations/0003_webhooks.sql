-- Webhooks and their outbox: events are written in the transaction of the change that caused
-- them, fanned out to subscribed webhooks as deliveries, and every delivery attempt is logged.
ALTER TABLE tasks ADD COLUMN started_at BIGINT;

CREATE TABLE webhooks (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL,
    name           TEXT NOT NULL,
    url            TEXT NOT NULL,
    events         JSONB NOT NULL,
    shared_secret  TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    deleted_at     BIGINT,
    last_triggered_at  BIGINT,
    last_failure   JSONB
);

CREATE INDEX webhooks_project ON webhooks (project_id) WHERE deleted_at IS NULL;

CREATE TABLE webhook_events (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL,
    name           TEXT NOT NULL,
    payload        JSONB NOT NULL,
    created_at     BIGINT NOT NULL,
    dispatched_at  BIGINT
);

CREATE INDEX webhook_events_undispatched ON webhook_events (created_at)
    WHERE dispatched_at IS NULL;

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    webhook_id       TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    project_id       TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    locked_until     BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';

CREATE TABLE webhook_log (
    id           TEXT PRIMARY KEY,
    webhook_id   TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    event        TEXT NOT NULL,
    project_id   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    duration_ms  BIGINT NOT NULL,
    success      BOOLEAN NOT NULL,
    request      JSONB NOT NULL,
    response     JSONB NOT NULL
);

CREATE INDEX webhook_log_webhook ON webhook_log (webhook_id, created_at DESC);
