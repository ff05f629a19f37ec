-- Idempotency keys: a request repeated with the same key gets the first answer again.
CREATE TABLE idempotency_keys (
    project_id    TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        INTEGER,
    body          TEXT,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (project_id, key)
);

CREATE INDEX assets_source_url ON assets (project_id, created_at);
