-- Local accounts (local-accounts.md §5, §6): the same tables, columns and indexes as the SQLite
-- and MySQL migrations (see the SQLite one for what each holds), in PostgreSQL's syntax with
-- the indexes as statements of their own. Portable types only, so one statement text serves
-- every backend.
CREATE TABLE IF NOT EXISTS accounts (
  uid              VARCHAR(32)  NOT NULL,
  email            VARCHAR(255) NOT NULL,
  auth_salt        VARCHAR(64)  NOT NULL,
  verify_hash      VARCHAR(64)  NOT NULL,
  kdf_version      INT          NOT NULL,
  client_salt      VARCHAR(32)  DEFAULT NULL,
  ka               VARCHAR(64)  NOT NULL,
  wrap_kb          VARCHAR(64)  NOT NULL,
  verifier_set_at  BIGINT       NOT NULL,
  keys_changed_at  BIGINT       NOT NULL,
  created_at       BIGINT       NOT NULL,
  disabled_at      BIGINT       DEFAULT NULL,
  PRIMARY KEY (uid)
);
CREATE UNIQUE INDEX IF NOT EXISTS accounts_email ON accounts (email);

-- Hawk credentials derived from a session token (never the token itself).
CREATE TABLE IF NOT EXISTS account_sessions (
  token_id      VARCHAR(64)  NOT NULL,
  uid           VARCHAR(32)  NOT NULL,
  hmac_key      VARCHAR(64)  NOT NULL,
  created_at    BIGINT       NOT NULL,
  last_used_at  BIGINT       NOT NULL,
  PRIMARY KEY (token_id)
);
CREATE INDEX IF NOT EXISTS account_sessions_uid_idx ON account_sessions (uid);

-- Single-use key fetches: the bundle is already encrypted for the keyFetchToken's holder.
CREATE TABLE IF NOT EXISTS account_key_fetches (
  token_id    VARCHAR(64)  NOT NULL,
  uid         VARCHAR(32)  NOT NULL,
  hmac_key    VARCHAR(64)  NOT NULL,
  bundle      VARCHAR(256) NOT NULL,
  created_at  BIGINT       NOT NULL,
  PRIMARY KEY (token_id)
);
CREATE INDEX IF NOT EXISTS account_key_fetches_uid_idx ON account_key_fetches (uid);

CREATE TABLE IF NOT EXISTS account_devices (
  id                VARCHAR(32)  NOT NULL,
  uid               VARCHAR(32)  NOT NULL,
  session_token_id  VARCHAR(64)  NOT NULL,
  name              VARCHAR(255) NOT NULL,
  device_type       VARCHAR(32)  NOT NULL,
  details           TEXT         NOT NULL,
  created_at        BIGINT       NOT NULL,
  last_access_at    BIGINT       NOT NULL,
  PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS account_devices_uid_idx ON account_devices (uid);
CREATE INDEX IF NOT EXISTS account_devices_session_idx ON account_devices (session_token_id);

-- OAuth authorization codes (SHA-256 of the code), single use, with the PKCE challenge and the
-- keys_jwe the page encrypted to the browser's ephemeral key.
CREATE TABLE IF NOT EXISTS account_oauth_codes (
  code_hash         VARCHAR(64)  NOT NULL,
  uid               VARCHAR(32)  NOT NULL,
  session_token_id  VARCHAR(64)  NOT NULL,
  scope             TEXT         NOT NULL,
  code_challenge    VARCHAR(128) NOT NULL,
  keys_jwe          TEXT         NOT NULL,
  auth_at           BIGINT       NOT NULL,
  expires_at        BIGINT       NOT NULL,
  PRIMARY KEY (code_hash)
);
CREATE INDEX IF NOT EXISTS account_oauth_codes_uid_idx ON account_oauth_codes (uid);

-- Refresh tokens (SHA-256 of the token), revoked with their session.
CREATE TABLE IF NOT EXISTS account_refresh_tokens (
  token_hash        VARCHAR(64)  NOT NULL,
  uid               VARCHAR(32)  NOT NULL,
  session_token_id  VARCHAR(64)  NOT NULL,
  scope             TEXT         NOT NULL,
  created_at        BIGINT       NOT NULL,
  PRIMARY KEY (token_hash)
);
CREATE INDEX IF NOT EXISTS account_refresh_tokens_uid_idx ON account_refresh_tokens (uid);

-- Invites (SHA-256 of the invite code). `uid` set: a password-reset link for that account.
CREATE TABLE IF NOT EXISTS account_invites (
  code_hash   VARCHAR(64)  NOT NULL,
  email       VARCHAR(255) DEFAULT NULL,
  uid         VARCHAR(32)  DEFAULT NULL,
  created_at  BIGINT       NOT NULL,
  expires_at  BIGINT       NOT NULL,
  used_at     BIGINT       DEFAULT NULL,
  PRIMARY KEY (code_hash)
);
