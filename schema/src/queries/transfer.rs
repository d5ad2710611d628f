//! Statements of `weft export` / `weft import`: reading a node's users, collection timestamps
//! and live BSOs page by page (bounded memory, keyset pagination on the primary key), and
//! setting a collection's timestamp as it was on the source. The rest of an import is the
//! ordinary write path (`storage::upsert_bsos`, `storage::delete_storage`, …).
//!
//! `accounts_after`, `put_account` and `advance_user_ids` move the tokenserver's `users` rows
//! (with their uids, so tokens and storage stay keyed alike); nodes move with the ordinary
//! node statements.
//!
//! A database Mozilla's syncstorage-rs left behind is read by `reference.rs`.

use diesel::QueryResult;

use super::sql::{Arg, Sql};
use super::storage::AFTER_DELETION;
use crate::models::tokenserver::{Account, NewUser};
use crate::models::{ExportedBso, Single};
use crate::pool::{Backend, Tx};

/// Up to `limit` users (those with a `user_collections` row) with a uid above `after`, in
/// uid order.
pub fn users_after(tx: &mut Tx<'_>, after: i64, limit: i64) -> QueryResult<Vec<i64>> {
    Ok(Sql::new(
        "SELECT DISTINCT userid AS value FROM user_collections WHERE userid > ? ORDER BY userid LIMIT ?",
    )
    .arg(Arg::I64(after))
    .arg(Arg::I64(limit))
    .load::<Single>(tx)?
    .into_iter()
    .map(|r| r.value)
    .collect())
}

/// How many users the node stores, for progress bars.
pub fn user_count(tx: &mut Tx<'_>) -> QueryResult<i64> {
    Ok(Sql::new("SELECT COUNT(DISTINCT userid) AS value FROM user_collections")
        .first::<Single>(tx)?
        .map_or(0, |r| r.value))
}

/// Up to `limit` live BSOs of one collection with an id above `after`, in id order (the
/// primary key's order on every backend: byte-wise).
pub fn bsos_after(
    tx: &mut Tx<'_>,
    uid: i64,
    collection: i32,
    after: &str,
    now: i64,
    limit: i64,
) -> QueryResult<Vec<ExportedBso>> {
    Sql::new(format!(
        "SELECT id, sortindex, payload, modified, ttl FROM bso \
         WHERE userid = ? AND collection = ? AND ttl > ?{AFTER_DELETION} AND id > ? ORDER BY id LIMIT ?"
    ))
    .args([Arg::I64(uid), Arg::I32(collection), Arg::I64(now), Arg::I64(uid), Arg::I32(collection)])
    .args([Arg::Str(after), Arg::I64(limit)])
    .load(tx)
}

/// Sets the collection's last-modified (creating its row), whatever it was: an import restores
/// the source's timestamps exactly.
pub fn put_collection_modified(tx: &mut Tx<'_>, uid: i64, collection: i32, modified: i64) -> QueryResult<()> {
    let updated = super::storage::set_collection_modified(tx, uid, collection, modified)?;
    if updated == 0 {
        Sql::new(
            "INSERT INTO user_collections (userid, collection, last_modified, total_bytes, count) \
             VALUES (?, ?, ?, 0, 0)",
        )
        .args([Arg::I64(uid), Arg::I32(collection), Arg::I64(modified)])
        .execute(tx)?;
    }
    Ok(())
}

// ---- tokenserver users ----

/// Up to `limit` `users` rows of the service with a uid above `after`, in uid order, with
/// their email and node URL.
pub fn accounts_after(tx: &mut Tx<'_>, service: i32, after: i64, limit: i64) -> QueryResult<Vec<Account>> {
    Sql::new(
        "SELECT users.uid AS uid, users.email AS email, users.generation AS generation, \
           users.client_state AS client_state, users.created_at AS created_at, \
           users.replaced_at AS replaced_at, users.keys_changed_at AS keys_changed_at, \
           nodes.node AS node \
         FROM users LEFT OUTER JOIN nodes ON users.nodeid = nodes.id \
         WHERE users.service = ? AND users.uid > ? ORDER BY users.uid LIMIT ?",
    )
    .args([Arg::I32(service), Arg::I64(after), Arg::I64(limit)])
    .load(tx)
}

/// Writes a `users` row with the given uid, replacing a row with that uid.
pub fn put_account(
    tx: &mut Tx<'_>,
    uid: i64,
    user: &NewUser<'_>,
    replaced_at: Option<i64>,
) -> QueryResult<()> {
    Sql::new("DELETE FROM users WHERE uid = ?").arg(Arg::I64(uid)).execute(tx)?;
    Sql::new(
        "INSERT INTO users (uid, service, email, generation, client_state, created_at, replaced_at, \
           nodeid, keys_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .args([Arg::I64(uid), Arg::I32(user.service), Arg::Str(user.email), Arg::I64(user.generation)])
    .args([Arg::Str(user.client_state), Arg::I64(user.created_at), Arg::OptI64(replaced_at)])
    .args([Arg::I64(user.nodeid), Arg::OptI64(user.keys_changed_at)])
    .execute(tx)?;
    Ok(())
}

/// After rows were written with explicit uids, makes new uids continue above them. MySQL's
/// AUTO_INCREMENT and SQLite's AUTOINCREMENT do so by themselves; a PostgreSQL identity does
/// not.
pub fn advance_user_ids(tx: &mut Tx<'_>) -> QueryResult<()> {
    if tx.backend() == Backend::Postgres {
        Sql::new("SELECT setval(pg_get_serial_sequence('users', 'uid'), MAX(uid)) AS value FROM users HAVING MAX(uid) > 0")
            .load::<Single>(tx)?;
    }
    Ok(())
}
