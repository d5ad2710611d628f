//! Weft's data layer: diesel table definitions, row models, the queries the shard actors run,
//! connection pools and embedded migrations, for SQLite and (feature `mysql`) MySQL/MariaDB.
//!
//! This crate knows nothing about HTTP, Hawk or actors. It owns SQL: every statement Weft sends
//! to a database is written here. The MySQL tables are the reference server's, so an existing
//! deployment's storage database is served as is (tokenserver-api.md §9).

pub mod checkout;
pub mod error;
pub mod layout;
pub mod models;
pub mod pool;
pub mod provision;
pub mod queries;
pub mod retry;
pub mod timestamp;

pub use error::{DbError, DbErrorKind};
pub use pool::{Backend, DbConnection, DbPool, PoolSettings, SqliteSynchronous};
pub use timestamp::SyncTimestamp;
