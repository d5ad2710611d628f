//! The deleter actor: one per storage db node, on a SyncArbiter of one thread of its own, a thin
//! adapter that runs a purge pass (`crate::storage::purge`) over each node name the db node
//! serves whenever it receives `RunPass`. `Deleter::start` also starts the timer that sends it
//! one pass after another, `interval` apart; the returned guard stops both when dropped (after
//! the chunk in progress), as at shutdown.
//!
//! Its connections come from the nodes' own pools, one at a time for one short chunk, and it
//! waits while every thread of the shard serves a client (`Shard::busy`), so purging uses the
//! db node's spare connection budget and never makes a client request wait for more than one
//! chunk. The pacing (chunk size, pause, rows-per-second ceiling) is shared by the db node's
//! node names: the ceiling is per database server.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Handler, Message, SyncArbiter, SyncContext};

use crate::shard::Shard;
use crate::storage::purge::{self, Gate, Pace, Pacing, PurgeKind};

/// Asks the deleter for one pass over every kind on every node name of its db node.
pub struct RunPass;

impl Message for RunPass {
    type Result = ();
}

pub struct Deleter {
    /// The db node's node names (their shards share one thread budget).
    shards: Vec<Shard>,
    pacing: Pacing,
    stop: Arc<AtomicBool>,
}

impl Actor for Deleter {
    type Context = SyncContext<Self>;
}

/// Stops the deleter's timer and its pass in progress when dropped.
pub struct DeleterGuard(Arc<AtomicBool>);

impl Drop for DeleterGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

impl Deleter {
    /// Starts the deleter of the db node whose node names are `shards`, running a pass at once
    /// and then `interval` after the end of each. Must run inside the actix system.
    pub fn start(shards: Vec<Shard>, pacing: Pacing, interval: Duration) -> DeleterGuard {
        for shard in &shards {
            export_at_start(shard.storage().node());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let deleter_stop = stop.clone();
        let addr = SyncArbiter::start(1, move || Deleter {
            shards: shards.clone(),
            pacing,
            stop: deleter_stop.clone(),
        });
        let timer_stop = stop.clone();
        actix::spawn(async move {
            while !timer_stop.load(Ordering::Acquire) {
                if addr.send(RunPass).await.is_err() {
                    return;
                }
                actix::clock::sleep(interval).await;
            }
        });
        DeleterGuard(stop)
    }
}

/// The deleter's series from the start (counters at 0, no backlog known yet, a pass "ended"
/// now), so that rates and alerts see them before the first pass ends.
fn export_at_start(node: &str) {
    let node = node.to_string();
    for kind in PurgeKind::ALL {
        metrics::counter!("weft_deleter_purged_rows_total", "node" => node.clone(), "kind" => kind.label())
            .absolute(0);
        metrics::gauge!("weft_deleter_backlog_seconds", "node" => node.clone(), "kind" => kind.label())
            .set(0.0);
    }
    metrics::counter!("weft_deleter_yields_total", "node" => node.clone()).absolute(0);
    metrics::gauge!("weft_deleter_pending_deletions", "node" => node.clone()).set(0.0);
    pass_ended(&node);
}

fn pass_ended(node: &str) {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    metrics::gauge!("weft_deleter_last_pass_timestamp_seconds", "node" => node.to_string()).set(now);
}

/// Yields to the shard's clients; stops with the guard.
struct ShardGate<'a> {
    shard: &'a Shard,
    stop: &'a AtomicBool,
}

impl Gate for ShardGate<'_> {
    fn busy(&self) -> bool {
        self.shard.busy()
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

impl Handler<RunPass> for Deleter {
    type Result = ();

    /// One pass: on each node name, the backlog is measured, then every kind is purged until
    /// nothing is left. A failure (the database away, say) ends that node's pass with a log
    /// line; the next pass starts over, losing nothing (all state is in the database).
    fn handle(&mut self, _: RunPass, _: &mut Self::Context) {
        let mut pace = Pace::new(self.pacing);
        for shard in &self.shards {
            let storage = shard.storage();
            let node = storage.node();
            let gate = ShardGate { shard, stop: &self.stop };
            let started = Instant::now();
            let backlog = match purge::backlog(storage, self.pacing.grace) {
                Ok(backlog) => backlog,
                Err(err) => {
                    tracing::warn!(node, error = %err, "purge: cannot read the backlog; next pass later");
                    continue;
                }
            };
            // Moved users whose tokens have expired become a pending deletion first, which the
            // `Deleted` purge below removes.
            match crate::user_move::purge_moved(storage) {
                Ok(0) => {}
                Ok(users) => tracing::info!(node, users, "purge: deleted the copies of users moved away"),
                Err(err) => {
                    tracing::warn!(node, error = %err, "purge: moved users not forgotten; next pass later")
                }
            }
            let mut removed = [0u64; 3];
            for (i, kind) in PurgeKind::ALL.into_iter().enumerate() {
                match purge::purge(storage, kind, None, &mut pace, &gate, &mut |_| {}) {
                    Ok(rows) => removed[i] = rows,
                    Err(err) => {
                        tracing::warn!(node, kind = kind.label(), error = %err, "purge interrupted; next pass resumes it");
                        break;
                    }
                }
            }
            if removed.iter().any(|&r| r > 0) || backlog.pending_deletions > 0 {
                tracing::info!(
                    node,
                    deleted = removed[0],
                    ttl = removed[1],
                    batches = removed[2],
                    pending_deletions = backlog.pending_deletions,
                    oldest_deleted_seconds = backlog.oldest_seconds[0],
                    oldest_ttl_seconds = backlog.oldest_seconds[1],
                    oldest_batch_seconds = backlog.oldest_seconds[2],
                    seconds = started.elapsed().as_secs_f64(),
                    "purge pass"
                );
            }
            pass_ended(node);
            if self.stop.load(Ordering::Acquire) {
                return;
            }
        }
    }
}
