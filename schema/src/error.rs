//! `DbError`: every failure the data layer can report, classified so that callers can decide
//! between retrying (deadlock), shedding load (pool timeout) and failing (anything else).

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had within the pool's connection timeout.
    #[error("database pool exhausted: {0}")]
    PoolTimeout(String),
    /// The database reported a deadlock or a lock wait timeout; the transaction was rolled back
    /// and may be retried as a whole.
    #[error("transaction deadlocked: {0}")]
    Deadlock(String),
    #[error("database url not supported: {0}")]
    BadUrl(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Query(String),
}

impl From<diesel::result::Error> for DbError {
    fn from(err: diesel::result::Error) -> Self {
        let text = err.to_string();
        // MySQL/MariaDB: 1213 "Deadlock found", 1205 "Lock wait timeout exceeded".
        // SQLite: "database is locked" once busy_timeout has run out.
        // PostgreSQL: 40P01 "deadlock detected", 40001 serialization failure, 55P03 lock timeout.
        let serialization = matches!(
            err,
            diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::SerializationFailure, _)
        );
        if serialization
            || text.contains("Deadlock found")
            || text.contains("Lock wait timeout")
            || text.contains("database is locked")
            || text.contains("deadlock detected")
            || text.contains("canceling statement due to lock timeout")
        {
            DbError::Deadlock(text)
        } else {
            DbError::Query(text)
        }
    }
}

impl From<diesel::r2d2::PoolError> for DbError {
    fn from(err: diesel::r2d2::PoolError) -> Self {
        DbError::PoolTimeout(err.to_string())
    }
}

impl From<diesel::ConnectionError> for DbError {
    fn from(err: diesel::ConnectionError) -> Self {
        DbError::Query(err.to_string())
    }
}

impl DbError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, DbError::Deadlock(_))
    }
}
