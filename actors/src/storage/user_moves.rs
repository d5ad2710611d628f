//! What the storage engine does about users moved between nodes (`crate::user_move`): the
//! users this node must refuse — moved away (401) or being copied here or held (503) — as its
//! `weft_user_moves` rows say.
//!
//! `guarded` is the check every transaction of a user makes against those rows, exactly.
//! `MoveWatch` is the same knowledge in memory, so that a read the cache answers without the
//! database — info/collections, the first request of every sync — refuses them too. It is
//! refreshed from `weft_user_moves` at most once a second, on the thread of a request that
//! reaches the engine, reading only the rows changed since the last refresh; so a cached read
//! learns of a move within about a second.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use weft_schema::models::MoveMarker;
use weft_schema::pool::Tx;
use weft_schema::queries::user_move::{self as q, HELD, INCOMING, MOVED};
use weft_schema::timestamp::unix_millis;
use weft_schema::DbPool;

use super::error::StorageError;

/// Runs `op` for user `uid` in the transaction `tx` as the user's move state allows. A read
/// checks first: a moved user gets 401, a held user is read (its data on the source is
/// complete and frozen). A write checks last, after its own row locks, so that a hold either
/// waits for it or is seen by it (`marker_for_write`): a held or incoming user's write rolls
/// back with 503, a moved user's with 401.
pub(crate) fn guarded<T>(
    tx: &mut Tx<'_>,
    uid: i64,
    write: bool,
    op: impl FnOnce(&mut Tx<'_>) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    if !write {
        refuse(q::marker(tx, uid)?, false)?;
        return op(tx);
    }
    let out = op(tx)?;
    refuse(q::marker_for_write(tx, uid)?, true)?;
    Ok(out)
}

fn refuse(marker: Option<MoveMarker>, write: bool) -> Result<(), StorageError> {
    match marker.map(|m| m.state) {
        Some(MOVED) => Err(StorageError::UserMoved),
        Some(INCOMING) => Err(StorageError::UserHeld),
        Some(HELD) if write => Err(StorageError::UserHeld),
        _ => Ok(()),
    }
}

/// How often the rows are read again at most.
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// Rows are read from this long before the last refresh began: a marker's `since` is the
/// mover's clock when it wrote it, and its transaction may commit a little later.
const OVERLAP_MS: i64 = 15_000;

#[derive(Default)]
pub struct MoveWatch {
    /// uid → (state, purge_after) of the users refused here.
    refused: RwLock<HashMap<u64, (i32, i64)>>,
    refresh: Mutex<Refresh>,
}

#[derive(Default)]
struct Refresh {
    last: Option<Instant>,
    /// Rows with `since` at or after this (ms) are read next time.
    from: i64,
}

impl MoveWatch {
    /// Why the cache must not answer a read of `uid`, if it must not.
    pub fn refusal(&self, uid: u64) -> Option<StorageError> {
        let refused = self.refused.read().unwrap_or_else(PoisonError::into_inner);
        match refused.get(&uid) {
            Some((MOVED, _)) => Some(StorageError::UserMoved),
            Some((INCOMING, _)) => Some(StorageError::UserHeld),
            _ => None,
        }
    }

    /// Whether a refresh is due: a read the in-process cache could answer at once goes to a
    /// shard thread instead (at most one a second), which refreshes.
    pub fn due(&self) -> bool {
        self.refresh.try_lock().is_ok_and(|r| r.last.is_none_or(|at| at.elapsed() >= REFRESH_EVERY))
    }

    /// Reads the rows changed since the last refresh when a second has passed; one request
    /// at a time does it, the others go on. A database that fails is tried again next time.
    pub fn refresh(&self, pool: &DbPool) {
        let Ok(mut refresh) = self.refresh.try_lock() else { return };
        if refresh.last.is_some_and(|at| at.elapsed() < REFRESH_EVERY) {
            return;
        }
        refresh.last = Some(Instant::now());
        let started = unix_millis();
        let rows = pool.get().map_err(|e| e.to_string()).and_then(|mut conn| {
            conn.single_statement(|tx| q::changed_since(tx, refresh.from)).map_err(|e| e.to_string())
        });
        let rows = match rows {
            Ok(rows) => rows,
            Err(error) => {
                tracing::debug!(%error, "moved users not refreshed; next time");
                return;
            }
        };
        let mut refused = self.refused.write().unwrap_or_else(PoisonError::into_inner);
        for (uid, marker) in rows {
            match marker.state {
                MOVED | INCOMING => refused.insert(uid as u64, (marker.state, marker.purge_after)),
                _ => refused.remove(&(uid as u64)),
            };
        }
        // A moved user's tokens have all expired: nothing can ask for it any more.
        refused.retain(|_, (state, purge_after)| *state != MOVED || *purge_after > started);
        refresh.from = started - OVERLAP_MS;
    }
}
