-- Tokenserver tables exactly as the reference server's migrations leave them
-- (tokenserver-api.md §8.1): names, column order, types and indexes are a contract with the
-- operator tools that share this database and read rows positionally.
-- IF NOT EXISTS / INSERT IGNORE: running this on a reference tokenserver database changes nothing.
CREATE TABLE IF NOT EXISTS services (
  id       INT          NOT NULL AUTO_INCREMENT,
  service  VARCHAR(30)  DEFAULT NULL,
  pattern  VARCHAR(128) DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY service (service)
);

CREATE TABLE IF NOT EXISTS nodes (
  id            BIGINT      NOT NULL AUTO_INCREMENT,
  service       INT         NOT NULL,
  node          VARCHAR(64) NOT NULL,
  available     INT         NOT NULL,
  current_load  INT         NOT NULL,
  capacity      INT         NOT NULL,
  downed        INT         NOT NULL,
  backoff       INT         NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY unique_idx (service, node)
);

CREATE TABLE IF NOT EXISTS users (
  uid              BIGINT       NOT NULL AUTO_INCREMENT,
  service          INT          NOT NULL,
  email            VARCHAR(255) NOT NULL,
  generation       BIGINT       NOT NULL,
  client_state     VARCHAR(32)  NOT NULL,
  created_at       BIGINT       NOT NULL,
  replaced_at      BIGINT       DEFAULT NULL,
  nodeid           BIGINT       NOT NULL,
  keys_changed_at  BIGINT       DEFAULT NULL,
  PRIMARY KEY (uid),
  KEY lookup_idx (email, service, created_at),
  KEY replaced_at_idx (service, replaced_at),
  KEY node_idx (nodeid)
) ENGINE=InnoDB AUTO_INCREMENT=4 DEFAULT CHARSET=utf8;

-- The reference's last migration: the service's id is whatever auto-increment gives, so code
-- looks it up by name.
INSERT IGNORE INTO services (service, pattern) VALUES ('sync-1.5', '{node}/1.5/{uid}');
