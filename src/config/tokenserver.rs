//! `[tokenserver]`: the built-in tokenserver (its database, FxA, tokens, node assignment),
//! `[tokenserver.retired_purge]` and `[tokenserver.account_events]`, and their validation.

use serde::{Deserialize, Serialize};

use super::{invalid, known_database_url, ConfigError, Settings, DATABASE_URL_FORMS};

/// The built-in tokenserver (tokenserver-api.md). JWKs are given as JSON text or as the path
/// of a file holding it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenserverSettings {
    /// Serve `GET /1.0/sync/1.5`. Off: a storage-only process (tokens come from elsewhere).
    pub enabled: bool,
    /// Tokenserver database; empty means the storage database (`database_url`).
    pub database_url: String,
    /// FxA OAuth server; `/v1/verify` and `/v1/jwks` are resolved against it.
    pub fxa_oauth_server_url: String,
    /// Limit for each request to FxA; past it the client gets 503.
    pub fxa_oauth_request_timeout_seconds: u64,
    /// RSA public keys (JWK JSON or a file path) for local JWT verification; empty: FxA's
    /// published keys are fetched per request.
    pub fxa_oauth_primary_jwk: String,
    pub fxa_oauth_secondary_jwk: String,
    /// Required `iss` of JWT access tokens; empty: not checked.
    pub fxa_oauth_issuer: String,
    /// How long a verified OAuth token is remembered, and how many are.
    pub fxa_oauth_cache_ttl_seconds: u64,
    pub fxa_oauth_cache_size: u64,
    /// `users.email` is `<fxa uid>@<this>` (REF's default, so existing databases match).
    pub fxa_email_domain: String,
    /// Key of `hashed_fxa_uid` in tokens and responses; empty: the primary master secret.
    pub fxa_metrics_hash_secret: String,
    /// Token lifetime; clients may only ask for less.
    pub token_duration_seconds: u64,
    /// `node_type` reported to clients; empty: `mysql`, `postgres` or `sqlite` after the storage
    /// database.
    pub node_type: String,
    /// Capacity of the node registered on first start (this server's `public_url`).
    pub node_capacity: u64,
    /// Share of capacity released when every node is out of slots (§7.1).
    pub node_capacity_release_rate: f64,
    /// Accept accounts never seen before (403 `new-users-disabled` otherwise).
    pub allow_new_users: bool,
    /// Threads (each with at most one connection) of the tokenserver database actor.
    pub threads: u64,
    /// Limit for the database part of a token request (504 `elapsed`); 0: none.
    pub database_request_timeout_ms: u64,
    /// The purge of replaced and retired users (tokenserver-api.md §10.6).
    pub retired_purge: RetiredPurgeSettings,
    /// FxA's account events, posted to `/1.0/webhooks/fxa/events` (§10.8).
    pub account_events: AccountEventsSettings,
}

/// The purge of replaced and retired users run by `weft serve` (and `weft purge --kind retired`):
/// their data deleted on their node, then their tokenserver row.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetiredPurgeSettings {
    /// Run a pass every `interval_seconds` in `weft serve` (with the tokenserver).
    pub enabled: bool,
    /// Between passes (each waits ±30 % of it at random, so that webheads drift apart).
    pub interval_seconds: u64,
    /// How long a row stays replaced before its data is deleted (REF: one day).
    pub grace_period_seconds: u64,
    /// Most users one pass handles; the rest wait for the next pass.
    pub max_users: u64,
    /// Limit for each signed DELETE sent to a node served by another process.
    pub request_timeout_seconds: u64,
}

impl Default for RetiredPurgeSettings {
    fn default() -> Self {
        // On by default: without it every database only grows, and a single box's one process
        // serves both the tokenserver and its only node. It deletes only rows the tokenserver
        // replaced more than a day ago, which no token (1 h) can reach any more; two processes
        // running it at once do each row's work twice at worst (every step is idempotent).
        RetiredPurgeSettings {
            enabled: true,
            interval_seconds: 3600,
            grace_period_seconds: 86_400,
            max_users: 1000,
            request_timeout_seconds: 60,
        }
    }
}

/// FxA's account events (Security Event Tokens, §10.8). Off until the relying party's client id
/// is configured: FxA signs each token for one audience.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AccountEventsSettings {
    /// Accept `POST /1.0/webhooks/fxa/events`.
    pub enabled: bool,
    /// The `aud` of FxA's tokens: the OAuth client id FxA registered this server's webhook for.
    pub audience: String,
    /// The `iss` of FxA's tokens; empty: `tokenserver.fxa_oauth_issuer`.
    pub issuer: String,
}

impl Default for TokenserverSettings {
    fn default() -> Self {
        TokenserverSettings {
            enabled: true,
            database_url: String::new(),
            fxa_oauth_server_url: "https://oauth.accounts.firefox.com".into(),
            fxa_oauth_request_timeout_seconds: 10,
            fxa_oauth_primary_jwk: String::new(),
            fxa_oauth_secondary_jwk: String::new(),
            fxa_oauth_issuer: "https://accounts.firefox.com".into(),
            fxa_oauth_cache_ttl_seconds: 60,
            fxa_oauth_cache_size: 10_000,
            fxa_email_domain: "api-accounts.stage.mozaws.net".into(),
            fxa_metrics_hash_secret: String::new(),
            token_duration_seconds: 3600,
            node_type: String::new(),
            node_capacity: 100_000,
            node_capacity_release_rate: 0.1,
            allow_new_users: true,
            threads: 2,
            database_request_timeout_ms: 0,
            retired_purge: RetiredPurgeSettings::default(),
            account_events: AccountEventsSettings::default(),
        }
    }
}

impl Settings {
    /// The tokenserver's database: its own, or the storage database.
    pub fn tokenserver_database_url(&self) -> String {
        if self.tokenserver.database_url.is_empty() {
            self.effective_database_url()
        } else {
            self.tokenserver.database_url.clone()
        }
    }

    pub(super) fn validate_tokenserver(&self) -> Result<(), ConfigError> {
        let t = &self.tokenserver;
        if !t.enabled && !self.storage.enabled {
            return Err(invalid("storage.enabled", "the storage node and the tokenserver are both disabled"));
        }
        let url = self.tokenserver_database_url();
        if !known_database_url(&url) {
            return Err(invalid("tokenserver.database_url", DATABASE_URL_FORMS));
        }
        if !(t.fxa_oauth_server_url.starts_with("https://") || t.fxa_oauth_server_url.starts_with("http://"))
        {
            return Err(invalid("tokenserver.fxa_oauth_server_url", "must be an http(s) URL"));
        }
        if t.fxa_oauth_request_timeout_seconds == 0 {
            return Err(invalid("tokenserver.fxa_oauth_request_timeout_seconds", "must be at least 1"));
        }
        if t.token_duration_seconds == 0 {
            return Err(invalid("tokenserver.token_duration_seconds", "must be at least 1"));
        }
        if t.node_capacity == 0 || t.node_capacity > i32::MAX as u64 {
            return Err(invalid("tokenserver.node_capacity", "must be between 1 and 2147483647"));
        }
        if !(t.node_capacity_release_rate > 0.0 && t.node_capacity_release_rate <= 1.0) {
            return Err(invalid("tokenserver.node_capacity_release_rate", "must be in (0, 1]"));
        }
        if t.threads == 0 {
            return Err(invalid("tokenserver.threads", "must be at least 1"));
        }
        if t.fxa_email_domain.is_empty() {
            return Err(invalid("tokenserver.fxa_email_domain", "must not be empty"));
        }
        let p = &t.retired_purge;
        if p.interval_seconds == 0 || p.max_users == 0 || p.request_timeout_seconds == 0 {
            return Err(invalid(
                "tokenserver.retired_purge",
                "interval_seconds, max_users and request_timeout_seconds must be at least 1",
            ));
        }
        if t.account_events.enabled {
            if t.account_events.audience.trim().is_empty() {
                return Err(invalid(
                    "tokenserver.account_events.audience",
                    "the OAuth client id FxA sends events for must be set when account events are on",
                ));
            }
            if self.account_events_issuer().is_empty() {
                return Err(invalid(
                    "tokenserver.account_events.issuer",
                    "must be set (or tokenserver.fxa_oauth_issuer) when account events are on",
                ));
            }
        }
        Ok(())
    }

    /// The `iss` FxA's event tokens must carry.
    pub fn account_events_issuer(&self) -> String {
        let t = &self.tokenserver;
        if t.account_events.issuer.is_empty() {
            t.fxa_oauth_issuer.clone()
        } else {
            t.account_events.issuer.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::env;
    use crate::config::Settings;

    #[test]
    fn tokenserver_settings_and_aliases() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert!(s.tokenserver.enabled && s.storage.enabled);
        assert_eq!(s.tokenserver.token_duration_seconds, 3600);
        assert_eq!(s.tokenserver_database_url(), s.effective_database_url());
        let s = Settings::load(
            None,
            env(&[
                ("WEFT_FXA_OAUTH_SERVER_URL", "http://127.0.0.1:9"),
                ("WEFT_FXA_METRICS_HASH_SECRET", "m"),
                ("WEFT_TOKENSERVER_DATABASE_URL", "sqlite:/tmp/ts.db"),
                ("WEFT_TOKENSERVER_NODE_CAPACITY_RELEASE_RATE", "0.5"),
            ]),
        )
        .unwrap();
        assert_eq!(s.tokenserver.fxa_oauth_server_url, "http://127.0.0.1:9");
        assert_eq!(s.tokenserver.fxa_metrics_hash_secret, "m");
        assert_eq!(s.tokenserver_database_url(), "sqlite:/tmp/ts.db");
        assert_eq!(s.tokenserver.node_capacity_release_rate, 0.5);
        let err = Settings::load(
            None,
            env(&[("WEFT_TOKENSERVER_ENABLED", "false"), ("WEFT_STORAGE_ENABLED", "false")]),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("storage.enabled"), "{err}");
    }

    #[test]
    fn retired_purge_and_account_events_settings() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert!(s.tokenserver.retired_purge.enabled && !s.tokenserver.account_events.enabled);
        assert_eq!(s.tokenserver.retired_purge.grace_period_seconds, 86_400);
        let s = Settings::load(None, env(&[("WEFT_TOKENSERVER_RETIRED_PURGE_MAX_USERS", "5")])).unwrap();
        assert_eq!(s.tokenserver.retired_purge.max_users, 5);
        let on = ("WEFT_TOKENSERVER_ACCOUNT_EVENTS_ENABLED", "true");
        let err = Settings::load(None, env(&[on])).unwrap_err();
        assert!(err.to_string().starts_with("tokenserver.account_events.audience"), "{err}");
        let s =
            Settings::load(None, env(&[on, ("WEFT_TOKENSERVER_ACCOUNT_EVENTS_AUDIENCE", "abc")])).unwrap();
        assert_eq!(s.account_events_issuer(), "https://accounts.firefox.com");
    }
}
