-- Signing keys and the lookups that playback needs; the same in both dialects.

-- name: count_signing_keys
-- How many signing keys a project has (it may have at most a few).
SELECT count(*) AS n FROM signing_keys WHERE project_id = :project_id;

-- name: insert_signing_key
-- Keep the public half of a new key pair.
INSERT INTO signing_keys (id, project_id, name, public_key, disabled, created_at, updated_at)
VALUES (:id, :project_id, :name, :public_key, :disabled, :now, :now)
RETURNING *;

-- name: get_signing_key
-- One signing key of a project.
SELECT * FROM signing_keys WHERE id = :id AND project_id = :project_id;

-- name: list_signing_keys
-- A project's signing keys, newest first.
SELECT * FROM signing_keys WHERE project_id = :project_id
ORDER BY created_at DESC, id DESC LIMIT :limit;

-- name: update_signing_key
-- Rename, disable or enable a key; a null value keeps what the key has.
UPDATE signing_keys
SET name = COALESCE(CAST(:name AS TEXT), name),
    disabled = COALESCE(CAST(:disabled AS BOOLEAN), disabled),
    updated_at = :now
WHERE id = :id AND project_id = :project_id
RETURNING *;

-- name: delete_signing_key
-- Forget a key: tokens it signed stop playing at once.
DELETE FROM signing_keys WHERE id = :id AND project_id = :project_id RETURNING *;

-- name: signing_key_seen
-- A key's token was just accepted for playback.
UPDATE signing_keys SET last_seen_at = :now WHERE id = :id;

-- name: playback_asset
-- The live asset with a playback id, whatever its project (playback needs no API key).
SELECT * FROM assets WHERE playback_id = :playback_id AND phase <> 'deleted';
