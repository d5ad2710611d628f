//! `ShardError`: how a storage operation can end other than successfully. Each variant is a
//! protocol outcome; the binary maps them to HTTP in its one error module.

use weft_schema::{DbError, SyncTimestamp};

#[derive(Debug, thiserror::Error)]
pub enum ShardError {
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
    /// Over quota while enforcing.
    #[error("over quota")]
    QuotaExceeded,
    /// The collection was written within the same tick even after one in-server retry.
    #[error("write conflict")]
    Conflict,
    /// The shard cannot take the request now (queue full or no connection in time).
    #[error("shard overloaded: {0}")]
    Overloaded(String),
    #[error(transparent)]
    Database(DbError),
}

impl From<DbError> for ShardError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::PoolTimeout(msg) => ShardError::Overloaded(msg),
            other => ShardError::Database(other),
        }
    }
}

impl From<diesel::result::Error> for ShardError {
    fn from(err: diesel::result::Error) -> Self {
        ShardError::from(DbError::from(err))
    }
}
