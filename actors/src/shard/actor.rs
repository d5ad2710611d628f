//! `ShardActor`: one instance per SyncArbiter thread of a db node's shard, a thin adapter over
//! the storage engine (`crate::storage`): it receives one `Request` per storage operation,
//! naming the `Storage` (one node name's database) to run it on, runs it and replies. The engine
//! runs each operation in its transaction, retries it and measures it. A thread holds at most
//! one connection at a time, so the shard's threads are the db node's connection budget, shared
//! by all of its databases.

use std::sync::Arc;

use crate::storage::{Operation, Storage, StorageError};
use actix::{Actor, Handler, Message, SyncContext};

/// Settings of one shard: its threads, admission bound and request deadline, and the name of
/// its db node; the storage settings go to the engine.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    pub threads: usize,
    pub queue_limit: usize,
    pub request_timeout: std::time::Duration,
    /// The `db_node` label of the circuit's metrics and log lines.
    pub db_node: String,
}

/// The message carrying one storage operation to a shard, with the database it is for.
pub struct Request<Q>(pub Arc<Storage>, pub Q);

impl<Q> Message for Request<Q>
where
    Q: Operation + 'static,
    Q::Output: 'static,
{
    type Result = Result<Q::Output, StorageError>;
}

/// Holds nothing: what an operation runs on comes with it.
pub struct ShardActor;

impl Actor for ShardActor {
    type Context = SyncContext<Self>;
}

impl<Q> Handler<Request<Q>> for ShardActor
where
    Q: Operation + 'static,
    Q::Output: 'static,
{
    type Result = Result<Q::Output, StorageError>;

    fn handle(&mut self, Request(storage, op): Request<Q>, _: &mut Self::Context) -> Self::Result {
        storage.run(&op)
    }
}
