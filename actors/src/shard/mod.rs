//! The shard actor: one per storage db node. It runs on an actix `SyncArbiter` (one OS thread
//! per configured thread), owns the node's r2d2 pool, and answers the messages of `messages`,
//! one per protocol operation. `Shard` is the handle the HTTP layer holds: it bounds how many
//! requests may queue for the node and sheds the rest at once, counting what it sheds
//! (`weft_shard_shed_total`).

mod actor;
mod apply;
mod batch;
mod bso;
mod collection;
mod error;
mod info;
mod messages;
mod rules;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, Message, SyncArbiter};
use weft_schema::{DbError, DbPool};

use self::actor::ShardContext;
pub use self::actor::{ShardActor, ShardConfig};
pub use self::batch::encode_batch_id;
pub use self::error::ShardError;
pub use self::messages::*;

/// A running shard actor plus its admission counter. Cheap to clone.
#[derive(Clone)]
pub struct Shard {
    addr: Addr<ShardActor>,
    pool: DbPool,
    node: String,
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
    pub fn start(node: &str, pool: DbPool, config: ShardConfig) -> Shard {
        let threads = config.threads;
        let queue_limit = config.queue_limit;
        let actor_pool = pool.clone();
        let context = Arc::new(ShardContext::new(node, config));
        let addr = SyncArbiter::start(threads, move || ShardActor::new(actor_pool.clone(), context.clone()));
        // Exported at 0 from the start, so that rates and alerts see the series before the
        // first shed request or deadlock.
        for reason in ["queue_full", "no_connection"] {
            metrics::counter!("weft_shard_shed_total", "node" => node.to_string(), "reason" => reason)
                .absolute(0);
        }
        metrics::counter!("weft_db_deadlock_retries_total", "node" => node.to_string()).absolute(0);
        Shard {
            addr,
            pool,
            node: node.to_string(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            queue_limit,
            threads,
        }
    }

    /// Sends one message; answers `Overloaded` at once when `queue_limit` requests are already
    /// queued or running on this shard.
    pub async fn send<M, R>(&self, msg: M) -> Result<R, ShardError>
    where
        M: Message<Result = Result<R, ShardError>> + Send + 'static,
        R: Send + 'static,
        ShardActor: Handler<M>,
        <ShardActor as Actor>::Context: ToEnvelope<ShardActor, M>,
    {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let admission = Admission(self.in_flight.clone());
        if before >= self.queue_limit {
            self.count_shed("queue_full");
            return Err(ShardError::Overloaded("shard queue is full".into()));
        }
        let reply = self.addr.send(msg).await;
        drop(admission);
        let result = reply
            .map_err(|e| ShardError::Database(DbError::Query(format!("shard actor unavailable: {e}"))))?;
        if let Err(ShardError::Overloaded(_)) = &result {
            // Inside the actor, `Overloaded` only comes from a pool wait that timed out.
            self.count_shed("no_connection");
        }
        result
    }

    fn count_shed(&self, reason: &'static str) {
        metrics::counter!("weft_shard_shed_total", "node" => self.node.clone(), "reason" => reason)
            .increment(1);
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
        &self.pool
    }
}
