//! The shard actor: one per storage db node. It runs on an actix `SyncArbiter` (one OS thread
//! per configured thread) and answers one `Request` per protocol operation on the `Storage`
//! (the storage engine in `crate::storage`, which owns a database's pool and every storage
//! rule) of the node name the request is for: a db node serving several node names, each with
//! its own database, runs them all on the same threads under one admission bound. `Shard` is
//! the handle the HTTP layer holds for one node name: it bounds how many requests may queue for
//! the db node and sheds the rest at once, counting what it sheds (`weft_shard_shed_total`).

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
pub use crate::storage::{Cache, Operation, ShedReason, StorageConfig, StorageError};

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

fn new_storage(node: &str, pool: DbPool, config: StorageConfig, cache: Option<Cache>) -> Arc<Storage> {
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

impl Shard {
    /// Starts `config.threads` shard threads over `pool` for the node whose canonical URL is
    /// `node` (the `node` label of the shard's metrics).
    pub fn start(
        node: &str,
        pool: DbPool,
        config: ShardConfig,
        storage: StorageConfig,
        cache: Option<Cache>,
    ) -> Shard {
        let addr = SyncArbiter::start(config.threads, || ShardActor);
        Shard {
            addr,
            storage: new_storage(node, pool, storage, cache),
            in_flight: Arc::new(AtomicUsize::new(0)),
            queue_limit: config.queue_limit,
            threads: config.threads,
        }
    }

    /// Another node name of the same db node, on its own database (`pool`): served by this
    /// shard's threads under this shard's admission bound, so that a db node has one
    /// connection budget and one queue whatever the number of its databases.
    pub fn serve(&self, node: &str, pool: DbPool, storage: StorageConfig, cache: Option<Cache>) -> Shard {
        Shard { storage: new_storage(node, pool, storage, cache), ..self.clone() }
    }

    /// Runs one storage operation on a shard thread, unless the in-process cache answers it
    /// here at once.
    pub async fn send<Q>(&self, op: Q) -> Result<Q::Output, ShardError>
    where
        Q: Operation + Send + 'static,
        Q::Output: Send + 'static,
    {
        if let Some(hit) = op.local_hit(&self.storage) {
            return Ok(hit?);
        }
        self.ask(Request(self.storage.clone(), op)).await
    }

    /// `SELECT 1` on a shard thread, for heartbeats.
    pub async fn check_health(&self) -> Result<(), ShardError> {
        self.ask(CheckHealth(self.storage.clone())).await
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
}
