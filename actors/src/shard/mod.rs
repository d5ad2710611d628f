//! The shard actor: one per storage db node. It runs on an actix `SyncArbiter` (one OS thread
//! per configured thread) and answers one `Request` per protocol operation on the `Storage`
//! (the storage engine in `crate::storage`, which owns a database's pool and every storage
//! rule) of the node name the request is for: a db node serving several node names, each with
//! its own database, runs them all on the same threads under one admission bound. `Shard` is
//! the handle the HTTP layer holds for one node name: it bounds how many requests may queue for
//! the db node and sheds the rest at once, counting what it sheds (`weft_shard_shed_total`).
//! It also bounds how long a request may wait for its answer (`request_timeout`) and keeps the
//! db node's circuit (`availability`): while the db node is unreachable its requests are
//! answered at once instead of each waiting for a connection.

mod actor;
pub mod availability;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::storage::Storage;
use actix::{Addr, Handler, MailboxError, Message, SyncArbiter};
use weft_schema::{DbErrorKind, DbPool};

use self::actor::Request;
pub use self::actor::{ShardActor, ShardConfig};
use self::availability::{Admit, Availability, Outcome};
use crate::ActorUnavailable;
// The operations' requests and replies, so that callers name what they send a shard here.
pub use crate::storage::requests::*;
pub use crate::storage::{Cache, NodeCache, Operation, ShedReason, StorageConfig, StorageError};

/// How a request to a shard can fail: the engine's outcome, or the actor never answered.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Unavailable(#[from] ActorUnavailable),
}

/// A running shard actor plus its admission counter. Cheap to clone.
#[derive(Clone)]
pub struct Shard {
    addr: Addr<ShardActor>,
    storage: Arc<Storage>,
    /// Requests admitted and not yet answered (queued or running). Bounded by `queue_limit`.
    in_flight: Arc<AtomicUsize>,
    queue_limit: usize,
    threads: usize,
    /// How long a request may wait for its answer, queue included.
    request_timeout: Duration,
    /// The db node's circuit, shared by its node names like the threads.
    availability: Arc<Availability>,
}

fn new_storage(node: &str, pool: DbPool, config: StorageConfig, cache: Option<NodeCache>) -> Arc<Storage> {
    // Exported at 0 from the start, so that rates and alerts see the series before the first
    // shed request.
    for reason in ShedReason::ALL {
        metrics::counter!("weft_shard_shed_total", "node" => node.to_string(), "reason" => reason.label())
            .absolute(0);
    }
    Arc::new(Storage::new(node, pool, config).with_cache(cache))
}

/// Decrements the in-flight count however the request ends (success, error, cancellation).
struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Reports a request's outcome to the db node's circuit however the request ends: a request
/// whose caller went away says nothing, but still frees the probe slot it may hold.
struct Verdict<'a> {
    availability: &'a Availability,
    probe: bool,
    outcome: Outcome,
}

impl Drop for Verdict<'_> {
    fn drop(&mut self) {
        self.availability.record(self.outcome, self.probe, Instant::now());
    }
}

/// What a reply says about the db node's reachability: any answer of the database is a sign
/// of life; no connection in time or a broken one is not.
fn outcome<R>(reply: &Result<R, StorageError>) -> Outcome {
    match reply {
        Err(StorageError::Overloaded(ShedReason::NoConnection)) => Outcome::Unreachable,
        Err(StorageError::Overloaded(_)) => Outcome::Unknown,
        Err(StorageError::Database(err)) if err.kind() == DbErrorKind::LostConnection => Outcome::Unreachable,
        _ => Outcome::Reached,
    }
}

impl Shard {
    /// Starts `config.threads` shard threads over `pool` for the node whose canonical URL is
    /// `node` (the `node` label of the shard's metrics), on the db node `config.db_node`.
    pub fn start(
        node: &str,
        pool: DbPool,
        config: ShardConfig,
        storage: StorageConfig,
        cache: Option<NodeCache>,
    ) -> Shard {
        let addr = SyncArbiter::start(config.threads, || ShardActor);
        Shard {
            addr,
            storage: new_storage(node, pool, storage, cache),
            in_flight: Arc::new(AtomicUsize::new(0)),
            queue_limit: config.queue_limit,
            threads: config.threads,
            request_timeout: config.request_timeout,
            availability: Arc::new(Availability::new(&config.db_node)),
        }
    }

    /// Another node name of the same db node, on its own database (`pool`): served by this
    /// shard's threads under this shard's admission bound, so that a db node has one
    /// connection budget and one queue whatever the number of its databases.
    pub fn serve(&self, node: &str, pool: DbPool, storage: StorageConfig, cache: Option<NodeCache>) -> Shard {
        Shard { storage: new_storage(node, pool, storage, cache), ..self.clone() }
    }

    /// Runs one storage operation on a shard thread, unless the in-process cache answers it
    /// here at once.
    pub async fn send<Q>(&self, op: Q) -> Result<Q::Output, ShardError>
    where
        Q: Operation + Send + 'static,
        Q::Output: Send + 'static,
    {
        if let Some(hit) = self.storage.local_hit(&op) {
            return Ok(hit?);
        }
        let probe = match self.availability.admit(Instant::now()) {
            Admit::No => return Err(self.shed(ShedReason::DbNodeDown).into()),
            Admit::Probe => true,
            Admit::Yes => false,
        };
        self.ask(Request(self.storage.clone(), op), probe).await
    }

    /// Sends `msg` to the actor; answers `Overloaded(QueueFull)` at once when `queue_limit`
    /// requests are already queued or running on this shard, and `Overloaded(TimedOut)` when
    /// no answer came within `request_timeout` (the message is then dropped unrun if it is
    /// still queued; one already running finishes on its thread, unanswered). The outcome
    /// goes to the db node's circuit.
    async fn ask<M, R>(&self, msg: M, probe: bool) -> Result<R, ShardError>
    where
        M: Message<Result = Result<R, StorageError>> + Send + 'static,
        R: Send + 'static,
        ShardActor: Handler<M>,
    {
        let mut verdict = Verdict { availability: &self.availability, probe, outcome: Outcome::Unknown };
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let admission = Admission(self.in_flight.clone());
        if before >= self.queue_limit {
            return Err(self.shed(ShedReason::QueueFull).into());
        }
        let reply = self.addr.send(msg).timeout(self.request_timeout).await;
        drop(admission);
        let reply = match reply {
            Err(MailboxError::Timeout) => {
                verdict.outcome = Outcome::Unreachable;
                return Err(self.shed(ShedReason::TimedOut).into());
            }
            other => other.map_err(ActorUnavailable::of("shard"))?,
        };
        verdict.outcome = outcome(&reply);
        match reply {
            Err(StorageError::Overloaded(reason)) => Err(self.shed(reason).into()),
            other => Ok(other?),
        }
    }

    fn shed(&self, reason: ShedReason) -> StorageError {
        metrics::counter!("weft_shard_shed_total", "node" => self.storage.node().to_string(), "reason" => reason.label())
            .increment(1);
        StorageError::Overloaded(reason)
    }

    /// Requests queued or running now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    pub fn queue_limit(&self) -> usize {
        self.queue_limit
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The engine of this node name, for work that is not a client request (the deleter).
    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    /// Every thread of the db node has a client request: background work waits.
    pub fn busy(&self) -> bool {
        self.in_flight() >= self.threads
    }

    /// The node's pool, for pool gauges.
    pub fn pool(&self) -> &DbPool {
        self.storage.pool()
    }

    /// The db node's circuit: whether its database is reachable, and its name.
    pub fn availability(&self) -> &Availability {
        &self.availability
    }
}
