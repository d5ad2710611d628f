//! Live reload: on SIGHUP (`systemctl reload weft`, or `weft reload`) the server re-reads its
//! configuration and secrets and applies, without a restart, what a fleet changes while users
//! sync: storage nodes added or removed, a node's database, shard threads/pool/queue bound and
//! timeouts, and every secret list. Requests already routed finish on the shard they hold; a
//! replaced shard stops once its last request is answered. A file that does not load changes
//! nothing. Every outcome is logged, counted (`weft_reloads_total`, `weft_reload_success`,
//! `weft_reload_timestamp_seconds`) and written to `data_dir/reload-status`, where `weft reload`
//! reads it back to print.
//!
//! Why a signal rather than an HTTP endpoint: it is the Unix convention systemd's `reload`
//! uses, it needs no listener and opens no new way in, and only the service's own user (or
//! root) can send it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix::Addr;
use actix_web::web::Data;
use weft_actors::cache::Store;
use weft_actors::token_verifier::{NodeSecrets, SetSecrets, TokenVerifier};
use weft_schema::DbPool;

use crate::commands::serve::startup::{self, NodePlan};
use crate::config::Settings;
use crate::web::AppState;

pub const PID_FILE: &str = "weft.pid";
pub const STATUS_FILE: &str = "reload-status";

/// Settings a reload applies. Every other key is read at start only: a change is reported,
/// and applied by the next restart.
const RELOADABLE: [&str; 8] = [
    "public_url",
    "node_aliases",
    "database_url",
    "master_secrets",
    "secrets_file",
    "nodes",
    "db_nodes",
    "shard",
];

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Plan(#[from] startup::StartupError),
    #[error("token verifier: {0}")]
    Verifier(#[from] actix::MailboxError),
    /// A new node's database could not be opened or migrated.
    #[error("{node}: {source}")]
    Database { node: String, source: weft_schema::DbError },
    #[error("{node}: {source}")]
    Blocking { node: String, source: actix_web::error::BlockingError },
}

/// The outcome of one reload, as `weft reload` reads it back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReloadStatus {
    pub pid: u32,
    /// Reloads attempted by this process, the last one included.
    pub generation: u64,
    pub time: u64,
    pub ok: bool,
    pub message: String,
}

pub struct Reloader {
    config: Option<PathBuf>,
    /// What the process started with: the keys a reload does not apply are compared with it.
    running: Arc<Settings>,
    state: Data<AppState>,
    /// The owner of the secrets: a reload sends it the new lists.
    verifier: Addr<TokenVerifier>,
    /// The cache store new shards use (the one the process started with).
    cache: Option<Arc<dyn Store>>,
    /// The lists the token verifier holds now.
    applied: Vec<NodeSecrets>,
    generation: u64,
}

impl Reloader {
    pub fn new(
        config: Option<PathBuf>,
        running: Arc<Settings>,
        state: Data<AppState>,
        verifier: Addr<TokenVerifier>,
        cache: Option<Arc<dyn Store>>,
        applied: Vec<NodeSecrets>,
    ) -> Reloader {
        Reloader { config, running, state, verifier, cache, applied, generation: 0 }
    }

    /// Reloads once and records the outcome (log line, metrics, status file).
    pub async fn reload(&mut self) -> ReloadStatus {
        self.generation += 1;
        let result = self.apply().await;
        let time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (ok, message) = match result {
            Ok(summary) => {
                tracing::info!(generation = self.generation, "reload applied: {summary}");
                (true, summary)
            }
            Err(why) => {
                tracing::error!(generation = self.generation, "reload refused, nothing changed: {why}");
                (false, format!("nothing changed: {why}"))
            }
        };
        metrics::counter!("weft_reloads_total", "outcome" => if ok { "applied" } else { "refused" })
            .increment(1);
        metrics::gauge!("weft_reload_success").set(f64::from(u8::from(ok)));
        metrics::gauge!("weft_reload_timestamp_seconds").set(time as f64);
        let status = ReloadStatus { pid: std::process::id(), generation: self.generation, time, ok, message };
        if let Err(e) = write_status(&self.running.data_dir, &status) {
            tracing::warn!("cannot write {STATUS_FILE}: {e}");
        }
        status
    }

    async fn apply(&mut self) -> Result<String, ReloadError> {
        let settings = Settings::load(self.config.as_deref(), std::env::vars())?;
        let (plans, secrets) = startup::plan_nodes(&settings)?;
        let restart_only = restart_only_changes(&self.running, &settings);
        let (entries, started) = if self.running.storage.enabled {
            let (entries, started) = self.shards(&settings, &plans).await?;
            (Some(entries), started)
        } else {
            (None, Vec::new())
        };
        let lists = startup::node_secrets(&plans, &secrets);
        let default = secrets.default.clone();
        // The lists of removed nodes stay until the table no longer routes to them, and a new
        // node's list is in place before the table routes to it: no request between the steps
        // meets a node without secrets.
        let mut during = lists.clone();
        during.extend(self.applied.iter().filter(|old| !lists.iter().any(|n| n.url == old.url)).cloned());
        let verifier = &self.verifier;
        let set = |nodes| verifier.send(SetSecrets { nodes, default: default.clone() });
        set(during).await?;
        let before: BTreeSet<String> = self.state.nodes.iter().map(|n| n.url).collect();
        if let Some(entries) = entries {
            self.state.nodes.replace(entries);
        }
        set(lists.clone()).await?;
        self.applied = lists;

        let after: BTreeSet<String> = plans.iter().map(|p| p.url.clone()).collect();
        let mut summary =
            format!("{} storage node(s)", if self.running.storage.enabled { after.len() } else { 0 });
        let added: Vec<_> = after.difference(&before).cloned().collect();
        let removed: Vec<_> = before.difference(&after).cloned().collect();
        let restarted: Vec<_> = started.into_iter().filter(|u| before.contains(u)).collect();
        for (what, urls) in [("added", added), ("removed", removed), ("new shard for", restarted)] {
            if self.running.storage.enabled && !urls.is_empty() {
                summary.push_str(&format!("; {what} {}", urls.join(", ")));
            }
        }
        summary.push_str(&format!(
            "; secrets: default list of {}, {} node list(s)",
            secrets.default.len(),
            self.applied.len()
        ));
        if !restart_only.is_empty() {
            summary.push_str(&format!("; changed, applied at the next restart: {}", restart_only.join(", ")));
        }
        Ok(summary)
    }

    /// The node table for `plans`: running shards whose database and shard settings are
    /// unchanged are kept; other nodes get a new pool (migrated when `run_migrations`) and a
    /// new shard. Answers the entries and the urls of the new shards. Any pool that cannot
    /// be opened refuses the whole reload.
    async fn shards(
        &self,
        settings: &Settings,
        plans: &[NodePlan],
    ) -> Result<(Vec<crate::node::NodeEntry>, Vec<String>), ReloadError> {
        let current: Vec<_> = self.state.nodes.iter().collect();
        let kept_entry = |plan: &NodePlan| {
            let key = startup::shard_key(settings, plan);
            current.iter().find(|e| e.url == plan.url && e.shard_key == key).cloned()
        };
        // Kept entries first, so that a db node's new database joins the db node's running
        // shard when its settings did not change.
        let mut entries: Vec<(usize, crate::node::NodeEntry)> = Vec::with_capacity(plans.len());
        for (i, plan) in plans.iter().enumerate() {
            if let Some(mut kept) = kept_entry(plan) {
                kept.aliases = plan.aliases.clone();
                entries.push((i, kept));
            }
        }
        let mut started = Vec::new();
        for (i, plan) in plans.iter().enumerate().filter(|(_, p)| kept_entry(p).is_none()) {
            let pool = open_pool(settings, plan).await?;
            let sibling = entries
                .iter()
                .find(|(_, e)| {
                    e.db_node == plan.db_node && e.shard_key.ends_with(&db_node_part(settings, plan))
                })
                .map(|(_, e)| e.shard.clone());
            entries
                .push((i, startup::start_shard(settings, plan, pool, sibling.as_ref(), self.cache.as_ref())));
            started.push(plan.url.clone());
        }
        entries.sort_by_key(|(i, _)| *i);
        Ok((entries.into_iter().map(|(_, e)| e).collect(), started))
    }
}

/// The part of a shard key every node name of a db node shares (the db node and its settings):
/// a new database joins a running shard only when this part is unchanged.
fn db_node_part(settings: &Settings, plan: &NodePlan) -> String {
    let key = startup::shard_key(settings, plan);
    key.split_once(" on ").map_or(key.clone(), |(_, rest)| rest.to_string())
}

/// Connecting and migrating block: done on the blocking pool, never on a worker.
async fn open_pool(settings: &Settings, plan: &NodePlan) -> Result<DbPool, ReloadError> {
    let url = plan.database_url.clone();
    let pool_settings = startup::node_pool_settings(settings, plan);
    let migrate = settings.run_migrations;
    let opened = actix_web::web::block(move || {
        let pool = DbPool::connect(&url, &pool_settings)?;
        if migrate {
            pool.run_migrations()?;
        }
        Ok(pool)
    })
    .await
    .map_err(|source| ReloadError::Blocking { node: plan.key.clone(), source })?;
    opened.map_err(|source| ReloadError::Database { node: plan.key.clone(), source })
}

/// The top-level keys (and `shard.retry_after_seconds`, which the HTTP layer reads) that
/// differ between `running` and `new` and that a reload does not apply.
fn restart_only_changes(running: &Settings, new: &Settings) -> Vec<String> {
    let table = |s: &Settings| match toml::Value::try_from(s) {
        Ok(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };
    let (old, new_table) = (table(running), table(new));
    let mut changed: Vec<String> = old
        .keys()
        .chain(new_table.keys())
        .filter(|k| !RELOADABLE.contains(&k.as_str()) && old.get(*k) != new_table.get(*k))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if running.shard.retry_after_seconds != new.shard.retry_after_seconds {
        changed.push("shard.retry_after_seconds".into());
    }
    changed
}

/// Records this process's id for `weft reload` (owner-only, like the rest of the data dir).
pub fn write_pid(data_dir: &Path) -> std::io::Result<()> {
    std::fs::write(data_dir.join(PID_FILE), format!("{}\n", std::process::id()))
}

fn write_status(data_dir: &Path, status: &ReloadStatus) -> std::io::Result<()> {
    let text = serde_json::to_string(status).map_err(std::io::Error::other)?;
    let tmp = data_dir.join(format!("{STATUS_FILE}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, data_dir.join(STATUS_FILE))
}

pub fn read_status(data_dir: &Path) -> Option<ReloadStatus> {
    serde_json::from_str(&std::fs::read_to_string(data_dir.join(STATUS_FILE)).ok()?).ok()
}

/// Reloads on every SIGHUP until the system stops.
pub fn on_sighup(mut reloader: Reloader) -> std::io::Result<()> {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup())?;
    actix_web::rt::spawn(async move {
        while hangups.recv().await.is_some() {
            reloader.reload().await;
        }
    });
    Ok(())
}
