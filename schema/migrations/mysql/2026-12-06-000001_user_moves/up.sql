-- Users being moved between storage nodes: the same table as the SQLite migration (see there
-- for what it holds).
CREATE TABLE IF NOT EXISTS weft_user_moves (
  userid       BIGINT(20)  NOT NULL PRIMARY KEY,
  state        INT(11)     NOT NULL,
  peer         VARCHAR(64) NOT NULL,
  since        BIGINT(20)  NOT NULL,
  purge_after  BIGINT(20)  NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=latin1;
CREATE INDEX weft_user_moves_since ON weft_user_moves (since);
