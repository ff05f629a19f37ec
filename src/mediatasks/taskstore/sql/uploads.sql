-- Idempotency keys and upload bookkeeping; the same in both dialects.

-- name: insert_idempotency_key
-- Reserve a key for a request; nothing happens when the key is already there.
INSERT INTO idempotency_keys (project_id, key, request_hash, created_at)
VALUES (:project_id, :key, :request_hash, :now)
ON CONFLICT (project_id, key) DO NOTHING
RETURNING *;

-- name: get_idempotency_key
-- What a key was used for, and the answer it got (null while the request is in flight).
SELECT * FROM idempotency_keys WHERE project_id = :project_id AND key = :key;

-- name: save_idempotent_response
-- Keep the answer of the request that reserved the key.
UPDATE idempotency_keys SET status = :status, body = :body
WHERE project_id = :project_id AND key = :key AND status IS NULL;

-- name: release_idempotency_key
-- The request failed on our side (5xx): let a retry with the same key run again.
DELETE FROM idempotency_keys WHERE project_id = :project_id AND key = :key AND status IS NULL;

-- name: expire_idempotency_keys
-- Keys are remembered for a day.
DELETE FROM idempotency_keys WHERE created_at < :before;

-- name: recent_url_imports
-- A project's assets imported lately and still on their way (for repeated URL imports).
SELECT * FROM assets
WHERE project_id = :project_id AND created_at >= :since AND phase IN ('waiting', 'processing')
ORDER BY created_at DESC;

-- name: output_task_of_asset
-- The latest task that fills an asset.
SELECT * FROM tasks WHERE output_asset_id = :asset_id ORDER BY created_at DESC LIMIT 1;

-- name: asset_by_playback_id
-- One live asset of a project, by its playback id.
SELECT * FROM assets WHERE playback_id = :playback_id AND project_id = :project_id
  AND phase <> 'deleted';
