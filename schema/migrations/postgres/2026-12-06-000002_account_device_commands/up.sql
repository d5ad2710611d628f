-- Device commands (issue 25): the same table as the SQLite migration (see there for what each
-- column holds), in PostgreSQL's syntax.
CREATE TABLE IF NOT EXISTS account_device_commands (
  device_id   VARCHAR(32)  NOT NULL,
  idx         BIGINT       NOT NULL,
  uid         VARCHAR(32)  NOT NULL,
  command     VARCHAR(255) NOT NULL,
  payload     TEXT         NOT NULL,
  sender      VARCHAR(32)  NOT NULL,
  created_at  BIGINT       NOT NULL,
  expires_at  BIGINT       NOT NULL,
  PRIMARY KEY (device_id, idx)
);
CREATE INDEX IF NOT EXISTS account_device_commands_uid_idx ON account_device_commands (uid);
