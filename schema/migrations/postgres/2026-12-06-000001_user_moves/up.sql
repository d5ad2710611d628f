-- Users being moved between storage nodes: the same table as the SQLite migration (see there
-- for what it holds).
CREATE TABLE IF NOT EXISTS weft_user_moves (
  userid       BIGINT  NOT NULL PRIMARY KEY,
  state        INTEGER NOT NULL,
  peer         VARCHAR(64) NOT NULL,
  since        BIGINT  NOT NULL,
  purge_after  BIGINT  NOT NULL
);
CREATE INDEX IF NOT EXISTS weft_user_moves_since ON weft_user_moves (since);
