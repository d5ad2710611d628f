//! The shard actor: one per storage db node. It runs on an actix `SyncArbiter` (one OS thread
//! per configured thread) over the node's `Storage` (the storage engine in `crate::storage`, which owns the
//! pool and every storage rule) and answers one `Request` per protocol operation. `Shard` is the
//! handle the HTTP layer holds: it bounds how many requests may queue for the node and sheds the
//! rest at once, counting what it sheds (`weft_shard_shed_total`).

mod actor;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::storage::Storage;
use actix::{Addr, Handler, Message, SyncArbiter};
use weft_schema::DbPool;

use self::actor::{CheckHealth, Request};
pub use self::actor::{ShardActor, ShardConfig};
use crate::ActorUnavailable;
// The operations' requests and replies, so that callers name what they send a shard here.
pub use crate::storage::requests::*;
pub use crate::storage::{Operation, ShedReason, StorageConfig, StorageError};

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
}

/// Decrements the in-flight count however the request ends (success, error, cancellation).
struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shard {
    /// Starts `config.threads` shard threads over `pool` for the node whose canonical URL is
    /// `node` (the `node` label of the shard's metrics).
    pub fn start(node: &str, pool: DbPool, config: ShardConfig, storage: StorageConfig) -> Shard {
        let storage = Arc::new(Storage::new(node, pool, storage));
        let actor_storage = storage.clone();
        let addr = SyncArbiter::start(config.threads, move || ShardActor::new(actor_storage.clone()));
        // Exported at 0 from the start, so that rates and alerts see the series before the
        // first shed request.
        for reason in ShedReason::ALL {
            metrics::counter!("weft_shard_shed_total", "node" => node.to_string(), "reason" => reason.label())
                .absolute(0);
        }
        Shard {
            addr,
            storage,
            in_flight: Arc::new(AtomicUsize::new(0)),
            queue_limit: config.queue_limit,
            threads: config.threads,
        }
    }

    /// Runs one storage operation on a shard thread.
    pub async fn send<Q>(&self, op: Q) -> Result<Q::Output, ShardError>
    where
        Q: Operation + Send + 'static,
        Q::Output: Send + 'static,
    {
        self.ask(Request(op)).await
    }

    /// `SELECT 1` on a shard thread, for heartbeats.
    pub async fn check_health(&self) -> Result<(), ShardError> {
        self.ask(CheckHealth).await
    }

    /// Sends `msg` to the actor; answers `Overloaded(QueueFull)` at once when `queue_limit`
    /// requests are already queued or running on this shard.
    async fn ask<M, R>(&self, msg: M) -> Result<R, ShardError>
    where
        M: Message<Result = Result<R, StorageError>> + Send + 'static,
        R: Send + 'static,
        ShardActor: Handler<M>,
    {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let admission = Admission(self.in_flight.clone());
        if before >= self.queue_limit {
            return Err(self.shed(ShedReason::QueueFull).into());
        }
        let reply = self.addr.send(msg).await;
        drop(admission);
        match reply.map_err(ActorUnavailable::of("shard"))? {
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

    /// The node's pool, for pool gauges.
    pub fn pool(&self) -> &DbPool {
        self.storage.pool()
    }
}
