//! Weft's configuration: the TOML file, the `WEFT_*` environment overrides, defaults and
//! validation. Everything else receives an already-validated `Settings`.
//!
//! Naming rule for environment variables: `WEFT_` followed by the key's path with sections
//! joined by `_`, upper-cased. `limits.max_post_records` is `WEFT_LIMITS_MAX_POST_RECORDS`,
//! `public_url` is `WEFT_PUBLIC_URL`. List values are comma-separated. `WEFT_MASTER_SECRET`
//! sets a one-element `master_secrets` list.
//!
//! Unknown `WEFT_*` variables: a variable that looks like a mistyped setting — it starts with a
//! section's prefix (`WEFT_SHARD_…`) or is within two edits of a real variable — stops the start
//! with one line naming it and the likely intended key; any other unknown `WEFT_*` variable (a
//! wrapper script's, a CI job's) is ignored and named in a start-up line. Build-time names are
//! not `WEFT_*` (build.rs), so nothing cargo sets can collide with a setting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::proxy::TrustProxyHeaders;

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
    /// Owner-only TOML file with every node's secrets, accepted or signing (src/secrets.rs);
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

/// Firefox's 13 standard collections and the few newer ones (`extension-storage`, …): a lower
/// `limits.max_user_collections` would refuse Firefox itself.
const MIN_USER_COLLECTIONS: u64 = 20;

/// Master secrets shorter than this are refused: the generated one has 32 random bytes, and
/// tokenlib secrets are used as text (the bytes of the string are the HKDF input key).
pub const MIN_MASTER_SECRET_BYTES: usize = 32;

/// The example configurations in ops/config: their secrets are placeholders, published in this
/// repository, and must never sign a real token (a test checks that every file is listed).
const EXAMPLE_CONFIGS: [&str; 4] = [
    include_str!("../ops/config/loadtest-stack.toml"),
    include_str!("../ops/config/postgres.toml"),
    include_str!("../ops/config/production.toml"),
    include_str!("../ops/config/single-box.toml"),
];

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSettings {
    pub url: String,
    pub aliases: Vec<String>,
    pub database_url: String,
    pub master_secrets: Vec<String>,
}

/// A database server with the node names it serves. Its shard's threads (each holding at most
/// one connection at a time) are the connection budget of all its databases; `pool_size` caps
/// each database's pool.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DbNodeSettings {
    /// Names the db node in messages and plans.
    pub name: String,
    /// `mysql://user:pass@host:port` (no database), or `sqlite:DIRECTORY` for SQLite files.
    pub url: String,
    /// Override `shard.threads`, `shard.pool_size`, `shard.queue_limit` for this db node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_limit: Option<usize>,
    pub nodes: Vec<DbNodeName>,
}

/// One node name (public origin) of a db node and its database there.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DbNodeName {
    pub url: String,
    pub aliases: Vec<String>,
    /// The MySQL database, or the SQLite file name (`.db` added) in the db node's directory.
    pub database: String,
}

impl DbNodeSettings {
    /// The database URL of one of its node names.
    pub fn database_url(&self, name: &DbNodeName) -> String {
        match self.url.strip_prefix("sqlite:") {
            Some(dir) => format!("sqlite:{}/{}.db", dir.trim_end_matches('/'), name.database),
            None => format!("{}/{}", self.url.trim_end_matches('/'), name.database),
        }
    }
}

/// What one client may hold of the server: connections, time, and memory for bodies. An
/// unauthenticated request never costs more than its headers; these bound what the rest may.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Open connections of the whole process; past it new ones wait in the listen backlog.
    pub max_connections: usize,
    /// Request bodies being read or processed at once, each up to `limits.max_request_bytes`.
    pub max_concurrent_bodies: usize,
    /// Deadline for a request's headers, from the connection's first byte (408 past it).
    pub header_timeout_ms: u64,
    /// Deadline for reading one body, waiting for a body slot included (408 past it; 503 when
    /// the time went on waiting for a slot).
    pub body_timeout_ms: u64,
    /// Deadline for a whole request, headers excluded (503 + Retry-After past it).
    pub request_timeout_ms: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_connections: 4096,
            // 64 × the 2.5 MiB `max_request_bytes` bounds bodies in memory to 160 MiB.
            max_concurrent_bodies: 64,
            // actix-web's own default.
            header_timeout_ms: 5000,
            // A full 2.5 MiB body at 128 KiB/s, a slow phone link, takes 20 s.
            body_timeout_ms: 20_000,
            request_timeout_ms: 60_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShardSettings {
    /// Threads of each shard actor's SyncArbiter (each holds at most one connection at a time).
    pub threads: usize,
    /// Maximum connections in each shard's r2d2 pool.
    pub pool_size: u32,
    /// Requests that may wait for or run on one shard before new ones get 503 + Retry-After.
    pub queue_limit: usize,
    /// How long a shard thread waits for a pooled connection before answering 503.
    pub connection_timeout_ms: u64,
    /// How long a request may wait for the shard's answer, queue included, before answering
    /// 503: bounds the wait on a database that accepts connections but no longer answers.
    pub request_timeout_ms: u64,
    /// SQLite `busy_timeout`.
    pub sqlite_busy_timeout_ms: u64,
    /// SQLite `synchronous`: `full` (an acknowledged write survives a power loss) or `normal`
    /// (faster writes; the last ones acknowledged can be lost in an OS crash).
    pub sqlite_synchronous: String,
    /// `Retry-After` seconds sent with a shed (503) response.
    pub retry_after_seconds: u32,
}

/// The limits advertised by `info/configuration` (storage-api.md §5.6), REF defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_post_bytes: u64,
    pub max_post_records: u64,
    pub max_record_payload_bytes: u64,
    pub max_request_bytes: u64,
    pub max_total_bytes: u64,
    pub max_total_records: u64,
    pub max_quota_limit: u64,
    /// Collections one user may hold (those it has plus those with an open batch). A write that
    /// would create one more is refused like a write over quota (403, body 14).
    pub max_user_collections: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaSettings {
    /// Keep per-collection byte counts and check them before writes.
    pub enabled: bool,
    /// Refuse writes (403, body 14) once usage reaches `limits.max_quota_limit`.
    pub enforce: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// How long after expiry a token still opens `info/collections` (PY's bounded grace).
    pub expired_token_grace_seconds: u64,
    /// Largest accepted difference between a Hawk `ts` and the server clock (REF: 52 weeks).
    pub max_clock_skew_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchSettings {
    /// Lifetime of an uncommitted batch (REF and PY: 2 hours).
    pub ttl_seconds: u64,
    /// Batches one user may have open at once; one more is refused with 400, body `17`.
    pub max_open_per_user: u64,
}

/// The deleter (ARCHITECTURE.md): what removes deleted collections' items, expired items and
/// expired batches in the background, and how fast, per db node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PurgeSettings {
    /// Run the deleter in `weft serve` (`weft purge` runs a pass on demand either way).
    pub enabled: bool,
    /// Rest between two passes; 0 runs them back to back.
    pub interval_seconds: u64,
    /// Rows one chunk (one short transaction) removes at most.
    pub chunk_rows: u64,
    /// Rest after every chunk.
    pub pause_ms: u64,
    /// Ceiling on rows removed per second on one db node (0: none).
    pub max_rows_per_second: u64,
    /// How long expired items and batches stay before they are removed (PY's purgettl: a day).
    pub grace_seconds: u64,
}

impl Default for PurgeSettings {
    fn default() -> Self {
        PurgeSettings {
            enabled: true,
            interval_seconds: 300,
            chunk_rows: 1000,
            pause_ms: 100,
            max_rows_per_second: 5000,
            grace_seconds: 86_400,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsSettings {
    /// `*` allows (and echoes) every origin; otherwise only this exact origin.
    pub allowed_origin: String,
    pub max_age_seconds: u64,
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

/// The default shard threads and connections: one per CPU, at least two. With the database on
/// the same machine (the embedded default, and a small box's MariaDB) more threads only queue
/// for the same CPUs: on 2 cores, MariaDB `read` at concurrency 8 had p99 6.4 ms with 2
/// threads, 11 ms with 4 and 16.7 ms with 8, at the same throughput (loadtests/BENCHMARKS.md).
/// A db node on its own server is sized in its configuration (ops/config/).
fn default_shard_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).max(2)
}

impl Default for ShardSettings {
    fn default() -> Self {
        let threads = default_shard_threads();
        ShardSettings {
            threads,
            // Each thread holds at most one connection at a time.
            pool_size: u32::try_from(threads).unwrap_or(u32::MAX),
            queue_limit: 256,
            connection_timeout_ms: 2000,
            request_timeout_ms: 30_000,
            sqlite_busy_timeout_ms: 5000,
            sqlite_synchronous: "full".into(),
            retry_after_seconds: 10,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_post_bytes: 2_621_440,
            max_post_records: 100,
            max_record_payload_bytes: 2_621_440,
            max_request_bytes: 2_625_536,
            max_total_bytes: 262_144_000,
            max_total_records: 10_000,
            // REF computes 2 × 1024 × 1024 × 1000; its docs claim 2 GiB, the code value is served.
            max_quota_limit: 2_097_152_000,
            // Firefox uses about 15 (storage-api.md §3.3); ten times that leaves room for new
            // engines and extensions while a client inventing names stops early.
            max_user_collections: 150,
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings { expired_token_grace_seconds: 7200, max_clock_skew_seconds: 52 * 7 * 86_400 }
    }
}

impl Default for BatchSettings {
    fn default() -> Self {
        // A Firefox profile keeps one batch open per engine while it uploads; 100 leaves room
        // for many devices and abandoned uploads, and bounds staged data per user.
        BatchSettings { ttl_seconds: 7200, max_open_per_user: 100 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// Serve the storage node (`/1.5/…`). Off: a tokenserver-only process.
    pub enabled: bool,
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings { enabled: true }
    }
}

/// The cache in front of the storage databases (ops-model.md §5; the protocol that keeps it
/// consistent is in the `weft-cache` crate). With `servers` it is memcached, shared by every
/// webhead; without, a bounded store inside this process, which is right only when this
/// process is the one webhead of its databases.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Cache each user's collection timestamps (`info/collections`, `X-Last-Modified`,
    /// preconditions).
    pub metadata: bool,
    /// Write-through collections: kept whole in the cache (items and timestamp), read from it,
    /// and updated by every write after the database committed it.
    pub collections: Vec<String>,
    /// Cache-only collections: kept only in the cache, never in the database (lost with the
    /// cache; README). Needs `metadata`.
    pub cache_only: Vec<String>,
    /// memcached servers, `host:port`; keys are spread over them by consistent hashing.
    pub servers: Vec<String>,
    /// Starts every memcached key, so that deployments can share memcached.
    pub key_prefix: String,
    /// Bound on connecting to memcached and on each call.
    pub timeout_ms: u64,
    /// How long reads skip a memcached server after it failed, before trying it again.
    pub retry_interval_ms: u64,
    /// Size of the in-process store when no servers are configured; 0 turns caching off.
    pub memory_bytes: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            metadata: true,
            collections: vec!["meta".into(), "clients".into(), "crypto".into()],
            cache_only: vec![],
            servers: vec![],
            key_prefix: "weft".into(),
            timeout_ms: 250,
            retry_interval_ms: 1000,
            memory_bytes: 64 * 1024 * 1024,
        }
    }
}

impl CacheSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        for server in &self.servers {
            let port_ok = server
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !port_ok {
                return Err(invalid("cache.servers", format!("{server:?} is not host:port")));
            }
        }
        // Collection names as the protocol allows them (storage-api.md §3.2): they end up in keys.
        for (key, names) in [("cache.collections", &self.collections), ("cache.cache_only", &self.cache_only)]
        {
            for name in names {
                let valid = !name.is_empty()
                    && name.len() <= 32
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                if !valid {
                    return Err(invalid(key, format!("{name:?} is not a collection name")));
                }
            }
        }
        if let Some(name) = self.cache_only.iter().find(|name| self.collections.contains(name)) {
            return Err(invalid("cache.cache_only", format!("{name:?} is also in cache.collections")));
        }
        if !self.cache_only.is_empty() && !self.metadata {
            return Err(invalid("cache.cache_only", "needs cache.metadata = true"));
        }
        // memcached keys are at most 250 bytes of visible ASCII; the rest of a key takes < 60.
        if self.key_prefix.len() > 100 || !self.key_prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("cache.key_prefix", "at most 100 visible ASCII characters"));
        }
        if !self.servers.is_empty() && self.timeout_ms == 0 {
            return Err(invalid("cache.timeout_ms", "must be at least 1"));
        }
        Ok(())
    }
}

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

impl Default for CorsSettings {
    fn default() -> Self {
        CorsSettings { allowed_origin: "*".into(), max_age_seconds: 1_728_000 }
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
        let (variables, ignored) = apply_env(&mut tree, env)?;
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

    /// The tokenserver's database: its own, or the storage database.
    pub fn tokenserver_database_url(&self) -> String {
        if self.tokenserver.database_url.is_empty() {
            self.effective_database_url()
        } else {
            self.tokenserver.database_url.clone()
        }
    }

    fn validate_tokenserver(&self) -> Result<(), ConfigError> {
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
        for (i, node) in self.nodes.iter().enumerate() {
            crate::node::canonical_origin(&node.url).ok_or_else(|| {
                invalid(&format!("nodes[{i}].url"), format!("{:?} is not an http(s) origin", node.url))
            })?;
            if !known_database_url(&node.database_url) {
                return Err(invalid(&format!("nodes[{i}].database_url"), DATABASE_URL_FORMS));
            }
            check_master_secrets(&format!("nodes[{i}].master_secrets"), &node.master_secrets)?;
        }
        check_master_secrets("master_secrets", &self.master_secrets)?;
        if self.metrics.enabled && self.metrics.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "metrics.listen",
                format!("{:?} is not host:port with a numeric IP", self.metrics.listen),
            ));
        }
        if !matches!(self.log_format.as_str(), "human" | "json") {
            return Err(invalid("log_format", "must be human or json"));
        }
        if self.shard.threads == 0 || self.shard.pool_size == 0 || self.shard.queue_limit == 0 {
            return Err(invalid("shard", "threads, pool_size and queue_limit must be at least 1"));
        }
        if self.shard.request_timeout_ms <= self.shard.connection_timeout_ms {
            return Err(invalid(
                "shard.request_timeout_ms",
                "must be more than shard.connection_timeout_ms (a request waits for its connection first)",
            ));
        }
        if !matches!(self.shard.sqlite_synchronous.as_str(), "full" | "normal") {
            return Err(invalid("shard.sqlite_synchronous", "must be full or normal"));
        }
        let h = &self.http;
        if h.max_connections == 0 || h.max_concurrent_bodies == 0 {
            return Err(invalid("http", "max_connections and max_concurrent_bodies must be at least 1"));
        }
        if h.header_timeout_ms == 0 || h.body_timeout_ms == 0 || h.request_timeout_ms == 0 {
            return Err(invalid("http", "header, body and request timeouts must be at least 1 ms"));
        }
        let l = &self.limits;
        if l.max_request_bytes < l.max_post_bytes + 4096 {
            return Err(invalid("limits.max_request_bytes", "must be at least max_post_bytes + 4096"));
        }
        if l.max_record_payload_bytes > l.max_post_bytes {
            return Err(invalid("limits.max_record_payload_bytes", "must not exceed max_post_bytes"));
        }
        if l.max_total_records < l.max_post_records || l.max_total_bytes < l.max_post_bytes {
            return Err(invalid(
                "limits.max_total_records",
                "batch totals must be at least the per-POST limits",
            ));
        }
        if l.max_user_collections < MIN_USER_COLLECTIONS {
            return Err(invalid(
                "limits.max_user_collections",
                format!("must be at least {MIN_USER_COLLECTIONS}, room for Firefox's own collections"),
            ));
        }
        if self.batch.ttl_seconds == 0 {
            return Err(invalid("batch.ttl_seconds", "must be at least 1"));
        }
        if self.batch.max_open_per_user == 0 {
            return Err(invalid("batch.max_open_per_user", "must be at least 1"));
        }
        if self.purge.chunk_rows == 0 {
            return Err(invalid("purge.chunk_rows", "must be at least 1"));
        }
        self.validate_tokenserver()?;
        self.validate_secrets_file()?;
        self.validate_db_nodes()?;
        self.validate_accounts()?;
        self.cache.validate()?;
        Ok(())
    }

    fn validate_db_nodes(&self) -> Result<(), ConfigError> {
        let mut urls: Vec<String> = std::iter::once(self.public_url.as_str())
            .chain(self.nodes.iter().map(|n| n.url.as_str()))
            .filter_map(crate::node::canonical_origin)
            .collect();
        for (i, db) in self.db_nodes.iter().enumerate() {
            let key = |field: &str| format!("db_nodes[{i}].{field}");
            if db.name.is_empty() || self.db_nodes[..i].iter().any(|d| d.name == db.name) {
                return Err(invalid(&key("name"), "must be set and differ from every other db node's"));
            }
            if !(db.url.starts_with("sqlite:") || db.url.starts_with("mysql://")) {
                return Err(invalid(&key("url"), "must start with sqlite: or mysql://"));
            }
            if [db.threads, db.queue_limit].contains(&Some(0)) || db.pool_size == Some(0) {
                return Err(invalid(
                    &key("threads"),
                    "threads, pool_size and queue_limit must be at least 1",
                ));
            }
            if db.nodes.is_empty() {
                return Err(invalid(&key("nodes"), "a db node serves at least one node name"));
            }
            for (j, name) in db.nodes.iter().enumerate() {
                let url = crate::node::canonical_origin(&name.url).ok_or_else(|| {
                    invalid(
                        &key(&format!("nodes[{j}].url")),
                        format!("{:?} is not an http(s) origin", name.url),
                    )
                })?;
                if urls.contains(&url) {
                    return Err(invalid(
                        &key(&format!("nodes[{j}].url")),
                        format!("{url} is configured twice"),
                    ));
                }
                urls.push(url);
                let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
                if name.database.is_empty() || !name.database.chars().all(plain) {
                    return Err(invalid(
                        &key(&format!("nodes[{j}].database")),
                        "must be a plain name (letters, digits, _ and -)",
                    ));
                }
            }
        }
        Ok(())
    }

    /// With a secrets file, every secret lives there: a secret also left in this file would be
    /// one that `weft secret` rotations never touch.
    fn validate_secrets_file(&self) -> Result<(), ConfigError> {
        if self.secrets_file.is_empty() {
            return Ok(());
        }
        let move_it = "with secrets_file set, move these secrets into it (`weft secret init` does, \
                       before secrets_file is set) and delete them here";
        if !self.master_secrets.is_empty() {
            return Err(invalid("master_secrets", move_it));
        }
        if let Some(i) = self.nodes.iter().position(|n| !n.master_secrets.is_empty()) {
            return Err(invalid(&format!("nodes[{i}].master_secrets"), move_it));
        }
        if !self.tokenserver.fxa_metrics_hash_secret.is_empty() {
            return Err(invalid(
                "tokenserver.fxa_metrics_hash_secret",
                "with secrets_file set, it is the file's metrics_hash_secret",
            ));
        }
        Ok(())
    }
}

/// Local accounts (local-accounts.md): Weft as its own account server, so Firefox syncs
/// without a Mozilla account. Off by default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsSettings {
    /// Serve the sign-in page and the account endpoints; the tokenserver trusts their tokens.
    pub enabled: bool,
    /// Also accept Mozilla-account tokens (existing users keep syncing). Off unless set: with
    /// it, anyone with a Mozilla account can use this server's storage, invite or not.
    pub trust_mozilla_accounts: bool,
    /// The RS256 signing keys (JSON, owner-only); empty: `<data_dir>/accounts-signing-keys.json`,
    /// generated on first start.
    pub signing_key_file: String,
    /// Threads (each with at most one connection) of the accounts actor's lane for everything
    /// but sign-ins.
    pub threads: u64,
    /// Password stretches (scrypt, 64 MiB each at the default cost) running at once: the
    /// threads of the sign-in lane.
    pub max_concurrent_stretches: u64,
    /// How long a sign-in may wait for a stretch; past it, 503 + Retry-After.
    pub stretch_deadline_seconds: u64,
    /// scrypt cost N = 2^scrypt_log_n (FxA: 16).
    pub scrypt_log_n: u64,
    /// Lifetime of the access tokens the tokenserver and the profile endpoint accept (≤ 3600).
    pub access_token_ttl_seconds: u64,
    /// Default lifetime of `weft account invite` and `reset-password-link` codes.
    pub invite_ttl_hours: u64,
    /// Requests without valid credentials (sign-in, create, reset, status, code and refresh
    /// grants, Hawk that fails to verify) per window per client address (docs/accounts.md).
    pub rate_limit_per_address: u64,
    /// Hawk-signed requests per window per valid session, whatever its address.
    pub rate_limit_per_session: u64,
    /// Wrong passwords per window per (account, client address).
    pub failed_logins_per_account_address: u64,
    pub rate_limit_window_seconds: u64,
}

impl Default for AccountsSettings {
    fn default() -> Self {
        AccountsSettings {
            enabled: false,
            trust_mozilla_accounts: false,
            signing_key_file: String::new(),
            threads: 2,
            max_concurrent_stretches: 2,
            stretch_deadline_seconds: 5,
            scrypt_log_n: 16,
            access_token_ttl_seconds: 3600,
            invite_ttl_hours: 7 * 24,
            rate_limit_per_address: 60,
            rate_limit_per_session: 120,
            failed_logins_per_account_address: 5,
            // FxA's customs server counts in windows of 15 minutes.
            rate_limit_window_seconds: 900,
        }
    }
}

impl Settings {
    /// Where the accounts' signing keys live.
    pub fn accounts_signing_key_file(&self) -> PathBuf {
        if self.accounts.signing_key_file.is_empty() {
            self.data_dir.join("accounts-signing-keys.json")
        } else {
            PathBuf::from(&self.accounts.signing_key_file)
        }
    }

    fn validate_accounts(&self) -> Result<(), ConfigError> {
        let a = &self.accounts;
        if !a.enabled {
            return Ok(());
        }
        if !self.tokenserver.enabled {
            return Err(invalid(
                "accounts.enabled",
                "local accounts need the tokenserver (tokenserver.enabled)",
            ));
        }
        // Passwords are stretched in the page and authPW travels in the body: plain http only
        // where nothing but this machine can listen (local-accounts.md §2, §6).
        if !(self.public_url.starts_with("https://") || crate::accounts::is_loopback_origin(&self.public_url))
        {
            return Err(invalid(
                "public_url",
                "local accounts need an https:// public_url (http only on loopback)",
            ));
        }
        if !(10..=20).contains(&a.scrypt_log_n) {
            return Err(invalid("accounts.scrypt_log_n", "must be between 10 and 20"));
        }
        if a.threads == 0 || a.max_concurrent_stretches == 0 {
            return Err(invalid(
                "accounts.threads",
                "threads and max_concurrent_stretches must be at least 1",
            ));
        }
        if !(1..=3600).contains(&a.access_token_ttl_seconds) {
            return Err(invalid("accounts.access_token_ttl_seconds", "must be between 1 and 3600"));
        }
        if a.rate_limit_window_seconds == 0 || a.invite_ttl_hours == 0 || a.stretch_deadline_seconds == 0 {
            return Err(invalid(
                "accounts.rate_limit_window_seconds",
                "windows and lifetimes must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Why a master secret is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WeakSecret {
    #[error(
        "a secret is shorter than {} bytes (make one with `openssl rand -hex 32`)",
        MIN_MASTER_SECRET_BYTES
    )]
    TooShort,
    #[error("a secret is the placeholder of an example config in ops/config; replace it")]
    Placeholder,
}

/// The rule for every master secret, wherever it is configured: at least 32 bytes, and not one
/// of the published example values.
pub(crate) fn check_master_secret(secret: &str) -> Result<(), WeakSecret> {
    if secret.len() < MIN_MASTER_SECRET_BYTES {
        return Err(WeakSecret::TooShort);
    }
    if example_secrets().iter().any(|p| p == secret) {
        return Err(WeakSecret::Placeholder);
    }
    Ok(())
}

/// A configured secret list: each secret passes `check_master_secret`; `key` names the setting.
pub(crate) fn check_master_secrets(key: &str, secrets: &[String]) -> Result<(), ConfigError> {
    secrets.iter().try_for_each(|secret| check_master_secret(secret).map_err(|e| invalid(key, e.to_string())))
}

/// Every master secret written in the example configurations (top level and `[[nodes]]`).
fn example_secrets() -> Vec<String> {
    fn secrets_of(table: &toml::Table, out: &mut Vec<String>) {
        if let Some(toml::Value::Array(list)) = table.get("master_secrets") {
            out.extend(list.iter().filter_map(|v| v.as_str().map(str::to_string)));
        }
        if let Some(toml::Value::Array(nodes)) = table.get("nodes") {
            for node in nodes.iter().filter_map(toml::Value::as_table) {
                secrets_of(node, out);
            }
        }
    }
    let mut out = Vec::new();
    for text in EXAMPLE_CONFIGS {
        if let Ok(table) = text.parse::<toml::Table>() {
            secrets_of(&table, &mut out);
        }
    }
    out
}

/// Every key path of `Settings` with the TOML type of its default, e.g. `limits.max_post_bytes`.
fn known_keys() -> BTreeMap<String, toml::Value> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
        for (k, v) in table {
            let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            match v {
                // `[[nodes]]` tables only come from the file.
                _ if path == "nodes" || path == "db_nodes" => {}
                toml::Value::Table(t) => walk(&path, t, out),
                other => {
                    out.insert(path, other.clone());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(toml::Value::Table(t)) = toml::Value::try_from(Settings::default()) {
        walk("", &t, &mut out);
    }
    out
}

/// Shorter names the tokenserver's settings are known by (issue 3; REF's are similar), besides
/// the `WEFT_TOKENSERVER_*` names of the naming rule.
const ENV_ALIASES: [(&str, &str); 2] = [
    ("FXA_OAUTH_SERVER_URL", "tokenserver.fxa_oauth_server_url"),
    ("FXA_METRICS_HASH_SECRET", "tokenserver.fxa_metrics_hash_secret"),
];

/// Applies the `WEFT_*` variables to the file's tree. Returns the names applied and the names
/// ignored (see the module's rule for unknown variables).
fn apply_env(
    tree: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(Vec<String>, Vec<String>), ConfigError> {
    let keys = known_keys();
    let (mut applied, mut ignored) = (Vec::new(), Vec::new());
    let mut env: Vec<(String, String)> = env.into_iter().collect();
    env.sort();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("WEFT_") else { continue };
        // Variables read by the test suite or by other tools, not configuration keys.
        if rest.starts_with("TEST_") || rest == "LOG" {
            continue;
        }
        let (path, value) = if rest == "MASTER_SECRET" {
            ("master_secrets".to_string(), toml::Value::Array(vec![toml::Value::String(raw.clone())]))
        } else if let Some(path) = ENV_ALIASES.iter().find(|(alias, _)| *alias == rest).map(|(_, p)| *p) {
            (path.to_string(), toml::Value::String(raw.clone()))
        } else if rest == "TRUST_PROXY_HEADERS" {
            // A boolean word or a list of addresses: the one key with two TOML types.
            let setting = TrustProxyHeaders::from_env(&raw).map_err(|e| invalid(&name, e.to_string()))?;
            let value = toml::Value::try_from(setting).map_err(|e| invalid(&name, e.to_string()))?;
            ("trust_proxy_headers".to_string(), value)
        } else if let Some((path, default)) =
            keys.iter().find(|(path, _)| path.replace('.', "_").to_uppercase() == rest)
        {
            (path.clone(), env_value(&name, &raw, default)?)
        } else if let Some(meant) = mistyped_setting(rest, &keys) {
            return Err(invalid(
                &name,
                format!("unknown setting; did you mean WEFT_{meant}? (see `weft serve --help`)"),
            ));
        } else {
            ignored.push(name);
            continue;
        };
        let mut table = &mut *tree;
        let mut parts: Vec<&str> = path.split('.').collect();
        let leaf = parts.pop().unwrap_or_default();
        for part in parts {
            let entry =
                table.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry.as_table_mut().ok_or_else(|| invalid(&name, format!("{part} is not a section")))?;
        }
        table.insert(leaf.to_string(), value);
        applied.push(name);
    }
    Ok((applied, ignored))
}

/// The setting an unknown variable (without `WEFT_`) was probably meant to be: the closest
/// variable name when it starts with a section's prefix (`SHARD_…`, `LIMITS_…`) or is within
/// two edits of a variable name; `None` for a name that is no setting's typo.
fn mistyped_setting(rest: &str, keys: &BTreeMap<String, toml::Value>) -> Option<String> {
    const MAX_EDITS: usize = 2;
    let names: Vec<String> = keys
        .keys()
        .map(|path| path.replace('.', "_").to_uppercase())
        .chain(["MASTER_SECRET".to_string()])
        .chain(ENV_ALIASES.iter().map(|(alias, _)| alias.to_string()))
        .collect();
    let (closest, edits) = names
        .iter()
        .map(|name| (name, strsim::damerau_levenshtein(rest, name)))
        .min_by_key(|(_, edits)| *edits)?;
    let in_a_section = keys
        .keys()
        .filter_map(|path| path.split_once('.').map(|(section, _)| format!("{}_", section.to_uppercase())))
        .any(|prefix| rest.starts_with(&prefix));
    (in_a_section || edits <= MAX_EDITS).then(|| closest.clone())
}

/// Converts an environment string to the TOML type of the key's default.
fn env_value(name: &str, raw: &str, default: &toml::Value) -> Result<toml::Value, ConfigError> {
    Ok(match default {
        toml::Value::Boolean(_) => match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => toml::Value::Boolean(true),
            "0" | "false" | "no" | "off" => toml::Value::Boolean(false),
            _ => return Err(invalid(name, format!("{raw:?} is not a boolean"))),
        },
        toml::Value::Integer(_) => toml::Value::Integer(
            raw.trim().parse().map_err(|_| invalid(name, format!("{raw:?} is not an integer")))?,
        ),
        toml::Value::Float(_) => toml::Value::Float(
            raw.trim().parse().map_err(|_| invalid(name, format!("{raw:?} is not a number")))?,
        ),
        toml::Value::Array(_) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.into()))
                .collect(),
        ),
        _ => toml::Value::String(raw.to_string()),
    })
}

/// The `weft serve --help` section listing every setting with its variable and default.
pub fn env_help() -> String {
    let mut help = String::from(
        "Settings (TOML key = environment variable, default). Variables override the file.\n\
         WEFT_MASTER_SECRET sets a single master secret; the file takes a list `master_secrets`.\n\
         WEFT_FXA_OAUTH_SERVER_URL and WEFT_FXA_METRICS_HASH_SECRET are aliases of the\n\
         tokenserver.fxa_oauth_server_url and tokenserver.fxa_metrics_hash_secret variables.\n\n",
    );
    for (path, default) in known_keys() {
        let var = format!("WEFT_{}", path.replace('.', "_").to_uppercase());
        help.push_str(&format!("  {path:<36} {var:<44} {default}\n"));
    }
    help.push_str(
        "\nsecrets_file names an owner-only file holding every node's secrets (`weft secret --help`).\n",
    );
    help.push_str("\nStorage nodes besides the primary one are `[[nodes]]` tables in the file (url, aliases, database_url, master_secrets).\n");
    help
}

const DATABASE_URL_FORMS: &str = "must start with sqlite:, postgres:// (or postgresql://) or mysql://";

/// A database URL of a backend Weft serves (whether this build can open it is `check-config`'s).
fn known_database_url(url: &str) -> bool {
    url.starts_with("sqlite:") || url.starts_with("mysql://") || weft_schema::pool::is_postgres_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG_SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
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
    fn env_overrides_nested_keys_with_types() {
        let s = Settings::load(
            None,
            env(&[
                ("WEFT_LIMITS_MAX_POST_RECORDS", "10"),
                ("WEFT_QUOTA_ENABLED", "true"),
                ("WEFT_MASTER_SECRET", LONG_SECRET),
                ("WEFT_NODE_ALIASES", "http://a:1, http://b:2"),
            ]),
        )
        .unwrap();
        assert_eq!(s.limits.max_post_records, 10);
        assert!(s.quota.enabled);
        assert_eq!(s.master_secrets, vec![LONG_SECRET.to_string()]);
        assert_eq!(s.node_aliases.len(), 2);
    }

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

    #[test]
    fn accounts_are_off_and_need_https_off_loopback() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert!(!s.accounts.enabled && !s.accounts.trust_mozilla_accounts);
        let on = [("WEFT_ACCOUNTS_ENABLED", "true")];
        assert!(Settings::load(None, env(&on)).is_ok());
        let err =
            Settings::load(None, env(&[on[0], ("WEFT_PUBLIC_URL", "http://sync.example.com")])).unwrap_err();
        assert!(err.to_string().starts_with("public_url"), "{err}");
        assert!(Settings::load(None, env(&[on[0], ("WEFT_PUBLIC_URL", "https://sync.example.com")])).is_ok());
        assert!(Settings::load(None, env(&[on[0], ("WEFT_PUBLIC_URL", "http://127.0.0.1:9")])).is_ok());
        let err = Settings::load(None, env(&[on[0], ("WEFT_TOKENSERVER_ENABLED", "false")])).unwrap_err();
        assert!(err.to_string().starts_with("accounts.enabled"), "{err}");
    }

    #[test]
    fn cache_settings() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert!(s.cache.metadata && s.cache.servers.is_empty());
        let s = Settings::load(None, env(&[("WEFT_CACHE_SERVERS", "10.0.0.1:11211, mc2:11211")])).unwrap();
        assert_eq!(s.cache.servers, ["10.0.0.1:11211", "mc2:11211"]);
        let err = Settings::load(None, env(&[("WEFT_CACHE_SERVERS", "mc1")])).unwrap_err();
        assert!(err.to_string().starts_with("cache.servers"), "{err}");
        let err = Settings::load(None, env(&[("WEFT_CACHE_KEY_PREFIX", "a b")])).unwrap_err();
        assert!(err.to_string().starts_with("cache.key_prefix"), "{err}");
        assert_eq!(s.cache.collections, ["meta", "clients", "crypto"]);
        let s = Settings::load(None, env(&[("WEFT_CACHE_CACHE_ONLY", "tabs")])).unwrap();
        assert_eq!(s.cache.cache_only, ["tabs"]);
        for bad in [&[("WEFT_CACHE_CACHE_ONLY", "meta")][..], &[("WEFT_CACHE_COLLECTIONS", "a b")][..]] {
            let err = Settings::load(None, env(bad)).unwrap_err();
            assert!(err.to_string().starts_with("cache.c"), "{err}");
        }
        let no_metadata = [("WEFT_CACHE_CACHE_ONLY", "tabs"), ("WEFT_CACHE_METADATA", "false")];
        assert!(Settings::load(None, env(&no_metadata)).is_err());
    }

    #[test]
    fn trust_proxy_headers_takes_booleans_or_addresses() {
        let s = Settings::load(None, env(&[("WEFT_TRUST_PROXY_HEADERS", "127.0.0.1, 10.0.0.0/8")])).unwrap();
        assert!(s.trust_proxy_headers.trusts(Some("10.1.2.3".parse().unwrap())));
        assert!(!s.trust_proxy_headers.trusts(Some("192.0.2.1".parse().unwrap())));
        assert!(s.warnings().is_empty());
        let s = Settings::load(None, env(&[("WEFT_TRUST_PROXY_HEADERS", "true")])).unwrap();
        assert_eq!(s.trust_proxy_headers, TrustProxyHeaders::Everybody);
        assert!(s.warnings()[0].contains("trust_proxy_headers = [\"127.0.0.1\""), "{:?}", s.warnings());
        let err = Settings::load(None, env(&[("WEFT_TRUST_PROXY_HEADERS", "proxy.local")])).unwrap_err();
        assert!(err.to_string().contains("WEFT_TRUST_PROXY_HEADERS"), "{err}");
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

    #[test]
    fn a_mistyped_setting_is_refused_with_the_key_it_resembles() {
        for (typo, meant) in [
            ("WEFT_LIMITS_MAX_POST_RECORD", "WEFT_LIMITS_MAX_POST_RECORDS"),
            ("WEFT_LISTN", "WEFT_LISTEN"),
            ("WEFT_MASTER_SECRT", "WEFT_MASTER_SECRET"),
            ("WEFT_SHARD_THREAD_COUNT", "WEFT_SHARD_THREADS"),
            ("WEFT_TOKENSERVER_NO_SUCH_KEY", ""),
        ] {
            let err = Settings::load(None, env(&[(typo, "1")])).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{typo}: unknown setting; did you mean {meant}")), "{err}");
        }
    }

    #[test]
    fn unrelated_weft_variables_are_ignored_and_reported() {
        let s = Settings::load(
            None,
            env(&[
                ("WEFT_BUILD", "local"),
                ("WEFT_WRAPPER_NOTE", "x"),
                ("WEFT_LISTEN", "127.0.0.1:9000"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:9000");
        assert_eq!(s.sources.variables, vec!["WEFT_LISTEN"]);
        assert_eq!(s.sources.ignored, vec!["WEFT_BUILD", "WEFT_WRAPPER_NOTE"]);
        assert!(s.sources.file.is_none());
    }

    #[test]
    fn short_and_placeholder_master_secrets_are_refused_naming_the_key() {
        let err = Settings::load(None, env(&[("WEFT_MASTER_SECRET", "s3cret")])).unwrap_err();
        assert!(err.to_string().starts_with("master_secrets: a secret is shorter than 32 bytes"), "{err}");
        for placeholder in example_secrets() {
            let err = Settings::load(None, env(&[("WEFT_MASTER_SECRET", placeholder.as_str())])).unwrap_err();
            assert!(err.to_string().starts_with("master_secrets: a secret is the placeholder"), "{err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("weft.toml");
        std::fs::write(
            &file,
            format!("[[nodes]]\nurl = \"http://b:1\"\ndatabase_url = \"sqlite:/tmp/b.db\"\nmaster_secrets = [\"{LONG_SECRET}\", \"short\"]\n"),
        )
        .unwrap();
        let err = Settings::load(Some(&file), env(&[])).unwrap_err();
        assert!(err.to_string().starts_with("nodes[0].master_secrets: a secret is shorter"), "{err}");
    }

    #[test]
    fn every_example_config_is_a_source_of_placeholders() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/config");
        let files = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "toml")));
        assert_eq!(files.count(), EXAMPLE_CONFIGS.len(), "list every ops/config/*.toml in EXAMPLE_CONFIGS");
        assert!(example_secrets().iter().any(|s| s.starts_with("CHANGE-ME")));
    }
}
