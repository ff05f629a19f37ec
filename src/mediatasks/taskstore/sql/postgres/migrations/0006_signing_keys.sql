-- Signing keys (Livepeer's access control): the public halves of a project's ES256 key pairs.
-- An asset with a `jwt` playback policy plays for tokens signed by one of its project's keys
-- that is not disabled.  The private halves are never stored.
CREATE TABLE signing_keys (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL,
    name          TEXT NOT NULL,
    public_key    TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    last_seen_at  BIGINT
);

CREATE INDEX signing_keys_project ON signing_keys (project_id, created_at DESC);
