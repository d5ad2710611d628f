//! Weft's actors. Handlers in the `weft` binary never touch a database or a secret: they send
//! one message to one of these and turn the reply into HTTP.
//!
//! * `shard` — one shard actor per storage db node, running on an actix `SyncArbiter`: a thin
//!   adapter over that node's `crate::storage::Storage`, which owns the pool and every storage
//!   rule (preconditions, timestamps, merging, batches, quota).
//! * `deleter` — one per storage db node, on its own SyncArbiter thread: runs the purges of
//!   `crate::storage::purge` periodically, yielding to the shard's clients.
//! * `token_verifier` — holds the master secrets of every node (several at once, for rollover),
//!   verifies tokenlib tokens and Hawk signatures, caches derived keys.
//! * `tokenserver` — the token endpoint's actors: OAuth verification and token minting, and a
//!   SyncArbiter actor owning the tokenserver database (users, nodes, node management).
//!
//! * `accounts` — local accounts (Weft as its own account server): a SyncArbiter actor owning
//!   the account tables, Hawk for FxA tokens, the slow password stretch, the local issuer's JWTs.
//! * `user_move` — not an actor: moving a user's data between storage nodes (hold, copy,
//!   switch, release) as plain functions, and the check every storage transaction makes.
//!
//! This crate knows nothing about HTTP: it speaks in protocol terms (bso, collection, batch,
//! node, precondition) and reports typed errors that the binary maps to status codes. A message
//! that never reaches its actor is `ActorUnavailable`, whichever the actor.

pub mod accounts;
pub mod cache;
pub mod deleter;
pub mod shard;
pub mod storage;
pub mod token_verifier;
pub mod tokenserver;
mod unavailable;
pub mod user_move;

pub use unavailable::ActorUnavailable;

pub use weft_schema::SyncTimestamp;
