//! What the health endpoints (ops-model.md §2.1) and the metrics scrape know about the nodes:
//! each node's database check (`SELECT 1` on the node's own health connection, all nodes at
//! once, bounded in time), grouped by the db node serving it, and whether the process is
//! saturated, remembering since when as REF does.
//!
//! The check goes neither through a shard's queue nor through its pool, so it never waits
//! behind client requests nor takes a slot or a connection from them, and its result is kept
//! for [`HEALTH_CACHE`]: however often the
//! public, unauthenticated `/__heartbeat__` is called, each node sees at most one check per
//! period, and callers arriving during a check share it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use weft_actors::shard::Shard;
use weft_schema::DbError;

use crate::config::Settings;
use crate::node::{db_node_name, NodeTable};

/// The outcome of one node's database check, in REF's heartbeat vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHealth {
    pub url: String,
    /// The db node serving it (`node::db_node_name`).
    pub db_node: String,
    /// `None` when `SELECT 1` ran; otherwise why not. A short fixed text: the heartbeat is
    /// public, so database error details only go to the log.
    pub failure: Option<&'static str>,
}

impl NodeHealth {
    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// How long a database check's result answers the health endpoints and the scrape.
pub const HEALTH_CACHE: Duration = Duration::from_secs(1);

/// The last report of every node's database, shared by all HTTP workers and the metrics
/// listener. The lock is held during a refresh, so concurrent callers wait for that one check
/// (at most `check_timeout`) instead of starting their own.
#[derive(Default)]
pub struct HealthCache {
    last: tokio::sync::Mutex<Option<(Instant, Vec<NodeHealth>)>>,
}

impl HealthCache {
    /// The report, checked again when the last one is older than [`HEALTH_CACHE`] or was made
    /// for other nodes (a reload changed the table: `weft node provision` asks the heartbeat
    /// for the node it just added).
    pub async fn report(&self, nodes: &NodeTable, timeout: Duration) -> Vec<NodeHealth> {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref() {
            let same_nodes = report.iter().map(|h| h.url.clone()).eq(nodes.iter().map(|n| n.url));
            if at.elapsed() < HEALTH_CACHE && same_nodes {
                return report.clone();
            }
        }
        let report = check_nodes(nodes, timeout).await;
        *last = Some((Instant::now(), report.clone()));
        report
    }
}

/// Checks every node's database concurrently, each on a blocking thread with the node's health
/// connection. A check that does not finish within `timeout` (no connection to be made, a
/// database that does not answer) is a failure.
async fn check_nodes(nodes: &NodeTable, timeout: Duration) -> Vec<NodeHealth> {
    let checks: Vec<_> = nodes
        .iter()
        .map(|node| {
            let pool = node.health_pool.clone();
            let check = actix_web::rt::task::spawn_blocking(move || pool.get()?.check());
            let db_node = db_node_name(&node.db_node).to_string();
            (node.url.clone(), db_node, actix_web::rt::time::timeout(timeout, check))
        })
        .collect();
    let mut report = Vec::with_capacity(checks.len());
    for (url, db_node, check) in checks {
        let failure = match check.await {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(DbError::PoolTimeout(reason)))) => {
                tracing::warn!(node = %url, db_node = %db_node, "database check: no connection: {reason}");
                Some("no connection")
            }
            Ok(Ok(Err(err))) => {
                tracing::warn!(node = %url, db_node = %db_node, "database check failed: {err}");
                Some("check failed")
            }
            Ok(Err(join)) => {
                tracing::error!(node = %url, db_node = %db_node, "database check task failed: {join}");
                Some("check failed")
            }
            Err(_elapsed) => {
                tracing::warn!(node = %url, db_node = %db_node, "database check timed out after {timeout:?}");
                Some("timed out")
            }
        };
        report.push(NodeHealth { url, db_node, failure });
    }
    report
}

/// Connections of every node's pool, and whether any node is saturated now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    pub active_connections: u32,
    pub idle_connections: u32,
    pub saturated: bool,
}

/// Sums every node's pool connections; the process is saturated when any node is. A db node
/// that is down (its circuit open) does not count as saturated, even with every connection
/// stuck: every webhead sees the same dead database, so taking this one out of the load
/// balancer would only turn away the other db nodes' users.
pub fn load(nodes: &NodeTable) -> Load {
    let mut load = Load { active_connections: 0, idle_connections: 0, saturated: false };
    for node in nodes.iter() {
        let (active, idle) = connections(&node.shard);
        load.active_connections += active;
        load.idle_connections += idle;
        load.saturated |= node.shard.availability().is_available() && is_saturated(&node.shard);
    }
    load
}

/// (in use, idle) connections of the shard's pool.
pub fn connections(shard: &Shard) -> (u32, u32) {
    let (open, idle) = shard.pool().state();
    (open.saturating_sub(idle), idle)
}

/// A shard is saturated when its queue is full, or when every connection of its pool is in use
/// and none is idle (REF's `__lbheartbeat__` rule, per node).
pub fn is_saturated(shard: &Shard) -> bool {
    let (active, idle) = connections(shard);
    shard.in_flight() >= shard.queue_limit() || (active >= shard.pool().max_size() && idle == 0)
}

/// How long a database check may take: the wait for a connection plus a second for `SELECT 1`.
pub fn check_timeout(settings: &Settings) -> Duration {
    Duration::from_millis(settings.shard.connection_timeout_ms) + Duration::from_secs(1)
}

/// Since when the process has been saturated without interruption (REF: the time of first
/// saturation, cleared when the pool recovers). Shared by all HTTP workers.
#[derive(Debug, Default)]
pub struct Saturation {
    since: Mutex<Option<Instant>>,
}

impl Saturation {
    /// Records the current state; returns for how long the process has been saturated, or
    /// `None` when it is not.
    pub fn observe(&self, saturated: bool) -> Option<Duration> {
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        if !saturated {
            *since = None;
            return None;
        }
        Some(since.get_or_insert_with(Instant::now).elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturation_remembers_its_start_until_it_clears() {
        let s = Saturation::default();
        assert_eq!(s.observe(false), None);
        let first = s.observe(true).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let later = s.observe(true).unwrap();
        assert!(later >= first + Duration::from_millis(5));
        assert_eq!(s.observe(false), None);
        assert!(s.observe(true).unwrap() < later);
    }
}
