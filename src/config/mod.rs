//! Weft's configuration, in one place: the TOML file, the `WEFT_*` environment overrides
//! (`environment`), defaults and validation, the secrets file (`secrets_file`) and the secrets
//! a default install generates on first start (`generated_secrets`). Everything else receives
//! an already-validated `Settings`.
//!
//! `Settings` here holds the top-level keys; each section lives in the file named after it:
//! `nodes` (`[[nodes]]`, `[[db_nodes]]`, `[shard]`), `http` (`[http]`, `[cors]`), `storage`
//! (`[storage]`, `[limits]`, `[quota]`, `[auth]`, `[batch]`, `[purge]`), `cache`,
//! `tokenserver`, `accounts`; `master_secrets` is the rule every master secret meets and
//! `trust_proxy_headers` the setting of that name. Each file validates its own keys;
//! `Settings::validate` calls them in a fixed order, so the first bad key is the one reported.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use self::trust_proxy_headers::TrustProxyHeaders;

pub mod accounts;
pub mod cache;
pub mod environment;
pub mod generated_secrets;
pub mod http;
pub mod master_secrets;
pub mod nodes;
pub mod secrets_file;
pub mod storage;
pub mod tokenserver;
pub mod trust_proxy_headers;

pub use self::accounts::AccountsSettings;
pub use self::cache::CacheSettings;
pub use self::environment::env_help;
pub use self::http::{CorsSettings, HttpSettings};
pub(crate) use self::master_secrets::check_master_secret;
pub use self::master_secrets::{WeakSecret, MIN_MASTER_SECRET_BYTES};
pub use self::nodes::{DbNodeName, DbNodeSettings, NodeSettings, ShardSettings};
pub use self::storage::{AuthSettings, BatchSettings, Limits, PurgeSettings, QuotaSettings, StorageSettings};
pub use self::tokenserver::{AccountEventsSettings, RetiredPurgeSettings, TokenserverSettings};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.to_string(), message: message.into() }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP server binds, `host:port`.
    pub listen: String,
    /// The storage node's public origin as clients see it; tokens name it in `node`.
    pub public_url: String,
    /// Other spellings of `public_url` accepted in tokens and Host headers (tokens-and-hawk §5.3).
    pub node_aliases: Vec<String>,
    /// Where the default SQLite database and the generated master secret live.
    pub data_dir: PathBuf,
    /// `sqlite:PATH`, `postgres://user:pass@host:port/db` or `mysql://user:pass@host:port/db`;
    /// empty means `sqlite:<data_dir>/weft.db`.
    pub database_url: String,
    /// Master secrets shared with the tokenserver, oldest first; the last one signs. Empty means
    /// "use the secret generated in the data directory on first start".
    pub master_secrets: Vec<String>,
    /// Owner-only TOML file with every node's secrets, accepted or signing (`secrets_file`);
    /// empty: `master_secrets` and `[[nodes]] master_secrets`. Re-read on reload.
    pub secrets_file: String,
    /// Run the embedded migrations at start.
    pub run_migrations: bool,
    /// The proxies whose `Forwarded` / `X-Forwarded-Host` / `X-Forwarded-Proto` are used.
    pub trust_proxy_headers: TrustProxyHeaders,
    /// `human` or `json` log lines.
    pub log_format: String,
    /// After SIGTERM, how long in-flight requests may take to finish before they are dropped.
    pub shutdown_timeout_seconds: u64,
    /// Extra storage nodes served by this process, each with its own database and secrets.
    pub nodes: Vec<NodeSettings>,
    /// Database servers each serving several node names, one database per name, under one
    /// shard (one connection budget and queue per db node).
    pub db_nodes: Vec<DbNodeSettings>,
    pub http: HttpSettings,
    pub shard: ShardSettings,
    pub limits: Limits,
    pub quota: QuotaSettings,
    pub auth: AuthSettings,
    pub batch: BatchSettings,
    pub purge: PurgeSettings,
    pub cors: CorsSettings,
    pub metrics: MetricsSettings,
    pub storage: StorageSettings,
    pub tokenserver: TokenserverSettings,
    pub cache: CacheSettings,
    /// Where this configuration came from, for the start-up lines; not a setting.
    #[serde(skip)]
    pub sources: Sources,
    pub accounts: AccountsSettings,
}

/// The file and the variables `Settings::load` read (names only: values may be secrets).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub file: Option<PathBuf>,
    /// `WEFT_*` variables applied as settings.
    pub variables: Vec<String>,
    /// `WEFT_*` variables that are not settings and do not look like a mistyped one.
    pub ignored: Vec<String>,
}

/// The Prometheus listener, separate from the storage listener so it can stay on loopback or a
/// private network.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Serve `GET /metrics` (and record metrics at all).
    pub enabled: bool,
    /// Address of the metrics listener, `host:port`.
    pub listen: String,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        // Off by default: a self-hosted box needs no second port. 9464 rather than 9090, which
        // Prometheus itself listens on, often on the same machine.
        MetricsSettings { enabled: false, listen: "127.0.0.1:9464".into() }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8000".into(),
            public_url: "http://localhost:8000".into(),
            node_aliases: vec![],
            data_dir: PathBuf::from("./weft-data"),
            database_url: String::new(),
            master_secrets: vec![],
            secrets_file: String::new(),
            run_migrations: true,
            trust_proxy_headers: TrustProxyHeaders::Nobody,
            log_format: "human".into(),
            shutdown_timeout_seconds: 30,
            nodes: vec![],
            db_nodes: vec![],
            http: HttpSettings::default(),
            shard: ShardSettings::default(),
            limits: Limits::default(),
            quota: QuotaSettings::default(),
            auth: AuthSettings::default(),
            batch: BatchSettings::default(),
            purge: PurgeSettings::default(),
            cors: CorsSettings::default(),
            metrics: MetricsSettings::default(),
            storage: StorageSettings::default(),
            tokenserver: TokenserverSettings::default(),
            cache: CacheSettings::default(),
            sources: Sources::default(),
            accounts: AccountsSettings::default(),
        }
    }
}

impl Settings {
    /// Reads the optional file, applies `WEFT_*` variables from `env`, validates.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut tree = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
                text.parse::<toml::Table>().map_err(|e| ConfigError::Parse {
                    path: path.display().to_string(),
                    message: e.message().to_string(),
                })?
            }
            None => toml::Table::new(),
        };
        let (variables, ignored) = environment::apply_env(&mut tree, env)?;
        let mut settings: Settings =
            toml::Value::Table(tree).try_into().map_err(|e: toml::de::Error| ConfigError::Parse {
                path: file.map_or("environment".into(), |p| p.display().to_string()),
                message: e.message().to_string(),
            })?;
        settings.validate()?;
        settings.sources = Sources { file: file.map(Path::to_path_buf), variables, ignored };
        Ok(settings)
    }

    /// Settings that work but that an operator should change, one line each, for `serve` and
    /// `check-config` to print.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.trust_proxy_headers == TrustProxyHeaders::Everybody {
            warnings.push(
                "trust_proxy_headers = true lets any client choose the host its Hawk signature is \
                 checked against; list your proxies instead, e.g. \
                 trust_proxy_headers = [\"127.0.0.1\", \"10.0.0.0/8\"] \
                 (WEFT_TRUST_PROXY_HEADERS=127.0.0.1,10.0.0.0/8)"
                    .into(),
            );
        }
        if self.shard.sqlite_synchronous == "normal" {
            warnings.push(
                "shard.sqlite_synchronous = normal: writes acknowledged just before an OS crash or \
                 power loss can be lost"
                    .into(),
            );
        }
        warnings
    }

    /// The SQLite file used when `database_url` is empty.
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite:{}", self.data_dir.join("weft.db").display())
        } else {
            self.database_url.clone()
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid("listen", format!("{:?} is not host:port with a numeric IP", self.listen)));
        }
        crate::node::canonical_origin(&self.public_url).ok_or_else(|| {
            invalid("public_url", format!("{:?} is not an http(s) origin", self.public_url))
        })?;
        for alias in &self.node_aliases {
            crate::node::canonical_origin(alias)
                .ok_or_else(|| invalid("node_aliases", format!("{alias:?} is not an http(s) origin")))?;
        }
        let url = self.effective_database_url();
        if !known_database_url(&url) {
            return Err(invalid("database_url", DATABASE_URL_FORMS));
        }
        self.validate_nodes()?;
        master_secrets::check_master_secrets("master_secrets", &self.master_secrets)?;
        if self.metrics.enabled && self.metrics.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "metrics.listen",
                format!("{:?} is not host:port with a numeric IP", self.metrics.listen),
            ));
        }
        if !matches!(self.log_format.as_str(), "human" | "json") {
            return Err(invalid("log_format", "must be human or json"));
        }
        self.shard.validate()?;
        self.http.validate()?;
        self.limits.validate()?;
        self.batch.validate()?;
        self.purge.validate()?;
        self.validate_tokenserver()?;
        self.validate_secrets_file()?;
        self.validate_db_nodes()?;
        self.validate_accounts()?;
        self.cache.validate()?;
        Ok(())
    }
}

const DATABASE_URL_FORMS: &str = "must start with sqlite:, postgres:// (or postgresql://) or mysql://";

/// A database URL of a backend Weft serves (whether this build can open it is `check-config`'s).
fn known_database_url(url: &str) -> bool {
    url.starts_with("sqlite:") || url.starts_with("mysql://") || weft_schema::pool::is_postgres_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const LONG_SECRET: &str = "0123456789abcdef0123456789abcdef";

    pub(super) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8000");
        assert_eq!(s.public_url, "http://localhost:8000");
        assert!(s.effective_database_url().starts_with("sqlite:"));
        assert_eq!(s.limits.max_request_bytes, 2_625_536);
    }

    #[test]
    fn durability_and_http_bounds_are_validated() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(s.shard.sqlite_synchronous, "full");
        let s = Settings::load(None, env(&[("WEFT_SHARD_SQLITE_SYNCHRONOUS", "normal")])).unwrap();
        assert_eq!(s.warnings().len(), 1);
        let err = Settings::load(None, env(&[("WEFT_SHARD_SQLITE_SYNCHRONOUS", "off")])).unwrap_err();
        assert!(err.to_string().starts_with("shard.sqlite_synchronous"), "{err}");
        let err = Settings::load(None, env(&[("WEFT_HTTP_BODY_TIMEOUT_MS", "0")])).unwrap_err();
        assert!(err.to_string().starts_with("http"), "{err}");
        assert_eq!(Settings::load(None, env(&[])).unwrap().limits.max_user_collections, 150);
        let err = Settings::load(None, env(&[("WEFT_LIMITS_MAX_USER_COLLECTIONS", "5")])).unwrap_err();
        assert!(err.to_string().starts_with("limits.max_user_collections"), "{err}");
    }

    #[test]
    fn errors_name_the_key() {
        let err = Settings::load(None, env(&[("WEFT_LIMITS_MAX_POST_RECORDS", "ten")])).unwrap_err();
        assert!(err.to_string().contains("WEFT_LIMITS_MAX_POST_RECORDS"), "{err}");
        let err = Settings::load(None, env(&[("WEFT_LISTEN", "nowhere")])).unwrap_err();
        assert!(err.to_string().starts_with("listen:"), "{err}");
        let err = Settings::load(None, env(&[("WEFT_SHARD_REQUEST_TIMEOUT_MS", "2000")])).unwrap_err();
        assert!(err.to_string().starts_with("shard.request_timeout_ms:"), "{err}");
    }
}
