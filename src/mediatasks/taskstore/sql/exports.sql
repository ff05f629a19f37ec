-- Exports and asset patches; the same in both dialects.  An asset's JSON documents (options,
-- storage) are changed by reading the row, computing the new documents, and writing them back
-- only if the row's revision and phase are still those that were read: a compare-and-set.

-- name: revise_asset
-- Write an asset's name and documents if nobody changed it since :revision was read.
UPDATE assets
SET name = :name, options = :options, storage = :storage, revision = revision + 1,
    updated_at = :now
WHERE id = :id AND revision = :revision AND phase = :phase
RETURNING *;
