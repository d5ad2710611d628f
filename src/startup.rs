//! Turning `Settings` into running services: logging, the master secrets, one pool and shard
//! actor per storage node (with migrations), and the token verifier. Failures here are the
//! one-line errors `weft` prints before exiting.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use weft_actors::shard::{Shard, ShardConfig, StorageConfig};
use weft_actors::token_verifier::{NodeSecrets, TokenVerifier};
use weft_actors::tokenserver::{
    Jwk, OAuthConfig, OAuthSetupError, OAuthVerifier, RegisterInitialNode, Tokenserver, TokenserverConfig,
    TokenserverDb, TokenserverDbConfig, TokenserverError,
};
use weft_actors::ActorUnavailable;
use weft_schema::{DbError, DbPool, PoolSettings, SqliteSynchronous};

use crate::config::Settings;
use crate::master_secret::{self, MasterSecretError};
use crate::node::{canonical_origin, NodeEntry, NodeTable};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    MasterSecret(#[from] MasterSecretError),
    #[error("{key}: {source}")]
    Database { key: String, source: DbError },
    #[error("{key}: {source}")]
    Tokenserver { key: String, source: TokenserverSetupError },
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
}

/// What `serve` prints about where the master secret comes from.
pub enum SecretSource {
    Configured,
    File { path: String, generated: bool },
}

pub struct Services {
    pub nodes: Arc<NodeTable>,
    pub verifier: Addr<TokenVerifier>,
}

/// Every node this process serves, the primary first. Resolves the primary node's secrets,
/// generating the default secret file when none is configured.
pub fn plan_nodes(settings: &Settings) -> Result<(Vec<NodePlan>, SecretSource), StartupError> {
    let (secrets, source) = if settings.master_secrets.is_empty() {
        let stored = master_secret::load_or_generate(&settings.data_dir)?;
        let source =
            SecretSource::File { path: stored.path.display().to_string(), generated: stored.generated };
        (vec![stored.secret], source)
    } else {
        (settings.master_secrets.clone(), SecretSource::Configured)
    };
    let canonical = |url: &str| canonical_origin(url).unwrap_or_else(|| url.to_string());
    let mut plans = vec![NodePlan {
        key: "database_url".into(),
        url: canonical(&settings.public_url),
        aliases: settings.node_aliases.iter().map(|a| canonical(a)).collect(),
        database_url: settings.effective_database_url(),
        secrets,
    }];
    for (i, node) in settings.nodes.iter().enumerate() {
        plans.push(NodePlan {
            key: format!("nodes[{i}].database_url"),
            url: canonical(&node.url),
            aliases: node.aliases.iter().map(|a| canonical(a)).collect(),
            database_url: node.database_url.clone(),
            // A node without its own list shares the primary's secrets.
            secrets: if node.master_secrets.is_empty() {
                plans[0].secrets.clone()
            } else {
                node.master_secrets.clone()
            },
        });
    }
    Ok((plans, source))
}

pub fn pool_settings(settings: &Settings) -> PoolSettings {
    PoolSettings {
        max_size: settings.shard.pool_size,
        connection_timeout: Duration::from_millis(settings.shard.connection_timeout_ms),
        sqlite_busy_timeout: Duration::from_millis(settings.shard.sqlite_busy_timeout_ms),
        // `validate` admits only `full` and `normal`.
        sqlite_synchronous: if settings.shard.sqlite_synchronous == "normal" {
            SqliteSynchronous::Normal
        } else {
            SqliteSynchronous::Full
        },
    }
}

/// Opens every node's pool and applies the embedded migrations when configured to.
pub fn open_pools(
    settings: &Settings,
    plans: &[NodePlan],
    migrate: bool,
) -> Result<Vec<DbPool>, StartupError> {
    let pool_settings = pool_settings(settings);
    plans
        .iter()
        .map(|plan| {
            let err = |source| StartupError::Database { key: plan.key.clone(), source };
            let pool = DbPool::connect(&plan.database_url, &pool_settings).map_err(err)?;
            if migrate {
                pool.run_migrations().map_err(err)?;
            }
            Ok(pool)
        })
        .collect()
}

/// Starts a shard actor per node and the token verifier. Must run inside the actix system.
pub fn start_services(settings: &Settings, plans: Vec<NodePlan>, pools: Vec<DbPool>) -> Services {
    let shard_config =
        ShardConfig { threads: settings.shard.threads, queue_limit: settings.shard.queue_limit };
    let storage_config = StorageConfig {
        max_read_records: settings.limits.max_total_records,
        max_total_records: settings.limits.max_total_records,
        max_total_bytes: settings.limits.max_total_bytes,
        quota_enabled: settings.quota.enabled,
        quota_enforce: settings.quota.enforce,
        quota_limit_bytes: settings.limits.max_quota_limit,
        batch_ttl_ms: settings.batch.ttl_seconds as i64 * 1000,
    };
    let secrets = plans
        .iter()
        .map(|p| NodeSecrets { url: p.url.clone(), aliases: p.aliases.clone(), secrets: p.secrets.clone() })
        .collect();
    let health_settings = PoolSettings { max_size: 1, ..pool_settings(settings) };
    let entries = plans
        .into_iter()
        .zip(pools)
        .map(|(plan, pool)| NodeEntry {
            // The URL already made `pool`, so this cannot fail; were it to, the check would
            // share the node's pool rather than be missing.
            health_pool: DbPool::connect(&plan.database_url, &health_settings)
                .unwrap_or_else(|_| pool.clone()),
            shard: Shard::start(&plan.url, pool, shard_config.clone(), storage_config.clone()),
            url: plan.url,
            aliases: plan.aliases,
        })
        .collect();
    let verifier = TokenVerifier::new(
        secrets,
        settings.auth.expired_token_grace_seconds,
        settings.auth.max_clock_skew_seconds,
    )
    .start();
    Services { nodes: Arc::new(NodeTable::new(entries)), verifier }
}

/// The tokenserver's database, with the embedded migrations applied when `migrate`. Used by
/// `serve` and by the admin commands.
pub fn tokenserver_pool(settings: &Settings, migrate: bool) -> Result<DbPool, StartupError> {
    let err = |source| StartupError::Database { key: "tokenserver.database_url".into(), source };
    let pool =
        DbPool::connect(&settings.tokenserver_database_url(), &pool_settings(settings)).map_err(err)?;
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
    serves_storage: bool,
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
    };
    // The metrics hash only needs to be secret and stable; the primary node's first master
    // secret is both, so a default install needs no extra secret.
    let metrics_secret = if t.fxa_metrics_hash_secret.is_empty() {
        plans.first().and_then(|p| p.secrets.first()).cloned().unwrap_or_default()
    } else {
        t.fxa_metrics_hash_secret.clone()
    };
    let node_type = if !t.node_type.is_empty() {
        t.node_type.clone()
    } else if settings.effective_database_url().starts_with("mysql://") {
        "mysql".into()
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
    };
    let initial_node = match plans.first() {
        Some(primary) if serves_storage => {
            Some((primary.url.clone(), i32::try_from(t.node_capacity).unwrap_or(i32::MAX)))
        }
        _ => None,
    };
    Ok(TokenserverPlan { pool, db: tokenserver_db_config(settings), oauth, config, initial_node })
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

/// Hides the password of a database URL before it is printed.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(redact_url("mysql://weft:pw@db:3306/sync"), "mysql://weft:***@db:3306/sync");
        assert_eq!(redact_url("mysql://root@127.0.0.1/x"), "mysql://root@127.0.0.1/x");
        assert_eq!(redact_url("sqlite:./weft-data/weft.db"), "sqlite:./weft-data/weft.db");
    }
}
