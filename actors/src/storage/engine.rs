//! `Storage`: one db node's pool plus what every operation on it shares (settings, the
//! collection-id cache, SQLite's writer queue), and `Operation`, the one way to run a request:
//! in the transaction its `Access` needs, again as a whole on a deadlock or lost connection. It
//! is also the one place that measures the database side of a request: operation latency, pool
//! wait, retries and POST sizes (metric names in ops/metrics.md).

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};
use std::time::Instant;

use weft_schema::pool::{Backend, Tx};
use weft_schema::queries::storage;
use weft_schema::retry::with_retries;
use weft_schema::{DbConnection, DbPool, SyncTimestamp};

use crate::storage::cache::{self, NodeCache};
use crate::storage::requests::*;
use crate::storage::user_moves::{self, MoveWatch};
use crate::storage::{batch, bso, collection, info, StorageError};

/// Settings of one node's storage, from the `limits`, `quota` and `batch` configuration.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Cap on the rows one collection read returns (REF caps unlimited reads at 10 000).
    pub max_read_records: u64,
    pub max_total_records: u64,
    pub max_total_bytes: u64,
    pub quota_enabled: bool,
    pub quota_enforce: bool,
    pub quota_limit_bytes: u64,
    pub batch_ttl_ms: i64,
    /// Batches one user may have open at once (`batch.max_open_per_user`).
    pub max_open_batches: u64,
    /// Collections one user may hold (`limits.max_user_collections`).
    pub max_user_collections: u64,
}

/// Names the collection-id cache keeps. Names are global and never change, so a cached one
/// is always right; past this many (a client inventing names, since every user's names share
/// the table) new names are looked up in the database each time instead of growing memory.
const COLLECTION_NAME_CACHE_CAPACITY: usize = 4096;

/// How an operation uses the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// One statement, outside a transaction: it is a consistent snapshot by itself, and the
    /// hottest reads are spared the BEGIN and COMMIT round trips.
    Snapshot,
    /// A read transaction over several statements.
    Read,
    /// A write transaction (on SQLite queued behind the one writer).
    Write,
}

/// A storage request the engine can run.
pub trait Operation {
    type Output;
    /// The `operation` label of `weft_db_operation_duration_seconds`.
    const NAME: &'static str;
    const ACCESS: Access;

    /// The user the operation serves, whose move state (`crate::user_move`) it must respect;
    /// `None` for the deleter's work, which is no user's request.
    fn user(&self) -> Option<u64> {
        None
    }

    /// The operation itself, inside the transaction `Storage::execute` opened; it may run more
    /// than once (retries), so it only reads `self`.
    fn run(&self, storage: &Storage, tx: &mut Tx<'_>) -> Result<Self::Output, StorageError>;

    /// Records what only this request knows once it succeeded (e.g. POST sizes).
    fn observe(&self, _storage: &Storage) {}

    /// Runs the operation with the node's cache in front (`cache.rs`); by default it does not
    /// concern the cache and goes straight to the database.
    fn run_cached(&self, storage: &Storage, _cache: &NodeCache) -> Result<Self::Output, StorageError>
    where
        Self: Sized,
    {
        storage.execute(self)
    }

    /// An answer from a cache inside this process, which costs no blocking call: the async
    /// caller asks before sending the operation to a shard thread. `None` by default.
    fn local_hit(&self, _storage: &Storage) -> Option<Result<Self::Output, StorageError>> {
        None
    }
}

thread_local! {
    /// Operations this thread ran on a database: `run` compares it before and after, to tell
    /// whether the cache answered a request alone.
    static EXECUTED: Cell<u64> = const { Cell::new(0) };
}

/// One db node's storage. Shared by reference among the threads that run operations on it.
pub struct Storage {
    pool: DbPool,
    config: StorageConfig,
    /// The node's canonical URL: the `node` label of its metrics (one per configured node, so
    /// the label stays bounded).
    node: String,
    /// Collection name → id. The mapping never changes once made, so it is cached for the life
    /// of the process; a read lock per request is cheaper than a query. At most
    /// `COLLECTION_NAME_CACHE_CAPACITY` names, and only names read from committed rows.
    collection_ids: RwLock<HashMap<String, i32>>,
    /// SQLite allows one writer at a time. Queuing writers here, rather than in SQLite's busy
    /// handler (which sleeps in growing steps), keeps write latency flat under contention.
    sqlite_writer: Mutex<()>,
    /// The cache in front of this node's database (`cache.*` settings), if any.
    cache: Option<NodeCache>,
    /// Users moved away or being moved here, for the reads the cache answers.
    moves: MoveWatch,
}

impl Storage {
    /// The storage of the node whose canonical URL is `node`, over `pool`.
    pub fn new(node: &str, pool: DbPool, config: StorageConfig) -> Storage {
        // Exported at 0 from the start, so that rates and alerts see the series before the
        // first retry.
        metrics::counter!("weft_db_deadlock_retries_total", "node" => node.to_string()).absolute(0);
        for answered_by in ["cache", "database"] {
            metrics::counter!("weft_storage_requests_total", "node" => node.to_string(), "answered_by" => answered_by)
                .absolute(0);
        }
        Storage {
            pool,
            config,
            node: node.to_string(),
            collection_ids: RwLock::new(HashMap::new()),
            sqlite_writer: Mutex::new(()),
            cache: None,
            moves: MoveWatch::default(),
        }
    }

    /// Puts `cache` in front of the database for `run` (the engine's own `execute` never uses it).
    pub fn with_cache(mut self, cache: Option<NodeCache>) -> Storage {
        self.cache = cache;
        self
    }

    pub fn cache(&self) -> Option<&NodeCache> {
        self.cache.as_ref()
    }

    /// Runs `op` through the node's cache when it has one, else straight on the database.
    pub fn run<Q: Operation>(&self, op: &Q) -> Result<Q::Output, StorageError> {
        if self.cache.is_some() {
            self.moves.refresh(&self.pool);
            if let Some(refusal) = self.cache_refusal(op) {
                return Err(refusal);
            }
        }
        let before = EXECUTED.with(Cell::get);
        let result = match &self.cache {
            Some(cache) => op.run_cached(self, cache),
            None => self.execute(op),
        };
        let reached = EXECUTED.with(Cell::get) != before;
        self.count_request(if reached { "database" } else { "cache" });
        result
    }

    /// `op` answered by the in-process cache, without blocking (`Operation::local_hit`).
    pub fn local_hit<Q: Operation>(&self, op: &Q) -> Option<Result<Q::Output, StorageError>> {
        if let Some(refusal) = self.cache_refusal(op) {
            return Some(Err(refusal));
        }
        if self.moves.due() {
            return None;
        }
        let hit = op.local_hit(self)?;
        self.count_request("cache");
        Some(hit)
    }

    /// A read the cache might answer, of a user this node must refuse (writes always reach the
    /// database, which refuses them itself).
    fn cache_refusal<Q: Operation>(&self, op: &Q) -> Option<StorageError> {
        match (op.user(), Q::ACCESS) {
            (Some(uid), Access::Snapshot | Access::Read) => self.moves.refusal(uid),
            _ => None,
        }
    }

    /// `weft_storage_requests_total{answered_by}`: whether a request reached the database, the
    /// share the cache exists to lower.
    fn count_request(&self, answered_by: &'static str) {
        metrics::counter!("weft_storage_requests_total", "node" => self.node.clone(), "answered_by" => answered_by)
            .increment(1);
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    pub fn config(&self) -> &StorageConfig {
        &self.config
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Runs `op` as its `Access` says, timing it as
    /// `weft_db_operation_duration_seconds{operation}` (retries included: that is the latency
    /// the request saw).
    pub fn execute<Q: Operation>(&self, op: &Q) -> Result<Q::Output, StorageError> {
        EXECUTED.with(|n| n.set(n.get() + 1));
        let started = Instant::now();
        let run = |tx: &mut Tx<'_>| match op.user() {
            Some(uid) => {
                user_moves::guarded(tx, uid as i64, Q::ACCESS == Access::Write, |tx| op.run(self, tx))
            }
            None => op.run(self, tx),
        };
        let result = match Q::ACCESS {
            Access::Snapshot => self.with_retries(|| self.connection()?.single_statement(run)),
            Access::Read => self.with_retries(|| self.connection()?.read_transaction(run)),
            Access::Write => {
                let _writer = match self.pool.backend() {
                    Backend::Sqlite => Some(self.sqlite_writer.lock().unwrap_or_else(|e| e.into_inner())),
                    Backend::Mysql | Backend::Postgres => None,
                };
                self.with_retries(|| self.connection()?.write_transaction(run))
            }
        };
        metrics::histogram!(
            "weft_db_operation_duration_seconds",
            "node" => self.node.clone(),
            "operation" => Q::NAME,
        )
        .record(started.elapsed().as_secs_f64());
        if result.is_ok() {
            op.observe(self);
        }
        result
    }

    /// A pooled connection; the time spent waiting for it is `weft_db_pool_wait_seconds`, the
    /// first sign of a pool too small for the load.
    fn connection(&self) -> Result<DbConnection, StorageError> {
        let started = Instant::now();
        let conn = self.pool.get();
        metrics::histogram!("weft_db_pool_wait_seconds", "node" => self.node.clone())
            .record(started.elapsed().as_secs_f64());
        conn.map_err(|err| {
            // The request is shed with a bare reason; the pool's own words (often the
            // database's connection error) are kept here for the operator.
            tracing::warn!(node = %self.node, error = %err, "no database connection");
            StorageError::from(err)
        })
    }

    fn with_retries<T>(&self, attempt: impl FnMut() -> Result<T, StorageError>) -> Result<T, StorageError> {
        let on_retry = |attempt: u32, err: &weft_schema::DbError| {
            tracing::warn!(attempt, error = %err, "transaction failed; retrying");
            metrics::counter!("weft_db_deadlock_retries_total", "node" => self.node.clone()).increment(1);
        };
        with_retries(on_retry, attempt)
    }

    /// The collection's id, or `None` when no user ever wrote to a collection of that name.
    pub(crate) fn collection_id(&self, tx: &mut Tx<'_>, name: &str) -> Result<Option<i32>, StorageError> {
        if let Some(id) = self.cached_collection_id(name) {
            return Ok(Some(id));
        }
        let id = storage::collection_id(tx, name)?;
        if let Some(id) = id {
            self.remember_collection(name, id);
        }
        Ok(id)
    }

    /// The collection's id, registering the name on first use. A name this transaction
    /// registered is not cached: the transaction may still roll back (a precondition, the
    /// collection bound), and its id would then name nothing; the next request caches it.
    pub(crate) fn ensure_collection_id(&self, tx: &mut Tx<'_>, name: &str) -> Result<i32, StorageError> {
        if let Some(id) = self.collection_id(tx, name)? {
            return Ok(id);
        }
        Ok(storage::create_collection(tx, name)?)
    }

    fn cached_collection_id(&self, name: &str) -> Option<i32> {
        self.collection_ids.read().unwrap_or_else(|e| e.into_inner()).get(name).copied()
    }

    fn remember_collection(&self, name: &str, id: i32) {
        let mut ids = self.collection_ids.write().unwrap_or_else(|e| e.into_inner());
        if ids.len() < COLLECTION_NAME_CACHE_CAPACITY {
            ids.insert(name.to_string(), id);
        }
    }
}

/// Makes a request type an `Operation` run by `$function` with `$access`, named after the type.
macro_rules! operation {
    ($request:ty => $output:ty, $access:ident, $function:path $(, observe = $observe:path)?
        $(, cached = $cached:path)? $(, local = $local:path)?) => {
        impl Operation for $request {
            type Output = $output;
            const NAME: &'static str = stringify!($request);
            const ACCESS: Access = Access::$access;

            fn user(&self) -> Option<u64> {
                Some(self.uid)
            }

            fn run(&self, storage: &Storage, tx: &mut Tx<'_>) -> Result<$output, StorageError> {
                $function(storage, tx, self)
            }

            $(
                fn observe(&self, storage: &Storage) {
                    $observe(storage, self)
                }
            )?

            $(
                fn run_cached(&self, storage: &Storage, cache: &NodeCache) -> Result<$output, StorageError> {
                    $cached(storage, cache, self)
                }
            )?

            $(
                fn local_hit(&self, storage: &Storage) -> Option<Result<$output, StorageError>> {
                    $local(storage, self)
                }
            )?
        }
    };
}

operation!(GetCollections => Timestamped<BTreeMap<String, SyncTimestamp>>, Snapshot, info::get_collections,
    cached = cache::get_collections, local = cache::local_get_collections);
operation!(GetQuota => Timestamped<u64>, Read, info::get_quota, cached = cache::get_quota);
operation!(GetCollectionUsage => Timestamped<BTreeMap<String, u64>>, Read, info::get_collection_usage,
    cached = cache::get_collection_usage);
operation!(GetCollectionCounts => Timestamped<BTreeMap<String, u64>>, Read, info::get_collection_counts,
    cached = cache::get_collection_counts);
operation!(DeleteStorage => SyncTimestamp, Write, info::delete_storage, cached = cache::delete_storage);
operation!(GetBsos => Timestamped<BsoPage>, Read, collection::get_bsos, cached = cache::get_bsos,
    local = cache::local_get_bsos);
operation!(PostBsos => PostResult, Write, batch::post_bsos, observe = batch::observe_post,
    cached = cache::post_bsos);
operation!(DeleteCollection => SyncTimestamp, Write, collection::delete_collection,
    cached = cache::delete_collection);
operation!(GetBso => Bso, Snapshot, bso::get_bso, cached = cache::get_bso, local = cache::local_get_bso);
operation!(PutBso => PutResult, Write, bso::put_bso, cached = cache::put_bso);
operation!(DeleteBso => SyncTimestamp, Write, bso::delete_bso, cached = cache::delete_bso);
