-- The reference's storage tables (tokenserver-api.md §9) in SQLite's types: same names,
-- columns, units (milliseconds) and keys, so queries are shared between backends.
CREATE TABLE IF NOT EXISTS bso (
  userid        BIGINT      NOT NULL,
  collection    INTEGER     NOT NULL,
  id            VARCHAR(64) NOT NULL,
  sortindex     INTEGER,
  payload       TEXT        NOT NULL,
  modified      BIGINT      NOT NULL,
  ttl           BIGINT      NOT NULL,
  payload_size  INTEGER     DEFAULT 0,
  PRIMARY KEY (userid, collection, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bso_expiry_idx ON bso (ttl);
CREATE INDEX IF NOT EXISTS bso_usr_col_mod_idx ON bso (userid, collection, modified);

-- AUTOINCREMENT so that the reservation row (100) makes the first custom id 101, as in REF.
CREATE TABLE IF NOT EXISTS collections (
  id    INTEGER     PRIMARY KEY AUTOINCREMENT,
  name  VARCHAR(32) NOT NULL UNIQUE
);
INSERT OR IGNORE INTO collections (id, name) VALUES
  (1, 'clients'), (2, 'crypto'), (3, 'forms'), (4, 'history'), (5, 'keys'), (6, 'meta'),
  (7, 'bookmarks'), (8, 'prefs'), (9, 'tabs'), (10, 'passwords'), (11, 'addons'),
  (12, 'addresses'), (13, 'creditcards'), (100, '');

CREATE TABLE IF NOT EXISTS user_collections (
  userid         BIGINT  NOT NULL,
  collection     INTEGER NOT NULL,
  last_modified  BIGINT  NOT NULL,
  total_bytes    BIGINT,
  count          INTEGER,
  PRIMARY KEY (userid, collection)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS batch_uploads (
  batch       BIGINT  NOT NULL,
  userid      BIGINT  NOT NULL,
  collection  INTEGER NOT NULL,
  PRIMARY KEY (batch, userid)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS batch_upload_items (
  batch         BIGINT      NOT NULL,
  userid        BIGINT      NOT NULL,
  id            VARCHAR(64) NOT NULL,
  sortindex     INTEGER,
  payload       TEXT,
  payload_size  INTEGER,
  ttl_offset    INTEGER,
  PRIMARY KEY (batch, userid, id)
) WITHOUT ROWID;
