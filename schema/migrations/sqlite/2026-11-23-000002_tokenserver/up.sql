-- The reference's tokenserver tables (tokenserver-api.md §8.1) in SQLite's types: same names,
-- column order, units (milliseconds) and indexes, so queries are shared between backends.
-- INTEGER PRIMARY KEY AUTOINCREMENT: ids accept explicit values and later generated ids
-- continue above the largest one ever used, as MySQL's AUTO_INCREMENT does.
CREATE TABLE IF NOT EXISTS services (
  id       INTEGER      PRIMARY KEY AUTOINCREMENT,
  service  VARCHAR(30)  DEFAULT NULL UNIQUE,
  pattern  VARCHAR(128) DEFAULT NULL
);

CREATE TABLE IF NOT EXISTS nodes (
  id            INTEGER     PRIMARY KEY AUTOINCREMENT,
  service       INTEGER     NOT NULL,
  node          VARCHAR(64) NOT NULL,
  available     INTEGER     NOT NULL,
  current_load  INTEGER     NOT NULL,
  capacity      INTEGER     NOT NULL,
  downed        INTEGER     NOT NULL,
  backoff       INTEGER     NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS unique_idx ON nodes (service, node);

CREATE TABLE IF NOT EXISTS users (
  uid              INTEGER      PRIMARY KEY AUTOINCREMENT,
  service          INTEGER      NOT NULL,
  email            VARCHAR(255) NOT NULL,
  generation       BIGINT       NOT NULL,
  client_state     VARCHAR(32)  NOT NULL,
  created_at       BIGINT       NOT NULL,
  replaced_at      BIGINT       DEFAULT NULL,
  nodeid           BIGINT       NOT NULL,
  keys_changed_at  BIGINT       DEFAULT NULL
);
CREATE INDEX IF NOT EXISTS lookup_idx ON users (email, service, created_at);
CREATE INDEX IF NOT EXISTS replaced_at_idx ON users (service, replaced_at);
CREATE INDEX IF NOT EXISTS node_idx ON users (nodeid);

-- The service's id is whatever auto-increment gives, as in the reference; code looks it up by name.
INSERT OR IGNORE INTO services (service, pattern) VALUES ('sync-1.5', '{node}/1.5/{uid}');
