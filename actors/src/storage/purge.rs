//! The deleter's work on one node: removing what the request path only hides — items of
//! deleted collections and users (deferred deletes), expired items (TTL) and expired batch
//! uploads — in bounded chunks, each its own short write transaction on the node's pool, paced
//! so that purging never crowds out client requests.
//!
//! Why it is safe to run at any time, twice, or to kill at any point: a deletion is recorded
//! with its time T (`weft_deleted_collections`), and every read hides the collection's items
//! written at or before T at once; every later write gets a timestamp after T
//! (`rules::lock_user`); a chunk deletes only items at or before T, and repeats that
//! condition in its DELETE, so an item rewritten meanwhile stays. Expired items and batches
//! are already refused by every read and append. All state is in the database, so a purge
//! killed mid-way (even by SIGKILL: a chunk's transaction is all or nothing) resumes where it
//! stopped on the next pass.
//!
//! The actor that runs passes periodically is `crate::deleter`; `weft purge` runs one pass.

use std::time::{Duration, Instant};

use weft_schema::models::DeletedCollection;
use weft_schema::pool::Tx;
use weft_schema::queries::purge;
use weft_schema::SyncTimestamp;

use crate::storage::engine::{Access, Operation, Storage};
use crate::storage::StorageError;

/// What a purge removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeKind {
    /// Items of deleted collections and users, then the deletion records.
    Deleted,
    /// Items expired for longer than the grace period.
    Ttl,
    /// Staged items and records of batches expired for longer than the grace period.
    Batches,
}

impl PurgeKind {
    pub const ALL: [PurgeKind; 3] = [PurgeKind::Deleted, PurgeKind::Ttl, PurgeKind::Batches];

    /// The `kind` label of the purge metrics and the name `weft purge --kind` takes.
    pub fn label(self) -> &'static str {
        match self {
            PurgeKind::Deleted => "deleted",
            PurgeKind::Ttl => "ttl",
            PurgeKind::Batches => "batches",
        }
    }

    /// Rows at or before this time (ms) are this kind's to remove: an item's expiry, a batch's
    /// id. The grace period (PY's purgettl: 1 day) leaves expired rows a while, so that an
    /// operator who finds a clock or TTL mistake can still recover them.
    fn cutoff(self, storage: &Storage, grace: Duration, now: i64) -> i64 {
        let grace = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        match self {
            PurgeKind::Deleted => now,
            PurgeKind::Ttl => now.saturating_sub(grace),
            PurgeKind::Batches => now.saturating_sub(storage.config().batch_ttl_ms).saturating_sub(grace),
        }
    }
}

/// How fast a purge may go, per db node (`purge.*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Rows one chunk (one transaction) removes at most.
    pub chunk_rows: u64,
    /// Rest after every chunk.
    pub pause: Duration,
    /// Ceiling on rows removed per second over a pass (0: none).
    pub max_rows_per_second: u64,
    /// How long expired items and batches are kept before the purge removes them.
    pub grace: Duration,
}

/// What decides, between chunks, whether the purge goes on: the deleter actor yields to its
/// shard's clients and stops at shutdown; `weft purge` never waits.
pub trait Gate {
    /// Client requests need the node's connections now: wait and ask again.
    fn busy(&self) -> bool {
        false
    }
    /// Stop after the chunk in progress.
    fn stopped(&self) -> bool {
        false
    }
}

/// The gate of a purge nothing else competes with.
pub struct Open;
impl Gate for Open {}

/// A pass's rate state: the pacing and the rows removed since the pass began.
pub struct Pace {
    pacing: Pacing,
    started: Instant,
    rows: u64,
}

impl Pace {
    pub fn new(pacing: Pacing) -> Pace {
        Pace { pacing, started: Instant::now(), rows: 0 }
    }

    pub fn pacing(&self) -> Pacing {
        self.pacing
    }

    /// Sleeps after a chunk of `rows`: the pause, and longer when the pass is ahead of the
    /// rows-per-second ceiling.
    fn after_chunk(&mut self, rows: u64) {
        self.rows += rows;
        let mut wait = self.pacing.pause;
        if self.pacing.max_rows_per_second > 0 {
            let due = Duration::from_secs_f64(self.rows as f64 / self.pacing.max_rows_per_second as f64);
            wait = wait.max(due.saturating_sub(self.started.elapsed()));
        }
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// Removes everything of `kind` (of one user when `uid` is set) on `storage`, chunk by chunk,
/// until nothing is left or `gate` stops it; `on_chunk` hears the rows of every chunk. Returns
/// the rows removed.
pub fn purge(
    storage: &Storage,
    kind: PurgeKind,
    uid: Option<u64>,
    pace: &mut Pace,
    gate: &dyn Gate,
    on_chunk: &mut dyn FnMut(u64),
) -> Result<u64, StorageError> {
    let mut total = 0;
    let now = SyncTimestamp::now().as_millis();
    let chunk = PurgeChunk {
        kind,
        uid: uid.map(|u| u as i64),
        cutoff: kind.cutoff(storage, pace.pacing.grace, now),
        limit: i64::try_from(pace.pacing.chunk_rows.max(1)).unwrap_or(i64::MAX),
    };
    let rows_total = metrics::counter!(
        "weft_deleter_purged_rows_total", "node" => storage.node().to_string(), "kind" => kind.label()
    );
    loop {
        while gate.busy() && !gate.stopped() {
            metrics::counter!("weft_deleter_yields_total", "node" => storage.node().to_string()).increment(1);
            std::thread::sleep(pace.pacing.pause.max(Duration::from_millis(10)));
        }
        if gate.stopped() {
            return Ok(total);
        }
        let done = storage.execute(&chunk)?;
        total += done.rows;
        rows_total.increment(done.rows);
        on_chunk(done.rows);
        if !done.more {
            return Ok(total);
        }
        pace.after_chunk(done.rows);
    }
}

/// How many rows a purge of `kind` would remove now (a scan: for `weft purge`'s dry run and
/// progress bar, not for the periodic pass).
pub fn purgeable(
    storage: &Storage,
    kind: PurgeKind,
    uid: Option<u64>,
    grace: Duration,
) -> Result<u64, StorageError> {
    let now = SyncTimestamp::now().as_millis();
    let op = CountPurgeable { kind, uid: uid.map(|u| u as i64), cutoff: kind.cutoff(storage, grace, now) };
    storage.execute(&op)
}

/// How far behind the purges are on a node, from a few index lookups.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Backlog {
    /// Collection and user deletions whose items are not all removed yet.
    pub pending_deletions: u64,
    /// For each kind (in `PurgeKind::ALL` order), how long its oldest row has been
    /// purgeable, 0 when none is.
    pub oldest_seconds: [f64; 3],
}

/// Measures the backlog and exports it: `weft_deleter_pending_deletions{node}` and
/// `weft_deleter_backlog_seconds{node,kind}`.
pub fn backlog(storage: &Storage, grace: Duration) -> Result<Backlog, StorageError> {
    let now = SyncTimestamp::now().as_millis();
    let (oldest_deletion, pending, earliest_expiry, oldest_batch) = storage.execute(&ReadBacklog)?;
    let age = |kind: PurgeKind, oldest: Option<i64>| {
        let cutoff = kind.cutoff(storage, grace, now);
        oldest.filter(|&t| t <= cutoff).map_or(0.0, |t| (cutoff - t) as f64 / 1000.0)
    };
    let backlog = Backlog {
        pending_deletions: pending.max(0) as u64,
        oldest_seconds: [
            age(PurgeKind::Deleted, oldest_deletion),
            age(PurgeKind::Ttl, earliest_expiry),
            age(PurgeKind::Batches, oldest_batch),
        ],
    };
    let node = storage.node().to_string();
    metrics::gauge!("weft_deleter_pending_deletions", "node" => node.clone())
        .set(backlog.pending_deletions as f64);
    for (kind, seconds) in PurgeKind::ALL.iter().zip(backlog.oldest_seconds) {
        metrics::gauge!("weft_deleter_backlog_seconds", "node" => node.clone(), "kind" => kind.label())
            .set(seconds);
    }
    Ok(backlog)
}

/// What one chunk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chunk {
    rows: u64,
    /// Whether more may be left (false: the purge of this kind is complete).
    more: bool,
}

/// One chunk of a purge: one write transaction removing at most `limit` rows of `kind` at or
/// before `cutoff`.
struct PurgeChunk {
    kind: PurgeKind,
    uid: Option<i64>,
    cutoff: i64,
    limit: i64,
}

impl Operation for PurgeChunk {
    type Output = Chunk;
    const NAME: &'static str = "PurgeChunk";
    const ACCESS: Access = Access::Write;

    fn run(&self, _: &Storage, tx: &mut Tx<'_>) -> Result<Chunk, StorageError> {
        let (uid, limit) = (self.uid, self.limit);
        match self.kind {
            PurgeKind::Deleted => {
                let Some(deletion) = purge::pending_deletions(tx, uid, 1)?.pop() else {
                    return Ok(Chunk { rows: 0, more: false });
                };
                let rows = purge_deletion(tx, &deletion, limit)?;
                // Done with this deletion or not, others may be pending.
                Ok(Chunk { rows, more: true })
            }
            PurgeKind::Ttl => {
                let keys = purge::expired_bsos(tx, self.cutoff, uid, limit)?;
                let rows = purge::delete_expired_bsos(tx, &keys, self.cutoff)? as u64;
                Ok(Chunk { rows, more: keys.len() as i64 == limit })
            }
            PurgeKind::Batches => {
                let keys = purge::expired_batch_items(tx, self.cutoff, uid, limit)?;
                let mut rows = purge::delete_batch_items(tx, &keys)? as u64;
                let mut more = keys.len() as i64 == limit;
                if !more {
                    let batches = purge::delete_expired_batches(tx, self.cutoff, uid, limit)?;
                    rows += batches as u64;
                    more = batches as i64 == limit;
                }
                Ok(Chunk { rows, more })
            }
        }
    }
}

/// Removes up to `limit` items of one deletion; when fewer were left, the deletion is complete
/// and its record goes.
fn purge_deletion(tx: &mut Tx<'_>, deletion: &DeletedCollection, limit: i64) -> Result<u64, StorageError> {
    let ids = purge::deleted_bso_ids(tx, deletion, limit)?;
    let rows = purge::delete_deleted_bsos(tx, deletion, &ids)? as u64;
    if (ids.len() as i64) < limit {
        purge::finish_deletion(tx, deletion)?;
    }
    Ok(rows)
}

struct CountPurgeable {
    kind: PurgeKind,
    uid: Option<i64>,
    cutoff: i64,
}

impl Operation for CountPurgeable {
    type Output = u64;
    const NAME: &'static str = "CountPurgeable";
    const ACCESS: Access = Access::Read;

    fn run(&self, _: &Storage, tx: &mut Tx<'_>) -> Result<u64, StorageError> {
        let rows = match self.kind {
            PurgeKind::Deleted => purge::count_deleted_bsos(tx, self.uid)?,
            PurgeKind::Ttl => purge::count_expired_bsos(tx, self.cutoff, self.uid)?,
            PurgeKind::Batches => purge::count_expired_batches(tx, self.cutoff, self.uid)?,
        };
        Ok(rows.max(0) as u64)
    }
}

/// (oldest pending deletion, pending deletions, earliest expiry, oldest batch id).
struct ReadBacklog;

impl Operation for ReadBacklog {
    type Output = (Option<i64>, i64, Option<i64>, Option<i64>);
    const NAME: &'static str = "ReadBacklog";
    const ACCESS: Access = Access::Read;

    fn run(&self, _: &Storage, tx: &mut Tx<'_>) -> Result<Self::Output, StorageError> {
        let (oldest, pending) = purge::deletions_backlog(tx)?;
        Ok((oldest, pending, purge::earliest_expiry(tx)?, purge::oldest_batch(tx)?))
    }
}
