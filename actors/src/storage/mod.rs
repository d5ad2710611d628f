//! Weft's storage engine: every SyncStorage 1.5 operation (storage-api.md §6) and the rules
//! they share (preconditions, write timestamps, expiry, PUT-semantics merging, batches, quota),
//! as plain functions over one database transaction. It knows nothing about actors or HTTP:
//! nothing in this module imports actix (it lives in weft-actors, next to the shard actors that
//! adapt it, because the workspace's crates are fixed: src/, actors/, schema/, loadtests/).
//!
//! `Storage` owns one db node's pool and runs an operation — a request type of `requests`
//! implementing `Operation` — in the transaction its access needs, with the one retry policy
//! (`weft_schema::retry`). The shard actors are thin adapters over it; the load generator's raw
//! mode and the conformance suite (`actors/tests/conformance.rs`) call it directly, so all three run
//! exactly the same database work. `purge` is the deleter's work: removing, in paced chunks,
//! what deletes, expiry and abandoned batches only hide.

mod apply;
mod batch;
mod bso;
mod cache;
mod cache_only;
mod cached_items;
mod collection;
mod engine;
mod error;
mod info;
pub mod purge;
pub mod requests;
mod rules;
mod user_moves;

pub use self::cache::NodeCache;
pub use self::engine::{Access, Operation, Storage, StorageConfig};
pub use self::error::{ShedReason, StorageError};
pub use self::requests::*;
pub use crate::cache::Cache;
pub use weft_schema::{DbError, DbErrorKind, DbPool, SyncTimestamp};
