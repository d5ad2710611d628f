-- Deferred deletes (the deleter, ARCHITECTURE.md): a collection or storage DELETE records
-- here, in one row per (user, collection), the time T of the deletion; from that instant every
-- read treats the collection's rows with `modified <= deleted_at` as gone, and the deleter
-- removes them later in bounded chunks, then this row. Every write after the deletion gets a
-- timestamp later than T, so the purge, which deletes only `modified <= deleted_at`, can never
-- remove it. A Weft table: the reference's `bso` and `user_collections` keep their columns.
CREATE TABLE IF NOT EXISTS weft_deleted_collections (
  userid      BIGINT  NOT NULL,
  collection  INTEGER NOT NULL,
  deleted_at  BIGINT  NOT NULL,
  PRIMARY KEY (userid, collection)
) WITHOUT ROWID;

-- The open-batch bound and the quota of staged bytes look up a user's batches.
CREATE INDEX IF NOT EXISTS batch_uploads_userid_idx ON batch_uploads (userid, batch);
