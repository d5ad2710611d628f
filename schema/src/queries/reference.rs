//! Statements reading a storage database as Mozilla's syncstorage-rs left it
//! (reference-databases.md), for `weft import --from-reference`: its MySQL schema (the tables of
//! tokenserver-api.md §9, nothing of Weft's) or its PostgreSQL schema (`bsos`, `user_collections`
//! keyed by `user_id`, TIMESTAMPTZ times). The source's backend picks the schema. Only these
//! tables are read: a reference database has no Weft table, and the statements never write.
//!
//! What the reference writes that a naive reader gets wrong, and how it is read here:
//! - PostgreSQL's *pre-touch* rows (`user_collections.modified = 0001-01-01`, left by a batch
//!   that was opened and never committed) are not collections: skipped, as the reference hides
//!   them.
//! - The tombstone (collection 0) is a row like any other: read, the caller keeps it apart.
//! - `count` / `total_bytes` may be NULL: never read (the import recomputes them).
//! - BSOs are paged in the primary key's own order (the column's collation), so every page is
//!   a range read of the index, never a sort of the whole collection.
//!
//! The reference's tokenserver tables have Weft's names and columns on both backends and are
//! read with `tokenserver::service_id`, `tokenserver::list_nodes` and `transfer::accounts_after`.

use diesel::QueryResult;

use super::sql::{Arg, Sql};
use crate::models::{ExportedBso, Single, UserCollectionRow};
use crate::pool::{Backend, Tx};

/// PostgreSQL: a `user_collections` row the reference shows (pre-touch rows are not).
const VISIBLE: &str = "modified > TIMESTAMPTZ '0001-01-01 00:00:00+00'";

/// A TIMESTAMPTZ column as integer milliseconds since the epoch, exactly (EXTRACT gives a
/// numeric); FLOOR as the reference's `timestamp_millis`.
fn millis(column: &str) -> String {
    format!("CAST(FLOOR(EXTRACT(EPOCH FROM {column}) * 1000) AS BIGINT)")
}

/// Up to `limit` users with a uid above `after`, in uid order: those with a row the reference
/// shows in `user_collections`.
pub fn users_after(tx: &mut Tx<'_>, after: i64, limit: i64) -> QueryResult<Vec<i64>> {
    let text = match tx.backend() {
        Backend::Postgres => format!(
            "SELECT DISTINCT user_id AS value FROM user_collections \
             WHERE user_id > ? AND {VISIBLE} ORDER BY user_id LIMIT ?"
        ),
        _ => "SELECT DISTINCT userid AS value FROM user_collections WHERE userid > ? ORDER BY userid LIMIT ?"
            .to_string(),
    };
    Ok(Sql::new(text)
        .args([Arg::I64(after), Arg::I64(limit)])
        .load::<Single>(tx)?
        .into_iter()
        .map(|r| r.value)
        .collect())
}

/// How many users `users_after` lists in all, for progress bars.
pub fn user_count(tx: &mut Tx<'_>) -> QueryResult<i64> {
    let text = match tx.backend() {
        Backend::Postgres => {
            format!("SELECT COUNT(DISTINCT user_id) AS value FROM user_collections WHERE {VISIBLE}")
        }
        _ => "SELECT COUNT(DISTINCT userid) AS value FROM user_collections".to_string(),
    };
    Ok(Sql::new(text).first::<Single>(tx)?.map_or(0, |r| r.value))
}

/// The user's collections (and tombstone, collection 0) with their names and timestamps in
/// milliseconds; empty when the source does not know the user.
pub fn user_collections(tx: &mut Tx<'_>, uid: i64) -> QueryResult<Vec<UserCollectionRow>> {
    let text = match tx.backend() {
        Backend::Postgres => format!(
            "SELECT uc.collection_id AS collection, CAST(c.name AS TEXT) AS name, {} AS last_modified \
             FROM user_collections uc LEFT JOIN collections c ON c.collection_id = uc.collection_id \
             WHERE uc.user_id = ? AND uc.{VISIBLE}",
            millis("uc.modified")
        ),
        _ => "SELECT uc.collection AS collection, c.name AS name, uc.last_modified AS last_modified \
              FROM user_collections uc LEFT JOIN collections c ON c.id = uc.collection WHERE uc.userid = ?"
            .to_string(),
    };
    Sql::new(text).arg(Arg::I64(uid)).load(tx)
}

/// Up to `limit` live BSOs (expiry after `now`, ms) of one collection with an id after
/// `after` in the primary key's order, in that order, with times in milliseconds and the
/// absolute expiry as `ttl`.
pub fn bsos_after(
    tx: &mut Tx<'_>,
    uid: i64,
    collection: i32,
    after: &str,
    now: i64,
    limit: i64,
) -> QueryResult<Vec<ExportedBso>> {
    let text = match tx.backend() {
        Backend::Postgres => format!(
            "SELECT bso_id AS id, sortindex, payload, {} AS modified, {} AS ttl FROM bsos \
             WHERE user_id = ? AND collection_id = ? AND bso_id > ? \
               AND expiry > TIMESTAMPTZ 'epoch' + INTERVAL '1 millisecond' * ? \
             ORDER BY bso_id LIMIT ?",
            millis("modified"),
            millis("expiry"),
        ),
        _ => "SELECT id, sortindex, payload, modified, ttl FROM bso \
              WHERE userid = ? AND collection = ? AND id > ? AND ttl > ? ORDER BY id LIMIT ?"
            .to_string(),
    };
    Sql::new(text)
        .args([Arg::I64(uid), Arg::I32(collection), Arg::Str(after), Arg::I64(now), Arg::I64(limit)])
        .load(tx)
}
