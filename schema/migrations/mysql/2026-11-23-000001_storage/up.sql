-- Storage tables exactly as the reference server's migrations leave them
-- (tokenserver-api.md §9), so an existing reference database is served as is.
-- IF NOT EXISTS / INSERT IGNORE: running this on a reference database changes nothing.
-- Column-level differences on a fresh database, all invisible to the reference's code: BSO ids
-- and collection names use a binary collation (latin1's default collation is case-insensitive,
-- which would make the distinct Firefox ids "abc" and "ABC" — or collections "Tabs" and "tabs" —
-- collide, while the protocol says both are case-sensitive), and payloads are utf8mb4 so that
-- any JSON string a client sends round-trips instead of failing to store.
CREATE TABLE IF NOT EXISTS bso (
  userid        BIGINT(20)  NOT NULL,
  collection    INT(11)     NOT NULL,
  id            VARCHAR(64) COLLATE latin1_bin NOT NULL,
  sortindex     INT,
  payload       MEDIUMTEXT  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  modified      BIGINT      NOT NULL,
  ttl           BIGINT(20)  NOT NULL,
  payload_size  INT(11)     DEFAULT 0,
  PRIMARY KEY (userid, collection, id),
  KEY bso_expiry_idx (ttl),
  KEY bso_usr_col_mod_idx (userid, collection, modified)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE IF NOT EXISTS collections (
  id    INT         NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name  VARCHAR(32) COLLATE latin1_bin NOT NULL UNIQUE
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

-- The standard collections and REF's reservation row, so the first custom id is 101.
INSERT IGNORE INTO collections (id, name) VALUES
  (1, 'clients'), (2, 'crypto'), (3, 'forms'), (4, 'history'), (5, 'keys'), (6, 'meta'),
  (7, 'bookmarks'), (8, 'prefs'), (9, 'tabs'), (10, 'passwords'), (11, 'addons'),
  (12, 'addresses'), (13, 'creditcards'), (100, '');

CREATE TABLE IF NOT EXISTS user_collections (
  userid         BIGINT(20) NOT NULL,
  collection     INT(11)    NOT NULL,
  last_modified  BIGINT(20) NOT NULL,
  total_bytes    BIGINT,
  count          INT,
  PRIMARY KEY (userid, collection)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE IF NOT EXISTS batch_uploads (
  batch       BIGINT(20) NOT NULL,
  userid      BIGINT(20) NOT NULL,
  collection  INT(11)    NOT NULL,
  PRIMARY KEY (batch, userid)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE IF NOT EXISTS batch_upload_items (
  batch         BIGINT(20)  NOT NULL,
  userid        BIGINT(20)  NOT NULL,
  id            VARCHAR(64) COLLATE latin1_bin NOT NULL,
  sortindex     INT(11)     DEFAULT NULL,
  payload       MEDIUMTEXT  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  payload_size  INT(11)     DEFAULT NULL,
  ttl_offset    INT(11)     DEFAULT NULL,
  PRIMARY KEY (batch, userid, id)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;
