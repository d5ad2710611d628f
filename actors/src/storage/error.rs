//! `StorageError`: how a storage operation can end other than successfully. Each variant is a
//! protocol outcome; the binary maps them to HTTP in its one storage error module.

use weft_schema::{DbError, SyncTimestamp};

/// Why a request was refused at once rather than run, the `reason` label of
/// `weft_shard_shed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShedReason {
    /// The caller's admission bound (`shard.queue_limit`) was reached; decided by the shard
    /// handle before the request reaches the engine.
    QueueFull,
    /// No pooled connection came within `shard.connection_timeout_ms`.
    NoConnection,
    /// A write could not place its cache marker on a memcached server that failed without
    /// being down, which may still hold entries other webheads read (weft-cache's protocol).
    CacheUnavailable,
    /// The db node is unreachable (its circuit is open, `shard::availability`): answered
    /// without a thread or a connection.
    DbNodeDown,
    /// No answer within `shard.request_timeout_ms` (a database that hangs).
    TimedOut,
}

impl ShedReason {
    pub const ALL: [ShedReason; 5] = [
        ShedReason::QueueFull,
        ShedReason::NoConnection,
        ShedReason::CacheUnavailable,
        ShedReason::DbNodeDown,
        ShedReason::TimedOut,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            ShedReason::QueueFull => "queue_full",
            ShedReason::NoConnection => "no_connection",
            ShedReason::CacheUnavailable => "cache_unavailable",
            ShedReason::DbNodeDown => "db_node_down",
            ShedReason::TimedOut => "timed_out",
        }
    }
}

impl std::fmt::Display for ShedReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ShedReason::QueueFull => "shard queue is full",
            ShedReason::NoConnection => "no database connection in time",
            ShedReason::CacheUnavailable => "cache cannot be invalidated",
            ShedReason::DbNodeDown => "db node unreachable",
            ShedReason::TimedOut => "no answer from the database in time",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// `X-If-Modified-Since` satisfied: 304 with the resource's timestamp.
    #[error("not modified since {0}")]
    NotModified(SyncTimestamp),
    /// `X-If-Unmodified-Since` failed: 412 with the resource's timestamp; nothing written.
    #[error("modified since the precondition, at {0}")]
    PreconditionFailed(SyncTimestamp),
    /// The item (or its collection) does not exist or has expired.
    #[error("not found")]
    NotFound,
    /// Unknown, foreign, committed or expired batch id (REF answers 400, body 0).
    #[error("invalid batch")]
    InvalidBatch,
    /// The batch's staged totals would pass `max_total_records` / `max_total_bytes`.
    #[error("batch size limit exceeded")]
    BatchLimitExceeded,
    /// A new batch while the user already has `max_open_batches` open (400, body `17`).
    #[error("too many open batches")]
    TooManyOpenBatches,
    /// Over quota while enforcing.
    #[error("over quota")]
    QuotaExceeded,
    /// The write would make the user hold more than `max_user_collections` collections.
    #[error("too many collections")]
    TooManyCollections,
    /// The collection was written within the same tick even after one in-server retry.
    #[error("write conflict")]
    Conflict,
    /// The user is being moved to another node (`crate::user_move`): its writes wait a few
    /// seconds (503 + a short `Retry-After`).
    #[error("user being moved to another node")]
    UserHeld,
    /// The user has moved to another node: the client must fetch a new token (401).
    #[error("user moved to another node")]
    UserMoved,
    /// The request cannot be taken now.
    #[error("shed: {0}")]
    Overloaded(ShedReason),
    #[error(transparent)]
    Database(DbError),
}

impl From<DbError> for StorageError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::PoolTimeout(_) => StorageError::Overloaded(ShedReason::NoConnection),
            other => StorageError::Database(other),
        }
    }
}

impl From<diesel::result::Error> for StorageError {
    fn from(err: diesel::result::Error) -> Self {
        StorageError::from(DbError::from(err))
    }
}

impl weft_schema::retry::DbFailure for StorageError {
    fn db_error(&self) -> Option<&DbError> {
        match self {
            StorageError::Database(err) => Some(err),
            _ => None,
        }
    }
}
