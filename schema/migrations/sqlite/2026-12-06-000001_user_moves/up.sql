-- Users being moved between storage nodes (`weft user move`, `weft node drain --move`): one
-- row per user this node must not serve as usual. state 1 = held (moving out to `peer`: writes
-- answered 503 + Retry-After, reads served), 2 = moved (to `peer`: every request answered 401
-- until `purge_after`, when the deleter removes the user's data here and then the row), 3 =
-- incoming (being copied here from `peer`: 503), 0 = settled (the move is over; kept a minute so
-- that every webhead's cache reads it by `since`, then removed). Every storage transaction of the user reads
-- it, so the state is the same for every webhead serving this node. A Weft table.
CREATE TABLE IF NOT EXISTS weft_user_moves (
  userid       BIGINT  NOT NULL PRIMARY KEY,
  state        INTEGER NOT NULL,
  peer         VARCHAR(64) NOT NULL,
  since        BIGINT  NOT NULL,
  purge_after  BIGINT  NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS weft_user_moves_since ON weft_user_moves (since);
