-- An asset's IPFS storage (Livepeer's asset.storage, moved by export tasks), and a revision that
-- every read-modify-write of an asset's JSON documents compares and bumps.
ALTER TABLE assets ADD COLUMN storage TEXT NOT NULL DEFAULT '{}';
ALTER TABLE assets ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
