//! Statements of moving a user between storage nodes (`weft user move`): the per-node marker
//! table `weft_user_moves` (what the storage engine checks in every transaction of the user),
//! the barrier a hold takes so that no write that began before it commits after it, and the
//! tokenserver's switch of a user's node keeping its uid. The steps that combine them live in
//! `weft_actors::user_move`.

use diesel::QueryResult;

use super::dialect::lock_clause;
use super::sql::{Arg, Sql};
use super::storage::Lock;
use crate::models::{MoveMarker, Single};
use crate::pool::{Backend, Tx};

/// `weft_user_moves.state`: writes on this node are held (the user is moving out to `peer`).
pub const HELD: i32 = 1;
/// The user moved to `peer`; this node answers 401 until `purge_after`, then forgets it.
pub const MOVED: i32 = 2;
/// The user's data is being copied here from `peer`; not served yet.
pub const INCOMING: i32 = 3;

/// `weft_user_moves.state`: the move is over here (released on the target, or undone); the
/// row only tells caches (`since`), and the deleter removes it after `purge_after`.
pub const SETTLED: i32 = 0;

/// The user's marker on this node, if any.
pub fn marker(tx: &mut Tx<'_>, uid: i64) -> QueryResult<Option<MoveMarker>> {
    Sql::new("SELECT state, peer, since, purge_after FROM weft_user_moves WHERE userid = ?")
        .arg(Arg::I64(uid))
        .first(tx)
}

/// The marker as the end of a write transaction reads it: after every write that began before
/// a hold, and never before a hold that began before it (see `wait_for_writers`). PostgreSQL takes
/// the user's advisory lock shared first, in its own statement, so that the read that follows
/// sees a hold committed while it waited; MySQL reads with a share lock, which waits for a
/// hold's uncommitted row; SQLite's write transactions are serial already.
pub fn marker_for_write(tx: &mut Tx<'_>, uid: i64) -> QueryResult<Option<MoveMarker>> {
    let backend = tx.backend();
    if backend == Backend::Postgres {
        Sql::new("SELECT CAST(1 AS BIGINT) AS value FROM (SELECT pg_advisory_xact_lock_shared(?)) AS l")
            .arg(Arg::I64(uid))
            .load::<Single>(tx)?;
    }
    let lock = if backend == Backend::Mysql { lock_clause(backend, Lock::Read) } else { "" };
    Sql::new(format!("SELECT state, peer, since, purge_after FROM weft_user_moves WHERE userid = ?{lock}"))
        .arg(Arg::I64(uid))
        .first(tx)
}

/// Waits for every write transaction of the user in flight, and makes later ones wait for
/// this transaction: run first in the hold's transaction (before its marker is written), and
/// again first in the copy's read of the source. PostgreSQL: the user's advisory lock,
/// exclusive (writes take it shared before they read the marker). MySQL: every
/// `user_collections` row of the user locked for update, which waits for a write holding one
/// (each write locks or inserts its collection's row first and reads the marker last, with a
/// share lock that waits for a hold's uncommitted marker); a write that inserted a row after
/// the hold's scan and read the marker before the hold wrote it is waited for by the copy's
/// scan. The hold takes its row locks before its marker and a write its marker lock after its
/// row lock, so the two never wait for each other in a cycle. SQLite: nothing (write
/// transactions are serial).
pub fn wait_for_writers(tx: &mut Tx<'_>, uid: i64) -> QueryResult<()> {
    let backend = tx.backend();
    match backend {
        Backend::Postgres => {
            Sql::new("SELECT CAST(1 AS BIGINT) AS value FROM (SELECT pg_advisory_xact_lock(?)) AS l")
                .arg(Arg::I64(uid))
                .load::<Single>(tx)?;
        }
        Backend::Mysql => {
            Sql::new(format!(
                "SELECT CAST(collection AS SIGNED) AS value FROM user_collections WHERE userid = ?{}",
                lock_clause(backend, Lock::Write)
            ))
            .arg(Arg::I64(uid))
            .load::<Single>(tx)?;
        }
        Backend::Sqlite => {}
    }
    Ok(())
}

/// Sets the user's marker, whatever it was.
pub fn put_marker(tx: &mut Tx<'_>, uid: i64, marker: &MoveMarker) -> QueryResult<()> {
    delete_marker(tx, uid)?;
    Sql::new("INSERT INTO weft_user_moves (userid, state, peer, since, purge_after) VALUES (?, ?, ?, ?, ?)")
        .args([Arg::I64(uid), Arg::I32(marker.state), Arg::Str(&marker.peer), Arg::I64(marker.since)])
        .arg(Arg::I64(marker.purge_after))
        .execute(tx)?;
    Ok(())
}

pub fn delete_marker(tx: &mut Tx<'_>, uid: i64) -> QueryResult<usize> {
    Sql::new("DELETE FROM weft_user_moves WHERE userid = ?").arg(Arg::I64(uid)).execute(tx)
}

/// Markers written at or after `since` (ms), with their uids: what changed for the caches.
pub fn changed_since(tx: &mut Tx<'_>, since: i64) -> QueryResult<Vec<(i64, MoveMarker)>> {
    Ok(Sql::new(
        "SELECT userid, state, peer, since, purge_after FROM weft_user_moves WHERE since >= ? ORDER BY since",
    )
    .arg(Arg::I64(since))
    .load::<MarkerRow>(tx)?
    .into_iter()
    .map(|r| {
        (r.userid, MoveMarker { state: r.state, peer: r.peer, since: r.since, purge_after: r.purge_after })
    })
    .collect())
}

#[derive(diesel::QueryableByName)]
struct MarkerRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    userid: i64,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    state: i32,
    #[diesel(sql_type = diesel::sql_types::Text)]
    peer: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    since: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    purge_after: i64,
}

/// Users in `state` on this node, in uid order, up to `limit` after `after`.
pub fn users_in_state(tx: &mut Tx<'_>, state: i32, after: i64, limit: i64) -> QueryResult<Vec<i64>> {
    Ok(Sql::new(
        "SELECT userid AS value FROM weft_user_moves WHERE state = ? AND userid > ? ORDER BY userid LIMIT ?",
    )
    .args([Arg::I32(state), Arg::I64(after), Arg::I64(limit)])
    .load::<Single>(tx)?
    .into_iter()
    .map(|r| r.value)
    .collect())
}

/// Moved and settled users whose `purge_after` has passed by `now`, up to `limit`.
pub fn due(tx: &mut Tx<'_>, now: i64, limit: i64) -> QueryResult<Vec<i64>> {
    Ok(Sql::new(
        "SELECT userid AS value FROM weft_user_moves WHERE state IN (?, ?) AND purge_after <= ? \
         ORDER BY userid LIMIT ?",
    )
    .args([Arg::I32(MOVED), Arg::I32(SETTLED), Arg::I64(now), Arg::I64(limit)])
    .load::<Single>(tx)?
    .into_iter()
    .map(|r| r.value)
    .collect())
}

// ---- the tokenserver's side ----

pub use super::tokenserver::user_by_uid;

/// Points the live row `uid` at node `to` if it is still on node `from`; everything else of
/// the row (uid, generation, keys_changed_at, client_state, created_at) stays. Returns the
/// rows changed (0: not on `from` any more, or replaced).
pub fn switch_node(tx: &mut Tx<'_>, service: i32, uid: i64, from: i64, to: i64) -> QueryResult<usize> {
    Sql::new(
        "UPDATE users SET nodeid = ? WHERE service = ? AND uid = ? AND nodeid = ? AND replaced_at IS NULL",
    )
    .args([Arg::I64(to), Arg::I32(service), Arg::I64(uid), Arg::I64(from)])
    .execute(tx)
}

/// Live users on node `node_id`, in uid order, up to `limit` after `after` (a drain's list).
pub fn live_users_on_node(
    tx: &mut Tx<'_>,
    service: i32,
    node_id: i64,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<i64>> {
    Ok(Sql::new(
        "SELECT uid AS value FROM users WHERE service = ? AND nodeid = ? AND replaced_at IS NULL AND uid > ? \
         ORDER BY uid LIMIT ?",
    )
    .args([Arg::I32(service), Arg::I64(node_id), Arg::I64(after), Arg::I64(limit)])
    .load::<Single>(tx)?
    .into_iter()
    .map(|r| r.value)
    .collect())
}
