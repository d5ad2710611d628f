//! Moving a user's data from one storage node to another on the server (`weft user move`,
//! `weft node drain --move`), so that the client finds the same data with the same timestamps
//! at its new node and uploads nothing. Plain functions over the nodes' and the tokenserver's
//! pools: the command, the deleter and the tests call them.
//!
//! A move is four steps, each one transaction, each safe to run again (`mover.rs`):
//!
//! 1. **hold** — the source's `weft_user_moves` row for the user says `HELD`: from its commit
//!    on, every write of the user on the source is refused (503 + a short `Retry-After`), and
//!    the hold's transaction waits for writes that began before it (`wait_for_writers`).
//! 2. **copy** — in one write transaction on the target: the row says `INCOMING` (the target
//!    refuses the user meanwhile), whatever the target held for the uid is erased, and every
//!    collection and live item is written with its exact timestamps (`copy.rs`).
//! 3. **switch** — the tokenserver's live row for the uid points at the target; uid,
//!    generation, keys_changed_at and client_state stay, so the keys and the storage path are
//!    the same. From here a new token names the target.
//! 4. **release** — the source's row says `MOVED` (every request 401, so Firefox fetches a new
//!    token and learns the node) until every token issued for the source has expired, and the
//!    target's row says `SETTLED`: the user is writable there.
//!
//! Where it stands is all in the databases (the source's row, the target's row, the
//! tokenserver's node), so a move killed anywhere is finished by running it again; at every
//! instant the user is writable on at most one node, and its acknowledged data is complete on
//! the node the tokenserver names. Once a moved user's tokens have expired the deleter
//! (`purge.rs`) deletes the copy left on the source, then its row.
//!
//! The storage engine's side — the check every transaction of a user makes, and the same
//! knowledge in memory for the reads a cache answers — is `crate::storage::user_moves`.

mod copy;
mod mover;
mod purge;

pub use mover::{move_user, MoveError, MoveOutcome, MoveSettings, NodeDb};
pub use purge::purge_moved;

/// `Retry-After` (seconds) for a user whose writes are held: a move holds one user for well
/// under a second, so the client comes back soon, unlike PY's 300 s for a migration.
pub const HELD_RETRY_AFTER_SECONDS: u32 = 5;
