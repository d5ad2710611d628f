//! The purge of replaced and retired users (tokenserver-api.md §10.6, ops-model.md §4.1): the
//! tokenserver rows replaced more than a grace period ago have their storage data deleted on
//! their node (`target`), then the row is deleted and its slot given back to the node.
//! `purge_retired_users` is one pass; `weft purge --kind retired` (`crate::commands::purge::retired`) runs one on
//! demand and `weft serve` every interval (`schedule`).
//!
//! A pass walks the eligible rows in uid order, at most `max_users` of them. Each row is done
//! data first, row second, and each step is idempotent, so a pass killed anywhere is completed
//! by the next one: a row whose data went but whose deletion did not is simply done again. A
//! row that fails (its node unreachable, a 5xx) stays for the next pass: REF bumps its
//! `replaced_at` instead, which would delay a transient failure by a whole grace period and
//! rewrite a time operators read; the uid order already keeps a pass from looping on it.

pub mod schedule;
pub mod target;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::{Addr, Handler, Message};
use weft_actors::tokenserver::{
    purge_step, CountReplacedUsers, ForgetUser, PurgeStep, ReplacedUsers, TokenserverDb, TokenserverError,
};
use weft_actors::ActorUnavailable;
use weft_schema::models::tokenserver::ReplacedUser;

use self::target::{DataDeleter, DeleteFailure};

/// Rows read from the tokenserver database at a time.
const PAGE: u64 = 100;

/// What one pass does.
#[derive(Debug, Clone)]
pub struct PurgeOptions {
    /// Rows replaced less than this long ago are left alone.
    pub grace_period: Duration,
    /// Most rows one pass goes through.
    pub max_users: u64,
    /// Only rows on this node (canonical URL).
    pub node: Option<String>,
    /// Report what would be done; change nothing.
    pub dry_run: bool,
}

/// What happened to one row.
#[derive(Debug)]
pub enum RowOutcome {
    /// Data deleted (on this process's shard or the serving process), row deleted.
    Purged { remote: bool },
    /// The node no longer exists: the row alone was deleted.
    Nodeless,
    /// The node is downed: left for a later pass.
    Downed,
    /// The data could not be deleted: left for the next pass.
    Failed(DeleteFailure),
    /// Dry run: what would have been done (`None`: a nodeless row, deleted alone).
    WouldPurge { node: Option<String> },
}

impl RowOutcome {
    /// Every `outcome` label a real pass records.
    const LABELS: [&'static str; 4] = ["purged", "nodeless", "downed", "failed"];

    /// The `outcome` label of `weft_retired_purge_users_total`.
    fn label(&self) -> &'static str {
        match self {
            RowOutcome::Purged { .. } => "purged",
            RowOutcome::Nodeless => "nodeless",
            RowOutcome::Downed => "downed",
            RowOutcome::Failed(_) => "failed",
            RowOutcome::WouldPurge { .. } => "dry_run",
        }
    }
}

/// The result of one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetiredPurgeSummary {
    /// Rows eligible when the pass started (on the chosen node).
    pub backlog: u64,
    /// Rows the pass went through (≤ `max_users`).
    pub examined: u64,
    /// Data and row deleted.
    pub purged: u64,
    /// Row deleted without a storage call (node gone).
    pub nodeless: u64,
    /// Left alone because the node is downed.
    pub downed: u64,
    /// Left for the next pass after a failure.
    pub failed: u64,
    /// Dry run: rows that would have been purged (data and row, or row alone).
    pub would_purge: u64,
    /// The pass stopped at `max_users` with rows left.
    pub stopped_at_max: bool,
}

/// Why a pass stopped before its end: the tokenserver database failed.
#[derive(Debug, thiserror::Error)]
#[error("tokenserver database: {0}")]
pub struct PurgeError(#[from] TokenserverError);

/// Exports the purge's series at 0 (the last success at 0: never), so that rates and alerts see
/// them before the first pass.
pub fn register_metrics() {
    for outcome in RowOutcome::LABELS {
        metrics::counter!("weft_retired_purge_users_total", "outcome" => outcome).absolute(0);
    }
    for reason in DeleteFailure::REASONS {
        metrics::counter!("weft_retired_purge_failures_total", "reason" => reason).absolute(0);
    }
    for outcome in ["success", "failure"] {
        metrics::counter!("weft_retired_purge_runs_total", "outcome" => outcome).absolute(0);
    }
    metrics::gauge!("weft_retired_purge_backlog_users").set(0.0);
    metrics::gauge!("weft_retired_purge_last_success_timestamp_seconds").set(0.0);
}

/// One pass over the users replaced more than `options.grace_period` ago. `report` sees every
/// row with its outcome (the command prints them). Fails only when the tokenserver database
/// does; a row whose data cannot be deleted is counted and left.
pub async fn purge_retired_users(
    db: &Addr<TokenserverDb>,
    deleter: &DataDeleter,
    options: &PurgeOptions,
    mut report: impl FnMut(&ReplacedUser, &RowOutcome),
) -> Result<RetiredPurgeSummary, PurgeError> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let before = now.saturating_sub(i64::try_from(options.grace_period.as_millis()).unwrap_or(i64::MAX));
    let backlog = ask(db, CountReplacedUsers { before, node: options.node.clone() }).await?;
    let mut summary =
        RetiredPurgeSummary { backlog: u64::try_from(backlog).unwrap_or(0), ..Default::default() };
    if !options.dry_run {
        metrics::gauge!("weft_retired_purge_backlog_users").set(backlog as f64);
    }
    let mut after_uid = 0;
    while summary.examined < options.max_users {
        let limit = PAGE.min(options.max_users - summary.examined);
        let page = ReplacedUsers { before, after_uid, node: options.node.clone(), limit: limit as i64 };
        let rows = ask(db, page).await?;
        let Some(last) = rows.last() else { break };
        after_uid = last.uid;
        for row in &rows {
            summary.examined += 1;
            let outcome = purge_one(db, deleter, row, options.dry_run).await?;
            match &outcome {
                RowOutcome::Purged { .. } => summary.purged += 1,
                RowOutcome::Nodeless => summary.nodeless += 1,
                RowOutcome::Downed => summary.downed += 1,
                RowOutcome::Failed(failure) => {
                    summary.failed += 1;
                    metrics::counter!("weft_retired_purge_failures_total", "reason" => failure.reason())
                        .increment(1);
                    tracing::warn!(error = %failure, "purge of a replaced user failed; it waits for the next pass");
                }
                RowOutcome::WouldPurge { .. } => summary.would_purge += 1,
            }
            if !options.dry_run {
                metrics::counter!("weft_retired_purge_users_total", "outcome" => outcome.label())
                    .increment(1);
            }
            report(row, &outcome);
        }
        if (rows.len() as u64) < limit {
            break;
        }
    }
    summary.stopped_at_max = summary.examined >= options.max_users && summary.examined < summary.backlog;
    Ok(summary)
}

/// §10.6 step 3 for one row: data first, row second.
async fn purge_one(
    db: &Addr<TokenserverDb>,
    deleter: &DataDeleter,
    row: &ReplacedUser,
    dry_run: bool,
) -> Result<RowOutcome, PurgeError> {
    let forget = ForgetUser { uid: row.uid, nodeid: row.nodeid };
    Ok(match purge_step(row) {
        PurgeStep::Wait => RowOutcome::Downed,
        PurgeStep::ForgetOnly if dry_run => RowOutcome::WouldPurge { node: None },
        PurgeStep::ForgetOnly => {
            ask(db, forget).await?;
            RowOutcome::Nodeless
        }
        PurgeStep::DeleteData { node } if dry_run => RowOutcome::WouldPurge { node: Some(node.to_string()) },
        PurgeStep::DeleteData { node } => match deleter.delete(node, row).await {
            Ok(reached) => {
                ask(db, forget).await?;
                RowOutcome::Purged { remote: reached == target::Reached::Remote }
            }
            Err(failure) => RowOutcome::Failed(failure),
        },
    })
}

async fn ask<M, R>(db: &Addr<TokenserverDb>, msg: M) -> Result<R, TokenserverError>
where
    M: Message<Result = Result<R, TokenserverError>> + Send + 'static,
    R: Send + 'static,
    TokenserverDb: Handler<M>,
{
    db.send(msg).await.map_err(ActorUnavailable::of("tokenserver database"))?
}
