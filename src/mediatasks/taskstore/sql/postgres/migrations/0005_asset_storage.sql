-- An asset's IPFS storage (Livepeer's asset.storage, moved by export tasks), and a revision that
-- every read-modify-write of an asset's JSON documents compares and bumps.
ALTER TABLE assets ADD COLUMN storage JSONB NOT NULL DEFAULT '{}';
ALTER TABLE assets ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
