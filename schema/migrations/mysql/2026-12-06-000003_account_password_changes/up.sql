-- Password changes in flight (issue 21): the same table as the SQLite migration (see there for
-- what each column holds), in MySQL's syntax with the index inside CREATE TABLE.
CREATE TABLE IF NOT EXISTS account_password_changes (
  token_id     VARCHAR(64)  NOT NULL,
  uid          VARCHAR(32)  NOT NULL,
  hmac_key     VARCHAR(64)  NOT NULL,
  verify_hash  VARCHAR(64)  NOT NULL,
  created_at   BIGINT       NOT NULL,
  PRIMARY KEY (token_id),
  KEY account_password_changes_uid_idx (uid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
