-- Deferred deletes: the same table as the SQLite migration (see there for what it holds).
CREATE TABLE IF NOT EXISTS weft_deleted_collections (
  userid      BIGINT  NOT NULL,
  collection  INTEGER NOT NULL,
  deleted_at  BIGINT  NOT NULL,
  PRIMARY KEY (userid, collection)
);

-- The open-batch bound and the quota of staged bytes look up a user's batches.
CREATE INDEX IF NOT EXISTS batch_uploads_userid_idx ON batch_uploads (userid, batch);
