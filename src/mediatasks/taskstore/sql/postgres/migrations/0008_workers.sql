-- The worker registry (who runs, on which host, last seen when; a worker's session holds an
-- advisory lock on lock_key on PostgreSQL), and rescues counted apart from retries.
ALTER TABLE tasks ADD COLUMN rescues INTEGER NOT NULL DEFAULT 0;

CREATE TABLE workers (
    id            TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    node          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    lock_key      BIGINT NOT NULL,
    started_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    stopped_at    BIGINT
);

CREATE INDEX workers_seen ON workers (last_seen_at);
