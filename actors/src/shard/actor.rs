//! `ShardActor`: one instance per SyncArbiter thread of a shard, a thin adapter over the node's
//! `Storage` (the storage engine, `crate::storage`): it receives one `Request` per storage operation, runs it on the
//! engine and replies. The engine runs each operation in its transaction, retries it and
//! measures it.

use std::sync::Arc;

use crate::storage::{Operation, Storage, StorageError};
use actix::{Actor, Handler, Message, SyncContext};

/// Settings of one shard: its threads and admission bound; the storage settings go to the
/// engine.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    pub threads: usize,
    pub queue_limit: usize,
}

/// The message carrying one storage operation to a shard.
pub struct Request<Q>(pub Q);

impl<Q> Message for Request<Q>
where
    Q: Operation + 'static,
    Q::Output: 'static,
{
    type Result = Result<Q::Output, StorageError>;
}

/// `/__heartbeat__`: runs `SELECT 1` on a pooled connection.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StorageError>")]
pub struct CheckHealth;

pub struct ShardActor {
    storage: Arc<Storage>,
}

impl ShardActor {
    pub(super) fn new(storage: Arc<Storage>) -> Self {
        ShardActor { storage }
    }
}

impl Actor for ShardActor {
    type Context = SyncContext<Self>;
}

impl<Q> Handler<Request<Q>> for ShardActor
where
    Q: Operation + 'static,
    Q::Output: 'static,
{
    type Result = Result<Q::Output, StorageError>;

    fn handle(&mut self, Request(op): Request<Q>, _: &mut Self::Context) -> Self::Result {
        self.storage.execute(&op)
    }
}

impl Handler<CheckHealth> for ShardActor {
    type Result = Result<(), StorageError>;

    fn handle(&mut self, _: CheckHealth, _: &mut Self::Context) -> Self::Result {
        self.storage.check()
    }
}
