//! `ShardActor`: one instance per SyncArbiter thread of a shard. It holds the node's pool and
//! the shared per-shard context, runs each message's operation in a transaction, and retries
//! the whole transaction when the database reports a deadlock, so that a client never sees
//! one. It is also the one place that measures the database side of a request: operation
//! latency, pool wait, deadlock retries and POST sizes (metric names in ops/metrics.md).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use actix::{Actor, Handler, SyncContext};
use weft_schema::pool::{Backend, Tx};
use weft_schema::queries::storage;
use weft_schema::{DbConnection, DbPool};

use super::messages::*;
use super::{batch, bso, collection, info, ShardError};

/// How many times a deadlocked transaction is run again before the error is reported.
const DEADLOCK_ATTEMPTS: u32 = 5;

/// Settings of one shard, from the `shard`, `limits`, `quota` and `batch` configuration.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    pub threads: usize,
    pub queue_limit: usize,
    /// Cap on the rows one collection read returns (REF caps unlimited reads at 10 000).
    pub max_read_records: u64,
    pub max_total_records: u64,
    pub max_total_bytes: u64,
    pub quota_enabled: bool,
    pub quota_enforce: bool,
    pub quota_limit_bytes: u64,
    pub batch_ttl_ms: i64,
}

/// State shared by the threads of one shard.
pub(super) struct ShardContext {
    pub config: ShardConfig,
    /// The node's canonical URL: the `node` label of this shard's metrics (one per configured
    /// node, so the label stays bounded).
    pub node: String,
    /// Collection name → id. The mapping never changes once made, so it is cached for the life
    /// of the process; a read lock per request is cheaper than a query.
    collection_ids: RwLock<HashMap<String, i32>>,
    /// SQLite allows one writer at a time. Queuing writers here, rather than in SQLite's busy
    /// handler (which sleeps in growing steps), keeps write latency flat under contention.
    sqlite_writer: Mutex<()>,
}

impl ShardContext {
    pub fn new(node: &str, config: ShardConfig) -> Self {
        ShardContext {
            config,
            node: node.to_string(),
            collection_ids: RwLock::new(HashMap::new()),
            sqlite_writer: Mutex::new(()),
        }
    }

    /// The collection's id, or `None` when no user ever wrote to a collection of that name.
    pub fn collection_id(&self, tx: &mut Tx<'_>, name: &str) -> Result<Option<i32>, ShardError> {
        if let Some(id) = self.cached_collection_id(name) {
            return Ok(Some(id));
        }
        let id = storage::collection_id(tx, name)?;
        if let Some(id) = id {
            self.remember_collection(name, id);
        }
        Ok(id)
    }

    /// The collection's id, registering the name on first use.
    pub fn ensure_collection_id(&self, tx: &mut Tx<'_>, name: &str) -> Result<i32, ShardError> {
        if let Some(id) = self.collection_id(tx, name)? {
            return Ok(id);
        }
        let id = storage::create_collection(tx, name)?;
        self.remember_collection(name, id);
        Ok(id)
    }

    fn cached_collection_id(&self, name: &str) -> Option<i32> {
        self.collection_ids.read().unwrap_or_else(|e| e.into_inner()).get(name).copied()
    }

    fn remember_collection(&self, name: &str, id: i32) {
        self.collection_ids.write().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), id);
    }
}

pub struct ShardActor {
    pool: DbPool,
    context: Arc<ShardContext>,
}

impl ShardActor {
    pub(super) fn new(pool: DbPool, context: Arc<ShardContext>) -> Self {
        ShardActor { pool, context }
    }

    /// Runs `op` in a read transaction, again on deadlock.
    fn read<T>(
        &self,
        op: impl Fn(&ShardContext, &mut Tx<'_>) -> Result<T, ShardError>,
    ) -> Result<T, ShardError> {
        self.with_retries(|| self.connection()?.read_transaction(|tx| op(&self.context, tx)))
    }

    /// Runs `op` without a transaction: for reads made of one statement, which is a consistent
    /// snapshot by itself; it spares the BEGIN and COMMIT round trips on the hottest reads.
    fn snapshot<T>(
        &self,
        op: impl Fn(&ShardContext, &mut Tx<'_>) -> Result<T, ShardError>,
    ) -> Result<T, ShardError> {
        self.with_retries(|| self.connection()?.single_statement(|tx| op(&self.context, tx)))
    }

    /// Runs `op` in a write transaction, again on deadlock.
    fn write<T>(
        &self,
        op: impl Fn(&ShardContext, &mut Tx<'_>) -> Result<T, ShardError>,
    ) -> Result<T, ShardError> {
        let _writer = match self.pool.backend() {
            Backend::Sqlite => Some(self.context.sqlite_writer.lock().unwrap_or_else(|e| e.into_inner())),
            Backend::Mysql | Backend::Postgres => None,
        };
        self.with_retries(|| self.connection()?.write_transaction(|tx| op(&self.context, tx)))
    }

    /// A pooled connection; the time spent waiting for it is `weft_db_pool_wait_seconds`, the
    /// first sign of a pool too small for the load.
    fn connection(&self) -> Result<DbConnection, ShardError> {
        let started = Instant::now();
        let conn = self.pool.get();
        metrics::histogram!("weft_db_pool_wait_seconds", "node" => self.context.node.clone())
            .record(started.elapsed().as_secs_f64());
        Ok(conn?)
    }

    fn with_retries<T>(&self, attempt: impl Fn() -> Result<T, ShardError>) -> Result<T, ShardError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match attempt() {
                Err(ShardError::Database(err)) if err.is_retryable() && tries < DEADLOCK_ATTEMPTS => {
                    tracing::warn!(attempt = tries, error = %err, "transaction deadlocked; retrying");
                    metrics::counter!("weft_db_deadlock_retries_total", "node" => self.context.node.clone())
                        .increment(1);
                    // A short, growing pause lets the transaction that won finish first.
                    std::thread::sleep(Duration::from_millis(5 * u64::from(tries)));
                }
                other => return other,
            }
        }
    }
}

impl Actor for ShardActor {
    type Context = SyncContext<Self>;
}

/// Implements `Handler<M>` by running the operation function as a single-statement snapshot
/// or in a read or write transaction,
/// timing it as `weft_db_operation_duration_seconds{operation="<message name>"}` (deadlock
/// retries included: that is the latency the request saw). An optional `observe` function
/// records what only that message knows (e.g. POST sizes) once the operation succeeded.
macro_rules! handle {
    ($msg:ty, $kind:ident, $op:path $(, observe = $observe:path)?) => {
        impl Handler<$msg> for ShardActor {
            type Result = <$msg as actix::Message>::Result;

            fn handle(&mut self, msg: $msg, _: &mut Self::Context) -> Self::Result {
                let started = Instant::now();
                let result = self.$kind(|ctx, tx| $op(ctx, tx, &msg));
                metrics::histogram!(
                    "weft_db_operation_duration_seconds",
                    "node" => self.context.node.clone(),
                    "operation" => stringify!($msg),
                )
                .record(started.elapsed().as_secs_f64());
                $( if result.is_ok() { $observe(&self.context, &msg); } )?
                result
            }
        }
    };
}

handle!(GetCollections, snapshot, info::get_collections);
handle!(GetQuota, read, info::get_quota);
handle!(GetCollectionUsage, read, info::get_collection_usage);
handle!(GetCollectionCounts, read, info::get_collection_counts);
handle!(DeleteStorage, write, info::delete_storage);
handle!(GetBsos, read, collection::get_bsos);
handle!(PostBsos, write, batch::post_bsos, observe = batch::observe_post);
handle!(DeleteCollection, write, collection::delete_collection);
handle!(GetBso, snapshot, bso::get_bso);
handle!(PutBso, write, bso::put_bso);
handle!(DeleteBso, write, bso::delete_bso);

impl Handler<CheckHealth> for ShardActor {
    type Result = Result<(), ShardError>;

    fn handle(&mut self, _: CheckHealth, _: &mut Self::Context) -> Self::Result {
        self.connection()?.check().map_err(ShardError::from)
    }
}
