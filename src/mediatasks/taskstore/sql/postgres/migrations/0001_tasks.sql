-- Projects, API keys, tasks and their event log.
-- Times are Unix milliseconds (Livepeer's wire unit); JSON is stored as text.
CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects (id),
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);

CREATE TABLE tasks (
    id                TEXT PRIMARY KEY,
    project_id        TEXT NOT NULL,
    type              TEXT NOT NULL,
    phase             TEXT NOT NULL CHECK (phase IN
                        ('pending', 'waiting', 'running', 'completed', 'failed', 'cancelled')),
    params            JSONB NOT NULL,
    output            JSONB,
    progress          DOUBLE PRECISION,
    retries           INTEGER NOT NULL DEFAULT 0,
    max_retries       INTEGER NOT NULL,
    attempt           INTEGER NOT NULL DEFAULT 0,
    error_message     TEXT,
    input_asset_id    TEXT,
    output_asset_id   TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    scheduled_at      BIGINT,
    run_at            BIGINT NOT NULL,
    lease_token       TEXT,
    lease_expires_at  BIGINT,
    worker_id         TEXT
);

CREATE INDEX tasks_runnable ON tasks (run_at, id) WHERE phase = 'waiting';
CREATE INDEX tasks_leases ON tasks (lease_expires_at) WHERE phase = 'running';
CREATE INDEX tasks_project_updated ON tasks (project_id, updated_at DESC);

CREATE TABLE task_events (
    id          BIGSERIAL PRIMARY KEY,
    task_id     TEXT NOT NULL,
    project_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    phase       TEXT NOT NULL,
    progress    DOUBLE PRECISION,
    at          BIGINT NOT NULL,
    data        JSONB NOT NULL DEFAULT '{}'
);

CREATE INDEX task_events_task ON task_events (task_id, id);
