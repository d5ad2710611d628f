//! Turning `Settings` into running services: logging, the master secrets, one pool and shard
//! actor per storage node (with migrations), and the token verifier. Failures here are the
//! one-line errors `weft` prints before exiting.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use weft_actors::cache::{Cache, MemcachedConfig, MemcachedRing, MemoryStore, Store};
use weft_actors::deleter::{Deleter, DeleterGuard};
use weft_actors::shard::{NodeCache, Shard, ShardConfig, StorageConfig};
use weft_actors::storage::purge::Pacing;
use weft_actors::token_verifier::{NodeSecrets, PublishedCredentials, TokenVerifier};
use weft_actors::tokenserver::{
    AccountEventsConfig, Jwk, OAuthConfig, OAuthSetupError, OAuthVerifier, RegisterInitialNode, Tokenserver,
    TokenserverConfig, TokenserverDb, TokenserverDbConfig, TokenserverError,
};
use weft_actors::ActorUnavailable;
use weft_schema::{DbError, DbPool, PoolSettings};

use crate::config::generated_secrets::{self, MasterSecretError};
use crate::config::secrets_file::{master_list, SecretsError, SecretsFile};
use crate::config::Settings;
use crate::node::{canonical_origin, db_node_name, NodeEntry, NodeTable};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    MasterSecret(#[from] MasterSecretError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("{key}: {source}")]
    Database { key: String, source: DbError },
    #[error("cache.servers: {0}")]
    Cache(#[from] weft_actors::cache::memcached::ConfigError),
    #[error("{key}: {source}")]
    Tokenserver { key: String, source: TokenserverSetupError },
    #[error(transparent)]
    SigningKey(#[from] crate::accounts::signing_key::SigningKeyError),
    #[error("accounts.signing_key_file: {0}")]
    AccessTokens(weft_actors::accounts::JwtError),
    #[error("accounts: the push client: {0}")]
    PushClient(reqwest::Error),
}

/// Why the tokenserver cannot start from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum TokenserverSetupError {
    #[error("cannot read {path}: {source}")]
    ReadJwk { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    JwkFile { path: String, source: OAuthSetupError },
    #[error(transparent)]
    OAuth(#[from] OAuthSetupError),
    #[error("registering the initial node: {0}")]
    RegisterNode(#[from] TokenserverError),
}

/// A storage node as configured: the primary one from the top-level keys, or one of `nodes`.
pub struct NodePlan {
    pub key: String,
    pub url: String,
    pub aliases: Vec<String>,
    pub database_url: String,
    pub secrets: Vec<String>,
    /// The db node serving it: node names of one db node share its shard.
    pub db_node: String,
    pub tuning: ShardTuning,
}

/// A db node's shard settings: `shard.*`, or its `[[db_nodes]]` overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardTuning {
    pub threads: usize,
    pub pool_size: u32,
    pub queue_limit: usize,
}

/// What `serve` prints about where the master secret comes from.
pub enum SecretSource {
    Configured,
    File { path: String, generated: bool },
    SecretsFile { path: String },
}

/// Where the secrets came from, and the default list (accepted first, the signing one last)
/// that every node without a list of its own uses.
pub struct Secrets {
    pub default: Vec<String>,
    pub source: SecretSource,
    /// The secrets file as read, when `secrets_file` is set.
    pub file: Option<SecretsFile>,
}

pub struct Services {
    pub nodes: Arc<NodeTable>,
    pub verifier: Addr<TokenVerifier>,
    /// What request workers verify Hawk requests with, published by `verifier`.
    pub credentials: PublishedCredentials,
}

/// Every node this process serves, the primary first, with the secrets each verifies with. A
/// node's list comes from the secrets file, else its `[[nodes]] master_secrets`, else it is
/// the default list: the secrets file's `default`, else `master_secrets`, else the secret
/// generated in the data directory on first start.
pub fn plan_nodes(settings: &Settings) -> Result<(Vec<NodePlan>, Secrets), StartupError> {
    let file = match settings.secrets_file.as_str() {
        "" => None,
        path => Some(SecretsFile::read(std::path::Path::new(path))?),
    };
    let (default, source) = match &file {
        Some(file) if !file.default.is_empty() => {
            (master_list(&file.default), SecretSource::SecretsFile { path: settings.secrets_file.clone() })
        }
        _ if !settings.master_secrets.is_empty() => {
            (settings.master_secrets.clone(), SecretSource::Configured)
        }
        _ => {
            let stored = generated_secrets::load_or_generate(&settings.data_dir)?;
            let source =
                SecretSource::File { path: stored.path.display().to_string(), generated: stored.generated };
            (vec![stored.secret], source)
        }
    };
    let canonical = |url: &str| canonical_origin(url).unwrap_or_else(|| url.to_string());
    let own_list = |url: &str, configured: &[String]| {
        let from_file = file.as_ref().and_then(|f| f.list(Some(url))).map(|list| master_list(list));
        from_file.unwrap_or_else(|| if configured.is_empty() { default.clone() } else { configured.to_vec() })
    };
    let shard = &settings.shard;
    let tuning =
        ShardTuning { threads: shard.threads, pool_size: shard.pool_size, queue_limit: shard.queue_limit };
    let primary = canonical(&settings.public_url);
    let mut plans = vec![NodePlan {
        key: "database_url".into(),
        db_node: format!("node {primary}"),
        tuning,
        secrets: own_list(&primary, &[]),
        url: primary,
        aliases: settings.node_aliases.iter().map(|a| canonical(a)).collect(),
        database_url: settings.effective_database_url(),
    }];
    for (i, node) in settings.nodes.iter().enumerate() {
        let url = canonical(&node.url);
        plans.push(NodePlan {
            key: format!("nodes[{i}].database_url"),
            db_node: format!("node {url}"),
            tuning,
            secrets: own_list(&url, &node.master_secrets),
            url,
            aliases: node.aliases.iter().map(|a| canonical(a)).collect(),
            database_url: node.database_url.clone(),
        });
    }
    for (i, db) in settings.db_nodes.iter().enumerate() {
        let tuning = ShardTuning {
            threads: db.threads.unwrap_or(tuning.threads),
            pool_size: db.pool_size.unwrap_or(tuning.pool_size),
            queue_limit: db.queue_limit.unwrap_or(tuning.queue_limit),
        };
        for (j, name) in db.nodes.iter().enumerate() {
            let url = canonical(&name.url);
            plans.push(NodePlan {
                key: format!("db_nodes[{i}].nodes[{j}]"),
                db_node: format!("db {}", db.name),
                tuning,
                secrets: own_list(&url, &[]),
                url,
                aliases: name.aliases.iter().map(|a| canonical(a)).collect(),
                database_url: db.database_url(name),
            });
        }
    }
    Ok((plans, Secrets { default, source, file }))
}

/// Every list the token verifier holds: the served nodes' and the secrets file's other nodes
/// (served elsewhere, but this process's tokenserver signs for them).
pub fn node_secrets(plans: &[NodePlan], secrets: &Secrets) -> Vec<NodeSecrets> {
    let mut lists: Vec<NodeSecrets> = plans
        .iter()
        .map(|p| NodeSecrets { url: p.url.clone(), aliases: p.aliases.clone(), secrets: p.secrets.clone() })
        .collect();
    if let Some(file) = &secrets.file {
        for (url, list) in file.node_lists() {
            if !lists.iter().any(|n| n.url == url) {
                lists.push(NodeSecrets { url, aliases: vec![], secrets: master_list(list) });
            }
        }
    }
    lists
}

/// The key of the metrics hashes: configured, else the secrets file's, else the one stored in
/// the data directory. That one is created on first start: random on a new install; on an
/// install that already had master secrets, a copy of the oldest default secret, which keyed
/// the hashes before it had a file of its own, so that no user's `hashed_fxa_uid` changes at
/// the upgrade and none changes when that secret is later rotated out.
pub fn metrics_hash_secret(settings: &Settings, secrets: &Secrets) -> Result<String, StartupError> {
    if !settings.tokenserver.fxa_metrics_hash_secret.is_empty() {
        return Ok(settings.tokenserver.fxa_metrics_hash_secret.clone());
    }
    if let Some(file) = secrets.file.as_ref().filter(|f| !f.metrics_hash_secret.is_empty()) {
        return Ok(file.metrics_hash_secret.clone());
    }
    let new_install = matches!(secrets.source, SecretSource::File { generated: true, .. });
    let initial = if new_install { None } else { secrets.default.first().map(String::as_str) };
    Ok(generated_secrets::load_or_create(
        &settings.data_dir,
        generated_secrets::METRICS_HASH_FILE_NAME,
        initial,
    )?
    .secret)
}

/// The pool of one node's database: the db node's `pool_size`, the `shard` timeouts.
pub fn node_pool_settings(settings: &Settings, plan: &NodePlan) -> PoolSettings {
    PoolSettings { max_size: plan.tuning.pool_size, ..settings.shard.pool_settings() }
}

/// Opens every node's pool and applies the embedded migrations when configured to.
pub fn open_pools(
    settings: &Settings,
    plans: &[NodePlan],
    migrate: bool,
) -> Result<Vec<DbPool>, StartupError> {
    plans
        .iter()
        .map(|plan| {
            let err = |source| StartupError::Database { key: plan.key.clone(), source };
            let pool =
                DbPool::connect(&plan.database_url, &node_pool_settings(settings, plan)).map_err(err)?;
            if migrate {
                pool.run_migrations().map_err(err)?;
            }
            Ok(pool)
        })
        .collect()
}

/// The store behind every node's cache (`cache.*`): memcached when servers are configured, else
/// the in-process store; `None` when caching is off. Connects lazily: memcached may still be
/// down. Needs the metrics recorder installed first (it exports the cache's series at 0).
pub fn cache_store(settings: &Settings) -> Result<Option<Arc<dyn Store>>, StartupError> {
    let c = &settings.cache;
    if !c.metadata && c.collections.is_empty() {
        return Ok(None);
    }
    if c.servers.is_empty() {
        if c.memory_bytes == 0 {
            return Ok(None);
        }
        return Ok(Some(Arc::new(MemoryStore::new(usize::try_from(c.memory_bytes).unwrap_or(usize::MAX)))));
    }
    let ring = MemcachedRing::new(MemcachedConfig {
        servers: c.servers.clone(),
        timeout: Duration::from_millis(c.timeout_ms),
        retry_interval: Duration::from_millis(c.retry_interval_ms),
    })?;
    Ok(Some(Arc::new(ring)))
}

/// What `serve` prints about the cache, and a warning when the in-process store is used where
/// other webheads may share the database (a MySQL/MariaDB node: SQLite is one machine's file).
pub fn describe_cache(
    settings: &Settings,
    store: Option<&Arc<dyn Store>>,
    plans: &[NodePlan],
) -> Vec<String> {
    let c = &settings.cache;
    let mut lines = match store.map(|s| s.name()) {
        None => return vec!["weft: cache off".into()],
        Some("memcached") => {
            vec![format!("weft: cache on memcached {} (key prefix {})", c.servers.join(", "), c.key_prefix)]
        }
        Some(_) => {
            let mut lines =
                vec![format!("weft: cache in this process ({} MiB)", c.memory_bytes / (1024 * 1024))];
            if plans.iter().any(|p| p.database_url.starts_with("mysql://")) {
                lines.push(
                    "weft: warning: the in-process cache is private to this process; if other webheads \
                     serve the same MySQL database, set cache.servers (memcached) or cache.memory_bytes = 0"
                        .into(),
                );
            }
            if !c.cache_only.is_empty() {
                lines.push(
                    "weft: warning: cache-only collections in the in-process cache are lost when this \
                     process stops"
                        .into(),
                );
            }
            lines
        }
    };
    if !c.collections.is_empty() {
        lines.push(format!("weft: write-through collections: {}", c.collections.join(", ")));
    }
    if !c.cache_only.is_empty() {
        lines
            .push(format!("weft: cache-only collections (not in the database): {}", c.cache_only.join(", ")));
    }
    lines
}

/// Starts a shard actor per node and the token verifier. Must run inside the actix system.
pub fn start_services(
    settings: &Settings,
    plans: Vec<NodePlan>,
    secrets: &Secrets,
    pools: Vec<DbPool>,
    cache: Option<Arc<dyn Store>>,
) -> Services {
    let lists = node_secrets(&plans, secrets);
    let mut entries: Vec<NodeEntry> = Vec::with_capacity(plans.len());
    for (plan, pool) in plans.iter().zip(pools) {
        let sibling = entries.iter().position(|e| e.db_node == plan.db_node);
        let entry = start_shard(settings, plan, pool, sibling.map(|i| &entries[i].shard), cache.as_ref());
        entries.push(entry);
    }
    let verifier = TokenVerifier::new(
        lists,
        settings.auth.expired_token_grace_seconds,
        settings.auth.max_clock_skew_seconds,
    )
    .with_default_secrets(secrets.default.clone());
    let credentials = verifier.credentials();
    Services { nodes: Arc::new(NodeTable::new(entries)), verifier: verifier.start(), credentials }
}

/// A deleter per db node, over the shards of its node names (none with `purge.enabled =
/// false`); dropping the guards stops them. Only `weft serve` runs them: a one-shot command
/// that starts shards (`weft purge --kind retired`) must not purge behind its caller's back.
/// Must run inside the actix system.
pub fn start_deleters(settings: &Settings, nodes: &NodeTable) -> Vec<DeleterGuard> {
    if !settings.purge.enabled {
        return Vec::new();
    }
    let entries: Vec<NodeEntry> = nodes.iter().collect();
    let mut db_nodes: Vec<&str> = entries.iter().map(|e| e.db_node.as_str()).collect();
    db_nodes.sort_unstable();
    db_nodes.dedup();
    db_nodes
        .into_iter()
        .map(|db_node| {
            let shards = entries.iter().filter(|e| e.db_node == db_node).map(|e| e.shard.clone()).collect();
            Deleter::start(shards, pacing(settings), Duration::from_secs(settings.purge.interval_seconds))
        })
        .collect()
}

/// The deleter's pacing (`purge.*`), for the actor and for `weft purge`.
pub fn pacing(settings: &Settings) -> Pacing {
    let p = &settings.purge;
    Pacing {
        chunk_rows: p.chunk_rows,
        pause: Duration::from_millis(p.pause_ms),
        max_rows_per_second: p.max_rows_per_second,
        grace: Duration::from_secs(p.grace_seconds),
    }
}

/// The storage engine's settings (`limits`, `quota`, `batch`), the same for every node.
pub fn storage_config(settings: &Settings) -> StorageConfig {
    StorageConfig {
        max_read_records: settings.limits.max_total_records,
        max_total_records: settings.limits.max_total_records,
        max_total_bytes: settings.limits.max_total_bytes,
        quota_enabled: settings.quota.enabled,
        quota_enforce: settings.quota.enforce,
        quota_limit_bytes: settings.limits.max_quota_limit,
        batch_ttl_ms: settings.batch.ttl_seconds as i64 * 1000,
        max_open_batches: settings.batch.max_open_per_user,
        max_user_collections: settings.limits.max_user_collections,
    }
}

/// What a node's shard was started from: its database and the shard settings. A reload keeps
/// a running shard whose key is unchanged.
pub fn shard_key(settings: &Settings, plan: &NodePlan) -> String {
    let (s, t) = (&settings.shard, &plan.tuning);
    format!(
        "{} on {} threads={} pool_size={} queue_limit={} connection_timeout_ms={} request_timeout_ms={} \
         sqlite_busy_timeout_ms={}",
        plan.database_url,
        plan.db_node,
        t.threads,
        t.pool_size,
        t.queue_limit,
        s.connection_timeout_ms,
        s.request_timeout_ms,
        s.sqlite_busy_timeout_ms
    )
}

/// Serves one node over its opened pool: on `sibling`'s shard (another node name of the same
/// db node), or on a shard of its own. Must run inside the actix system.
pub fn start_shard(
    settings: &Settings,
    plan: &NodePlan,
    pool: DbPool,
    sibling: Option<&Shard>,
    cache: Option<&Arc<dyn Store>>,
) -> NodeEntry {
    let shard_config = ShardConfig {
        threads: plan.tuning.threads,
        queue_limit: plan.tuning.queue_limit,
        request_timeout: Duration::from_millis(settings.shard.request_timeout_ms),
        db_node: db_node_name(&plan.db_node).to_string(),
    };
    let storage_config = storage_config(settings);
    // Keys carry the node: the same uid on two nodes is two users.
    let cache = cache.map(|store| {
        let cache = Cache::for_node(store.clone(), &settings.cache.key_prefix, &plan.url);
        cache.register_metrics();
        let c = &settings.cache;
        NodeCache::new(cache, c.metadata, c.collections.clone(), c.cache_only.clone())
    });
    // The health check's own one-connection pool. The URL already made `pool`, so this cannot
    // fail; were it to, the check would share the node's pool rather than be missing.
    let health_settings = PoolSettings { max_size: 1, ..settings.shard.pool_settings() };
    let health_pool = DbPool::connect(&plan.database_url, &health_settings).unwrap_or_else(|_| pool.clone());
    let shard = match sibling {
        Some(shard) => shard.serve(&plan.url, pool, storage_config, cache),
        None => Shard::start(&plan.url, pool, shard_config, storage_config, cache),
    };
    NodeEntry {
        health_pool,
        shard,
        db_node: plan.db_node.clone(),
        url: plan.url.clone(),
        aliases: plan.aliases.clone(),
        shard_key: shard_key(settings, plan),
    }
}

/// The tokenserver's database, with the embedded migrations applied when `migrate`. Used by
/// `serve` and by the admin commands.
pub fn tokenserver_pool(settings: &Settings, migrate: bool) -> Result<DbPool, StartupError> {
    let err = |source| StartupError::Database { key: "tokenserver.database_url".into(), source };
    let pool = DbPool::connect(&settings.tokenserver_database_url(), &settings.shard.pool_settings())
        .map_err(err)?;
    if migrate {
        pool.run_migrations().map_err(err)?;
    }
    Ok(pool)
}

pub fn tokenserver_db_config(settings: &Settings) -> TokenserverDbConfig {
    let t = &settings.tokenserver;
    TokenserverDbConfig {
        threads: usize::try_from(t.threads).unwrap_or(1),
        allow_new_users: t.allow_new_users,
        capacity_release_rate: t.node_capacity_release_rate,
    }
}

/// Everything the tokenserver needs, prepared (and checked) before the actix system runs.
pub struct TokenserverPlan {
    pool: DbPool,
    db: TokenserverDbConfig,
    oauth: OAuthConfig,
    config: TokenserverConfig,
    /// This server's own node, registered when the service has no node yet.
    initial_node: Option<(String, i32)>,
}

/// Opens the tokenserver database and reads the JWKs. `plans` are the storage nodes (the first
/// is this server's primary one); `serves_storage` says whether this process serves them.
pub fn plan_tokenserver(
    settings: &Settings,
    plans: &[NodePlan],
    secrets: &Secrets,
    serves_storage: bool,
    accounts: Option<&AccountsPlan>,
) -> Result<TokenserverPlan, StartupError> {
    let t = &settings.tokenserver;
    let pool = tokenserver_pool(settings, settings.run_migrations)?;
    let mut jwks = Vec::new();
    for (key, value) in [
        ("fxa_oauth_primary_jwk", &t.fxa_oauth_primary_jwk),
        ("fxa_oauth_secondary_jwk", &t.fxa_oauth_secondary_jwk),
    ] {
        if !value.trim().is_empty() {
            jwks.push(
                read_jwk(value).map_err(|source| StartupError::Tokenserver {
                    key: format!("tokenserver.{key}"),
                    source,
                })?,
            );
        }
    }
    let oauth = OAuthConfig {
        server_url: t.fxa_oauth_server_url.trim_end_matches('/').to_string(),
        timeout: Duration::from_secs(t.fxa_oauth_request_timeout_seconds),
        jwks,
        issuer: (!t.fxa_oauth_issuer.is_empty()).then(|| t.fxa_oauth_issuer.clone()),
        cache_ttl: Duration::from_secs(t.fxa_oauth_cache_ttl_seconds),
        cache_size: usize::try_from(t.fxa_oauth_cache_size).unwrap_or(usize::MAX),
        local: accounts.map(|a| a.local_issuer(settings)),
    };
    let metrics_secret = metrics_hash_secret(settings, secrets)?;
    let node_type = if !t.node_type.is_empty() {
        t.node_type.clone()
    } else if settings.effective_database_url().starts_with("mysql://") {
        "mysql".into()
    } else if weft_schema::pool::is_postgres_url(&settings.effective_database_url()) {
        "postgres".into()
    } else {
        "sqlite".into()
    };
    let config = TokenserverConfig {
        token_duration: t.token_duration_seconds,
        fxa_email_domain: t.fxa_email_domain.clone(),
        fxa_metrics_hash_secret: metrics_secret,
        node_type,
        database_timeout: (t.database_request_timeout_ms > 0)
            .then(|| Duration::from_millis(t.database_request_timeout_ms)),
        account_events: t.account_events.enabled.then(|| AccountEventsConfig {
            audience: t.account_events.audience.trim().to_string(),
            issuer: settings.account_events_issuer(),
        }),
    };
    let initial_node = match plans.first() {
        Some(primary) if serves_storage => {
            Some((primary.url.clone(), i32::try_from(t.node_capacity).unwrap_or(i32::MAX)))
        }
        _ => None,
    };
    Ok(TokenserverPlan { pool, db: tokenserver_db_config(settings), oauth, config, initial_node })
}

impl TokenserverPlan {
    /// The tokenserver database, which local accounts share (one transaction deletes an
    /// account and retires its tokenserver user).
    pub fn pool(&self) -> DbPool {
        self.pool.clone()
    }
}

/// A JWK given inline (JSON text) or as the path of a file holding it.
fn read_jwk(value: &str) -> Result<Jwk, TokenserverSetupError> {
    let value = value.trim();
    if value.starts_with('{') {
        return Ok(Jwk::parse(value)?);
    }
    let path = || value.to_string();
    let text = std::fs::read_to_string(value)
        .map_err(|source| TokenserverSetupError::ReadJwk { path: path(), source })?;
    Jwk::parse(&text).map_err(|source| TokenserverSetupError::JwkFile { path: path(), source })
}

/// Starts the tokenserver's actors and registers this server's node on first start (answering
/// whether it did). Must run inside the actix system.
pub async fn start_tokenserver(
    plan: TokenserverPlan,
    verifier: Addr<TokenVerifier>,
) -> Result<(Addr<Tokenserver>, bool), StartupError> {
    let db = TokenserverDb::start(plan.pool, plan.db);
    let registered = match plan.initial_node {
        Some((url, capacity)) => db
            .send(RegisterInitialNode { url, capacity })
            .await
            .map_err(ActorUnavailable::of("tokenserver database"))
            .map_err(TokenserverError::from)
            .and_then(|registered| registered)
            .map_err(|err| StartupError::Tokenserver {
                key: "tokenserver.database_url".into(),
                source: err.into(),
            })?,
        None => false,
    };
    let oauth = OAuthVerifier::new(plan.oauth).map_err(|err| StartupError::Tokenserver {
        key: "tokenserver.fxa_oauth_server_url".into(),
        source: err.into(),
    })?;
    Ok((Tokenserver::new(plan.config, oauth, db, verifier).start(), registered))
}

/// Starts the periodic purge of replaced users (`tokenserver.retired_purge`) on a one-thread
/// tokenserver database actor of its own, deleting data through `services`' shards or with
/// signed DELETEs. Must run inside the actix system.
pub fn start_retired_purge(
    settings: &Settings,
    pool: DbPool,
    services: &Services,
) -> Result<(), reqwest::Error> {
    let p = &settings.tokenserver.retired_purge;
    let deleter = crate::purge_retired::target::DataDeleter::new(
        services.nodes.clone(),
        services.credentials.clone(),
        Duration::from_secs(p.request_timeout_seconds),
    )?;
    let db =
        TokenserverDb::start(pool, TokenserverDbConfig { threads: 1, ..tokenserver_db_config(settings) });
    crate::purge_retired::schedule::start(p, db, deleter);
    Ok(())
}

/// Local accounts, prepared before the actix system runs: the signing keys (generated on
/// first start), the actor's configuration and the local issuer the tokenserver trusts.
pub struct AccountsPlan {
    pub keys: crate::accounts::signing_key::SigningKeys,
    pub config: weft_actors::accounts::AccountsConfig,
    pub issuer: String,
}

pub fn plan_accounts(settings: &Settings) -> Result<AccountsPlan, StartupError> {
    let a = &settings.accounts;
    let keys = crate::accounts::signing_key::load_or_generate(&settings.accounts_signing_key_file())?;
    // The accounts' own origin: the issuer the tokenserver trusts and the base of push URLs.
    let public_url = settings.public_url.trim_end_matches('/').to_string();
    let config = weft_actors::accounts::AccountsConfig {
        threads: usize::try_from(a.threads).unwrap_or(1),
        scrypt_log_n: u8::try_from(a.scrypt_log_n).unwrap_or(16),
        max_concurrent_stretches: usize::try_from(a.max_concurrent_stretches).unwrap_or(1),
        stretch_deadline: Duration::from_secs(a.stretch_deadline_seconds),
        retry_after_seconds: u64::from(settings.shard.retry_after_seconds),
        access_token_ttl_seconds: i64::try_from(a.access_token_ttl_seconds).unwrap_or(3600),
        // §6: authorization codes live at most 10 minutes.
        code_ttl_ms: 10 * 60 * 1000,
        hawk_window_seconds: 60,
        rate_limit_per_address: u32::try_from(a.rate_limit_per_address).unwrap_or(u32::MAX),
        rate_limit_per_session: u32::try_from(a.rate_limit_per_session).unwrap_or(u32::MAX),
        failed_logins_per_account_address: u32::try_from(a.failed_logins_per_account_address)
            .unwrap_or(u32::MAX),
        rate_limit_window: Duration::from_secs(a.rate_limit_window_seconds),
        fxa_email_domain: settings.tokenserver.fxa_email_domain.clone(),
        public_url: public_url.clone(),
        push: weft_actors::accounts::PushConfig {
            enabled: a.push_enabled,
            endpoints: weft_actors::accounts::EndpointPolicy {
                allowed_hosts: a.push_allowed_hosts.clone(),
                allow_loopback: a.push_allow_loopback,
            },
            queue_limit: usize::try_from(a.push_queue_limit).unwrap_or(usize::MAX),
            max_in_flight: usize::try_from(a.push_max_in_flight).unwrap_or(usize::MAX),
            timeout: Duration::from_secs(a.push_timeout_seconds),
        },
    };
    Ok(AccountsPlan { keys, config, issuer: public_url })
}

impl AccountsPlan {
    /// What the tokenserver's OAuth verifier trusts besides (or instead of) Mozilla accounts.
    pub fn local_issuer(&self, settings: &Settings) -> weft_actors::tokenserver::LocalIssuer {
        weft_actors::tokenserver::LocalIssuer {
            issuer: self.issuer.clone(),
            jwks: self
                .keys
                .published
                .iter()
                .map(|k| Jwk { kty: "RSA".into(), n: k.n.clone(), e: k.e.clone() })
                .collect(),
            trust_fxa: settings.accounts.trust_mozilla_accounts,
        }
    }

    /// Starts the accounts actor on the tokenserver database. Must run inside the actix system.
    pub fn start(&self, pool: DbPool) -> Result<weft_actors::accounts::AccountsAddr, StartupError> {
        let tokens = weft_actors::accounts::AccessTokens::new(
            self.issuer.clone(),
            &self.keys.signing,
            &self.keys.published,
        )
        .map_err(StartupError::AccessTokens)?;
        weft_actors::accounts::Accounts::start(pool, self.config.clone(), tokens)
            .map_err(StartupError::PushClient)
    }
}

/// Logs go to stderr: one human-readable or JSON line per event, filtered by `WEFT_LOG`
/// (e.g. `WEFT_LOG=debug`), default `info`. Colours only on a terminal, so that journald and
/// log files get plain text; JSON lines carry the event's fields at the top level and the
/// request span (with `request_id`) beside them.
pub fn init_logging(settings: &Settings) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if settings.log_format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}
