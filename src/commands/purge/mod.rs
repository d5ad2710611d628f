//! `weft purge`: one pass of the deleter on demand, in this process, on the configured storage
//! nodes' databases: what `weft serve`'s deleter actor does periodically (the engine's
//! `storage::purge`), with the same pacing (`purge.*`), a progress bar and a summary; and with
//! `--kind retired`, one pass of the purge of replaced users (`crate::purge_retired`). It can
//! be limited to one node, one user and some kinds, and `--dry-run` only counts. Safe beside a
//! running server (each chunk is a short transaction that removes only rows nobody can see) and
//! safe to interrupt: the next run, or the server's deleter, resumes.

pub mod retired;

use std::time::{Duration, Instant};

use weft_actors::storage::purge::{self, Open, Pace, PurgeKind};
use weft_actors::storage::{Storage, StorageError};

use self::retired::{grace_period, PurgeCommandError, RetiredArgs};
use crate::commands::serve::startup::{self, StartupError};
use crate::config::Settings;
use crate::node::canonical_origin;

#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("--node {0}: no configured storage node has this URL")]
    UnknownNode(String),
    #[error("{node}: {kind}: {source}")]
    Storage { node: String, kind: &'static str, source: StorageError },
    #[error("--uid does not apply to --kind retired (replaced users are purged whole)")]
    UidWithRetired,
    #[error(transparent)]
    Retired(#[from] PurgeCommandError),
}

/// What `--kind` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Items of deleted collections and users.
    Deleted,
    /// Expired items (past `purge.grace_seconds`).
    Ttl,
    /// Expired batch uploads (past `purge.grace_seconds`).
    Batches,
    /// Users the tokenserver replaced or retired, past the grace period: their data on their
    /// node, then their row.
    Retired,
}

impl Kind {
    /// The storage engine's kind; `None` for the tokenserver's retired users.
    fn storage(self) -> Option<PurgeKind> {
        match self {
            Kind::Deleted => Some(PurgeKind::Deleted),
            Kind::Ttl => Some(PurgeKind::Ttl),
            Kind::Batches => Some(PurgeKind::Batches),
            Kind::Retired => None,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct PurgeArgs {
    /// Only this storage node (its URL as configured).
    #[arg(long, value_name = "URL")]
    pub node: Option<String>,
    /// Only this user's rows.
    #[arg(long, value_name = "UID")]
    pub uid: Option<u64>,
    /// Only these kinds (repeatable); default: all (retired when the tokenserver is enabled and
    /// no --uid is given).
    #[arg(long, value_enum)]
    pub kind: Vec<Kind>,
    /// retired: only users replaced longer ago than this, e.g. 1d, 12h, 0 (default:
    /// tokenserver.retired_purge.grace_period_seconds).
    #[arg(long, value_parser = grace_period)]
    pub grace_period: Option<Duration>,
    /// retired: most users this pass goes through (default: tokenserver.retired_purge.max_users).
    #[arg(long)]
    pub max_users: Option<u64>,
    /// Count what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

pub fn run(settings: &Settings, args: PurgeArgs) -> Result<(), PurgeError> {
    let retired = match args.kind.is_empty() {
        true => settings.tokenserver.enabled && args.uid.is_none(),
        false => args.kind.contains(&Kind::Retired),
    };
    if retired && args.uid.is_some() {
        return Err(PurgeError::UidWithRetired);
    }
    let kinds: Vec<PurgeKind> = match args.kind.is_empty() {
        true => PurgeKind::ALL.to_vec(),
        false => args.kind.iter().filter_map(|k| k.storage()).collect(),
    };
    if !kinds.is_empty() {
        purge_storage(settings, &args, &kinds)?;
    }
    if retired {
        let retired_args = RetiredArgs {
            dry_run: args.dry_run,
            grace_period: args.grace_period,
            max_users: args.max_users,
            node: args.node,
        };
        retired::run(settings, retired_args)?;
    }
    Ok(())
}

/// The deleter's kinds, node by node.
fn purge_storage(settings: &Settings, args: &PurgeArgs, kinds: &[PurgeKind]) -> Result<(), PurgeError> {
    let (plans, _) = startup::plan_nodes(settings)?;
    let wanted = args.node.as_deref().map(|url| canonical_origin(url).unwrap_or_else(|| url.to_string()));
    let plans: Vec<_> = plans.into_iter().filter(|p| wanted.as_ref().is_none_or(|w| *w == p.url)).collect();
    if plans.is_empty() {
        return Err(PurgeError::UnknownNode(args.node.clone().unwrap_or_default()));
    }
    let pools = startup::open_pools(settings, &plans, settings.run_migrations)?;
    let pacing = startup::pacing(settings);
    let progress = !args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let started = Instant::now();
    let mut total = 0;
    for (plan, pool) in plans.iter().zip(pools) {
        let storage = Storage::new(&plan.url, pool, startup::storage_config(settings));
        let mut pace = Pace::new(pacing);
        for &kind in kinds {
            let err = |source| PurgeError::Storage { node: plan.url.clone(), kind: kind.label(), source };
            let pending = purge::purgeable(&storage, kind, args.uid, pacing.grace).map_err(err)?;
            if args.dry_run {
                println!("weft: purge {} {}: {pending} rows to remove (dry run)", plan.url, kind.label());
                total += pending;
                continue;
            }
            let bar = progress_bar(progress, &plan.url, kind, pending);
            let kind_started = Instant::now();
            let rows = purge::purge(&storage, kind, args.uid, &mut pace, &Open, &mut |rows| bar.inc(rows))
                .map_err(err)?;
            bar.finish_and_clear();
            let seconds = kind_started.elapsed().as_secs_f64();
            println!(
                "weft: purge {} {}: removed {rows} rows in {seconds:.1} s ({:.0} rows/s)",
                plan.url,
                kind.label(),
                rows as f64 / seconds.max(0.001)
            );
            total += rows;
        }
    }
    let verb = if args.dry_run { "to remove" } else { "removed" };
    println!("weft: purge done: {total} rows {verb} in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn progress_bar(enabled: bool, node: &str, kind: PurgeKind, rows: u64) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(rows);
    let template =
        format!("{node} {} {{bar:30}} {{pos}}/{{len}} rows ({{elapsed}}, eta {{eta}})", kind.label());
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}
