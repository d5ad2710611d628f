DROP TABLE IF EXISTS account_invites;
DROP TABLE IF EXISTS account_refresh_tokens;
DROP TABLE IF EXISTS account_oauth_codes;
DROP TABLE IF EXISTS account_devices;
DROP TABLE IF EXISTS account_key_fetches;
DROP TABLE IF EXISTS account_sessions;
DROP TABLE IF EXISTS accounts;
