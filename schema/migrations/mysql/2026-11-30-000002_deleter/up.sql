-- Deferred deletes: the same table as the SQLite migration (see there for what it holds). A
-- Weft table beside the reference's, whose tables keep their columns; the index on
-- batch_uploads only adds a way to find a user's batches (the open-batch bound, staged quota),
-- which the reference's code never notices.
CREATE TABLE IF NOT EXISTS weft_deleted_collections (
  userid      BIGINT(20) NOT NULL,
  collection  INT(11)    NOT NULL,
  deleted_at  BIGINT(20) NOT NULL,
  PRIMARY KEY (userid, collection)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE INDEX batch_uploads_userid_idx ON batch_uploads (userid, batch);
