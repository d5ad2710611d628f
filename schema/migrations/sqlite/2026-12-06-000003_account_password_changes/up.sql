-- Password changes in flight (issue 21, FxA's /v1/password/change/start → finish): the Hawk
-- credentials derived from a passwordChangeToken (never the token itself), and the verifier the
-- old password matched, so that a finish applies only over that password (another change or a
-- reset in between wins). Single use, expiring like key fetches.
CREATE TABLE IF NOT EXISTS account_password_changes (
  token_id     VARCHAR(64)  NOT NULL PRIMARY KEY,
  uid          VARCHAR(32)  NOT NULL,
  hmac_key     VARCHAR(64)  NOT NULL,
  verify_hash  VARCHAR(64)  NOT NULL,
  created_at   BIGINT       NOT NULL
);
CREATE INDEX IF NOT EXISTS account_password_changes_uid_idx ON account_password_changes (uid);
