//! `DbError`: every failure the data layer can report. A failed statement keeps diesel's error
//! as its source and carries a `DbErrorKind`, decided once by `classify`, so that callers choose
//! between running the transaction again (`retry`), answering 503 (the database is unreachable
//! or keeps deadlocking) and answering 500 (anything else is a fault of ours).

use std::fmt;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What kind of failure a statement met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    /// A deadlock or a lock wait timeout: the database rolled the transaction back, and running
    /// it again as a whole is safe.
    Deadlock,
    /// The connection broke (or could not be made): the database is unreachable for now.
    LostConnection,
    /// A unique, foreign-key, not-null or check constraint refused a row.
    Constraint,
    Other,
}

impl DbErrorKind {
    /// A failure of the database as a dependency rather than of our statements: a client gets
    /// 503 + Retry-After for it, never 500.
    pub fn is_unavailable(self) -> bool {
        matches!(self, DbErrorKind::Deadlock | DbErrorKind::LostConnection)
    }
}

impl fmt::Display for DbErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DbErrorKind::Deadlock => "deadlock",
            DbErrorKind::LostConnection => "lost connection",
            DbErrorKind::Constraint => "constraint violation",
            DbErrorKind::Other => "database error",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had within the pool's connection timeout: every connection is
    /// busy, or the database does not accept new ones.
    #[error("no database connection within the pool timeout: {0}")]
    PoolTimeout(#[source] diesel::r2d2::PoolError),
    /// A statement (or BEGIN/COMMIT) failed.
    #[error("{kind}: {source}")]
    Query {
        kind: DbErrorKind,
        #[source]
        source: DieselError,
    },
    /// A direct connection (not from a pool) could not be made.
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] diesel::ConnectionError),
    #[error("database url not supported: {0}")]
    BadUrl(String),
    /// The database holds Mozilla syncstorage-rs's PostgreSQL storage tables (`layout.rs`):
    /// nothing was migrated.
    #[error(
        "this database holds Mozilla syncstorage-rs's PostgreSQL storage tables ({0}), which Weft \
         cannot serve in place, and was left untouched: give Weft a new, empty database and move the \
         data into it with `weft import --from-reference <this database's URL> --database <new \
         database URL>` (ops/runbooks/backup-and-move.md, \"From syncstorage-rs\")"
    )]
    ForeignLayout(String),
    #[error("migration failed: {0}")]
    Migration(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The one place a database failure is classified. diesel names deadlocks (MySQL 1213) and
/// constraint violations; MySQL's lock wait timeout (1205), its lost connections (2006 "server
/// has gone away", 2013 "lost connection … during query"), SQLite's "database is locked"
/// (busy timeout run out) and PostgreSQL's deadlock (40P01), lock timeout (55P03) and
/// terminated sessions (57P01, libpq's "server closed the connection") reach us only as text;
/// PostgreSQL's serialization failure (40001) diesel names.
fn classify(err: &DieselError) -> DbErrorKind {
    match err {
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::SerializationFailure => DbErrorKind::Deadlock,
            DatabaseErrorKind::ClosedConnection => DbErrorKind::LostConnection,
            DatabaseErrorKind::UniqueViolation
            | DatabaseErrorKind::ForeignKeyViolation
            | DatabaseErrorKind::NotNullViolation
            | DatabaseErrorKind::CheckViolation
            | DatabaseErrorKind::RestrictViolation
            | DatabaseErrorKind::ExclusionViolation => DbErrorKind::Constraint,
            _ => classify_message(info.message()),
        },
        // diesel gives up on a connection whose transaction state it lost track of, which
        // happens when the connection broke in the middle of BEGIN, COMMIT or ROLLBACK.
        DieselError::BrokenTransactionManager => DbErrorKind::LostConnection,
        // COMMIT failed and so did the ROLLBACK diesel tried after it, as when the server goes
        // away at that moment: the first known cause decides. (Whether the commit took effect
        // is then unknown; running the transaction again rewrites the same records.)
        DieselError::RollbackErrorOnCommit { rollback_error, commit_error } => match classify(commit_error) {
            DbErrorKind::Other => classify(rollback_error),
            kind => kind,
        },
        _ => DbErrorKind::Other,
    }
}

fn classify_message(message: &str) -> DbErrorKind {
    const DEADLOCK: [&str; 5] = [
        "Deadlock found",
        "Lock wait timeout",
        "database is locked",
        "deadlock detected",
        "canceling statement due to lock timeout",
    ];
    const LOST: [&str; 5] = [
        "gone away",
        "Lost connection",
        "Can't connect",
        "server closed the connection",
        "terminating connection",
    ];
    if DEADLOCK.iter().any(|text| message.contains(text)) {
        DbErrorKind::Deadlock
    } else if LOST.iter().any(|text| message.contains(text)) {
        DbErrorKind::LostConnection
    } else {
        DbErrorKind::Other
    }
}

impl From<DieselError> for DbError {
    fn from(source: DieselError) -> Self {
        DbError::Query { kind: classify(&source), source }
    }
}

impl From<diesel::r2d2::PoolError> for DbError {
    fn from(err: diesel::r2d2::PoolError) -> Self {
        DbError::PoolTimeout(err)
    }
}

impl From<diesel::ConnectionError> for DbError {
    fn from(err: diesel::ConnectionError) -> Self {
        DbError::Connect(err)
    }
}

impl DbError {
    pub fn kind(&self) -> DbErrorKind {
        match self {
            DbError::Query { kind, .. } => *kind,
            DbError::PoolTimeout(_) | DbError::Connect(_) => DbErrorKind::LostConnection,
            DbError::BadUrl(_) | DbError::Migration(_) | DbError::ForeignLayout(_) => DbErrorKind::Other,
        }
    }

    /// Whether running the whole transaction again may succeed: a statement met a deadlock or
    /// a broken connection, so the database rolled the transaction back (a lost connection
    /// discards the transaction with it; the pool replaces the connection). A pool timeout is
    /// not retried: waiting again would hold the thread for another timeout while requests
    /// queue behind it, so it is shed at once instead.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DbError::Query { kind: DbErrorKind::Deadlock | DbErrorKind::LostConnection, .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database_error(kind: DatabaseErrorKind, message: &str) -> DbError {
        DbError::from(DieselError::DatabaseError(kind, Box::new(message.to_string())))
    }

    #[test]
    fn failures_are_classified_by_kind_then_text() {
        let cases = [
            (
                DatabaseErrorKind::SerializationFailure,
                "Deadlock found when trying to get lock",
                DbErrorKind::Deadlock,
            ),
            (
                DatabaseErrorKind::Unknown,
                "Lock wait timeout exceeded; try restarting transaction",
                DbErrorKind::Deadlock,
            ),
            (DatabaseErrorKind::Unknown, "database is locked", DbErrorKind::Deadlock),
            (DatabaseErrorKind::Unknown, "MySQL server has gone away", DbErrorKind::LostConnection),
            (
                DatabaseErrorKind::Unknown,
                "Lost connection to server during query",
                DbErrorKind::LostConnection,
            ),
            (DatabaseErrorKind::ClosedConnection, "closed", DbErrorKind::LostConnection),
            (DatabaseErrorKind::Unknown, "deadlock detected", DbErrorKind::Deadlock),
            (DatabaseErrorKind::SerializationFailure, "could not serialize access", DbErrorKind::Deadlock),
            (DatabaseErrorKind::Unknown, "canceling statement due to lock timeout", DbErrorKind::Deadlock),
            (
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
                DbErrorKind::LostConnection,
            ),
            (DatabaseErrorKind::UniqueViolation, "Duplicate entry", DbErrorKind::Constraint),
            (DatabaseErrorKind::Unknown, "no such table: bso", DbErrorKind::Other),
        ];
        for (kind, message, expected) in cases {
            let err = database_error(kind, message);
            assert_eq!(err.kind(), expected, "{message}");
            assert_eq!(err.is_retryable(), expected.is_unavailable(), "{message}");
        }
        assert_eq!(DbError::from(DieselError::NotFound).kind(), DbErrorKind::Other);
        assert_eq!(DbError::from(DieselError::BrokenTransactionManager).kind(), DbErrorKind::LostConnection);
        // Seen with MariaDB stopped under load (tests/hardening.rs): was a 500.
        let gone = || {
            Box::new(DieselError::DatabaseError(
                DatabaseErrorKind::Unknown,
                Box::new("Server has gone away".to_string()),
            ))
        };
        let on_commit = DbError::from(DieselError::RollbackErrorOnCommit {
            rollback_error: gone(),
            commit_error: gone(),
        });
        assert_eq!(on_commit.kind(), DbErrorKind::LostConnection);
        assert!(on_commit.is_retryable());
    }
}
