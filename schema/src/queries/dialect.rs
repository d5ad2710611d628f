//! The few SQL fragments that differ between SQLite and MySQL. Every statement is otherwise
//! one text for both backends (`queries/sql.rs`); these are spliced into it.

use super::storage::Lock;
use crate::pool::Backend;

/// `INSERT` that skips rows whose key exists.
pub(crate) fn insert_ignore(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "INSERT OR IGNORE",
        Backend::Mysql => "INSERT IGNORE",
    }
}

/// The payload's length in bytes: MySQL's LENGTH counts bytes, SQLite's counts characters of
/// TEXT, so SQLite measures the value as a BLOB.
pub(crate) fn payload_bytes(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "LENGTH(CAST(payload AS BLOB))",
        Backend::Mysql => "LENGTH(payload)",
    }
}

/// The row-lock clause of a `SELECT` (REF: share mode for reads, for update for writes).
/// SQLite needs none: its write transactions are exclusive.
pub(crate) fn lock_clause(backend: Backend, lock: Lock) -> &'static str {
    match (backend, lock) {
        (Backend::Sqlite, _) => "",
        (Backend::Mysql, Lock::Read) => " LOCK IN SHARE MODE",
        (Backend::Mysql, Lock::Write) => " FOR UPDATE",
    }
}

/// The two-argument maximum: MySQL's GREATEST is SQLite's scalar MAX.
pub(crate) fn greatest(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "MAX",
        Backend::Mysql => "GREATEST",
    }
}
