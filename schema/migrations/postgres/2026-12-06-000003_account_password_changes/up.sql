-- Password changes in flight (issue 21): the same table as the SQLite migration (see there for
-- what each column holds).
CREATE TABLE IF NOT EXISTS account_password_changes (
  token_id     VARCHAR(64)  NOT NULL,
  uid          VARCHAR(32)  NOT NULL,
  hmac_key     VARCHAR(64)  NOT NULL,
  verify_hash  VARCHAR(64)  NOT NULL,
  created_at   BIGINT       NOT NULL,
  PRIMARY KEY (token_id)
);
CREATE INDEX IF NOT EXISTS account_password_changes_uid_idx ON account_password_changes (uid);
