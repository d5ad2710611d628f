-- Device commands (issue 25, FxA's device-command protocol: Send Tab): a message another device
-- of the same account left for `device_id`, waiting until that device fetches it
-- (`GET /v1/account/device/commands`) or `expires_at` (ms) passes. `idx` is FxA's `index`,
-- increasing per target device (never reused: it starts from the clock in ms, see the accounts
-- actor). `payload` is the JSON object the sender sent, encrypted by it for the target; the
-- server never reads it. `sender` is the sending device's id (empty when it had none).
-- Deleted with the target device (session destroy, reset, disable, account delete).
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
