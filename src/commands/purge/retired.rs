//! `weft purge --kind retired [--dry-run] [--grace-period 1d] [--max-users N] [--node URL]`
//! (parsed with the other kinds in `crate::commands::purge`): one pass of the purge of replaced and
//! retired users, on demand. It opens the tokenserver database
//! and, when this configuration serves storage nodes, their databases (their data is deleted
//! there directly); users on other nodes are reached with a signed DELETE. Prints a line per
//! user and a summary; exits non-zero when a user could not be purged (it waits for the next
//! pass) or the tokenserver database failed.

use std::time::Duration;

use weft_actors::tokenserver::TokenserverDb;
use weft_schema::models::tokenserver::ReplacedUser;

use crate::commands::account::{parse_duration_ms, BadDuration};
use crate::commands::serve::startup;
use crate::config::Settings;
use crate::node::canonical_origin;
use crate::purge_retired::target::DataDeleter;
use crate::purge_retired::{purge_retired_users, PurgeError, PurgeOptions, RetiredPurgeSummary, RowOutcome};

/// What `weft purge` passes on for the retired kind.
pub struct RetiredArgs {
    pub dry_run: bool,
    /// Default: tokenserver.retired_purge.grace_period_seconds.
    pub grace_period: Option<Duration>,
    /// Default: tokenserver.retired_purge.max_users.
    pub max_users: Option<u64>,
    pub node: Option<String>,
}

/// `0` (no grace at all) or a positive duration like 90s, 30m, 12h, 7d.
pub fn grace_period(text: &str) -> Result<Duration, BadDuration> {
    if matches!(text.trim(), "0" | "0s" | "0m" | "0h" | "0d") {
        return Ok(Duration::ZERO);
    }
    parse_duration_ms(text).map(|ms| Duration::from_millis(ms.unsigned_abs()))
}

#[derive(Debug, thiserror::Error)]
pub enum PurgeCommandError {
    #[error(transparent)]
    Startup(#[from] startup::StartupError),
    #[error(transparent)]
    Purge(#[from] PurgeError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} user(s) could not be purged (see above); they wait for the next pass")]
    Failed(u64),
}

pub fn run(settings: &Settings, args: RetiredArgs) -> Result<(), PurgeCommandError> {
    let p = &settings.tokenserver.retired_purge;
    let node = match args.node.as_deref() {
        Some(url) => Some(
            canonical_origin(url)
                .ok_or_else(|| PurgeCommandError::Invalid(format!("{url:?} is not a node URL")))?,
        ),
        None => None,
    };
    let options = PurgeOptions {
        grace_period: args.grace_period.unwrap_or(Duration::from_secs(p.grace_period_seconds)),
        max_users: args.max_users.unwrap_or(p.max_users),
        node,
        dry_run: args.dry_run,
    };
    if options.max_users == 0 {
        return Err(PurgeCommandError::Invalid("--max-users must be at least 1".into()));
    }
    let (plans, secrets) = startup::plan_nodes(settings)?;
    let pools = if settings.storage.enabled {
        startup::open_pools(settings, &plans, settings.run_migrations)?
    } else {
        Vec::new()
    };
    let tokenserver_pool = startup::tokenserver_pool(settings, settings.run_migrations)?;
    let cache = startup::cache_store(settings)?;
    let timeout = Duration::from_secs(p.request_timeout_seconds);
    let summary = actix::System::new().block_on(async move {
        let services = startup::start_services(settings, plans, &secrets, pools, cache);
        let mut config = startup::tokenserver_db_config(settings);
        config.threads = 1;
        let db = TokenserverDb::start(tokenserver_pool, config);
        let deleter = DataDeleter::new(services.nodes, services.credentials, timeout)?;
        Ok::<_, PurgeCommandError>(purge_retired_users(&db, &deleter, &options, print_row).await?)
    })?;
    print_summary(&summary, args.dry_run);
    match summary.failed {
        0 => Ok(()),
        n => Err(PurgeCommandError::Failed(n)),
    }
}

fn print_row(row: &ReplacedUser, outcome: &RowOutcome) {
    let node = row.node.as_deref().unwrap_or("(node removed)");
    let what = match outcome {
        RowOutcome::Purged { remote: false } => {
            "purged (data deleted on this host's node, row deleted)".to_string()
        }
        RowOutcome::Purged { remote: true } => {
            "purged (data deleted by the node's server, row deleted)".to_string()
        }
        RowOutcome::Nodeless => "row deleted (its node no longer exists)".to_string(),
        RowOutcome::Downed => "waits: the node is downed".to_string(),
        RowOutcome::Failed(e) => format!("failed, waits for the next pass: {e}"),
        RowOutcome::WouldPurge { node: Some(_) } => "would delete its data, then its row".to_string(),
        RowOutcome::WouldPurge { node: None } => {
            "would delete its row (its node no longer exists)".to_string()
        }
    };
    println!("uid {} on {node}: {what}", row.uid);
}

fn print_summary(s: &RetiredPurgeSummary, dry_run: bool) {
    if dry_run {
        println!(
            "dry run: {} replaced user(s) past the grace period, {} examined: {} would be purged, {} wait \
             (node downed); nothing changed",
            s.backlog, s.examined, s.would_purge, s.downed
        );
    } else {
        println!(
            "purged {} replaced user(s) and {} whose node no longer exists; {} wait (node downed), {} failed; \
             {} examined of {} past the grace period",
            s.purged, s.nodeless, s.downed, s.failed, s.examined, s.backlog
        );
    }
    if s.stopped_at_max {
        println!("stopped at --max-users; run again for the rest");
    }
}
