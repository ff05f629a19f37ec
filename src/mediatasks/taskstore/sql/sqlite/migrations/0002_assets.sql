-- Assets: the videos the service holds, each filled by an upload (or clip) task.
CREATE TABLE assets (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL,
    name           TEXT NOT NULL,
    playback_id    TEXT NOT NULL UNIQUE,
    phase          TEXT NOT NULL CHECK (phase IN
                     ('uploading', 'waiting', 'processing', 'ready', 'failed', 'deleting',
                      'deleted')),
    progress       REAL,
    error_message  TEXT,
    source         TEXT NOT NULL,
    options        TEXT NOT NULL DEFAULT '{}',
    media          TEXT NOT NULL DEFAULT '{}',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    deleted_at     INTEGER
);

CREATE INDEX assets_project_updated ON assets (project_id, updated_at DESC);
CREATE INDEX tasks_output_asset ON tasks (output_asset_id);
