//! The few SQL fragments that differ between SQLite, MySQL and PostgreSQL. Every statement is
//! otherwise one text for all backends (`queries/sql.rs`); these are spliced into it.

use crate::pool::Backend;

/// How a transaction locks a collection's `user_collections` row (REF: share mode for reads,
/// for update for writes). SQLite needs no row locks: its write transactions are exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    Read,
    Write,
}

/// `INSERT INTO …` (the statement after `INSERT`) that skips rows whose key exists: a prefix
/// keyword on SQLite and MySQL, a trailing clause on PostgreSQL.
pub(crate) fn insert_ignore(backend: Backend, into: &str) -> String {
    match backend {
        Backend::Sqlite => format!("INSERT OR IGNORE {into}"),
        Backend::Mysql => format!("INSERT IGNORE {into}"),
        Backend::Postgres => format!("INSERT {into} ON CONFLICT DO NOTHING"),
    }
}

/// The payload's length in bytes: MySQL's LENGTH counts bytes, SQLite's counts characters of
/// TEXT, so SQLite measures the value as a BLOB; PostgreSQL's LENGTH counts characters too.
pub(crate) fn payload_bytes(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "LENGTH(CAST(payload AS BLOB))",
        Backend::Mysql => "LENGTH(payload)",
        Backend::Postgres => "OCTET_LENGTH(payload)",
    }
}

/// The type a `CAST` names to give a 64-bit signed integer (what `i64` rows read): MySQL has
/// no `BIGINT` cast target, PostgreSQL no `SIGNED`; SQLite takes either.
pub(crate) fn int64(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite | Backend::Mysql => "SIGNED",
        Backend::Postgres => "BIGINT",
    }
}

/// What follows `DESC` on a nullable sort key so that NULL sorts last, as SQLite and MySQL
/// order NULL (smallest) by default; PostgreSQL orders NULL as the largest value.
pub(crate) fn desc_nulls_last(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite | Backend::Mysql => "DESC",
        Backend::Postgres => "DESC NULLS LAST",
    }
}

/// The row-lock clause of a `SELECT` (REF: share mode for reads, for update for writes).
/// SQLite needs none: its write transactions are exclusive.
pub(crate) fn lock_clause(backend: Backend, lock: Lock) -> &'static str {
    match (backend, lock) {
        (Backend::Sqlite, _) => "",
        (Backend::Mysql, Lock::Read) => " LOCK IN SHARE MODE",
        (Backend::Postgres, Lock::Read) => " FOR SHARE",
        (Backend::Mysql | Backend::Postgres, Lock::Write) => " FOR UPDATE",
    }
}

/// The two-argument maximum: MySQL's and PostgreSQL's GREATEST is SQLite's scalar MAX.
pub(crate) fn greatest(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "MAX",
        Backend::Mysql | Backend::Postgres => "GREATEST",
    }
}

/// The id the session's last `INSERT` generated.
pub(crate) fn last_insert_id(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SELECT last_insert_rowid() AS value",
        // LAST_INSERT_ID() is unsigned; the cast gives the signed type the row model reads.
        Backend::Mysql => "SELECT CAST(LAST_INSERT_ID() AS SIGNED) AS value",
        Backend::Postgres => "SELECT lastval() AS value",
    }
}
