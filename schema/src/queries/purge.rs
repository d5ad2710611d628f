//! Statements of the deleter: finding and removing, a bounded chunk at a time, what the request
//! path left behind — items of deleted collections (`weft_deleted_collections`), expired items
//! (`bso.ttl`) and expired batch uploads (the batch id is its creation time in ms) — and the
//! cheap figures that show the backlog. Every selection is bounded by `limit`; every deletion
//! names its rows by primary key and repeats the condition that made them purgeable, so a row a
//! client rewrote in the meantime is kept. `uid` narrows any of them to one user.

use diesel::QueryResult;

use super::sql::{placeholders, Arg, Sql};
use super::storage::ROWS_PER_STATEMENT;
use crate::models::{BatchKey, BsoKey, DeletedCollection, OptionalSingle, Single};
use crate::pool::Tx;

/// ` AND {column} = ?` when narrowed to one user, with its bind value.
fn user_filter(column: &str, uid: Option<i64>) -> (String, Vec<Arg<'static>>) {
    match uid {
        Some(uid) => (format!(" AND {column} = ?"), vec![Arg::I64(uid)]),
        None => (String::new(), vec![]),
    }
}

// ---- deleted collections ----

/// Pending collection deletions, at most `limit`, in key order.
pub fn pending_deletions(
    tx: &mut Tx<'_>,
    uid: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<DeletedCollection>> {
    let (filter, args) = user_filter("userid", uid);
    Sql::new(format!(
        "SELECT userid, collection, deleted_at FROM weft_deleted_collections WHERE 1 = 1{filter} \
         ORDER BY userid, collection LIMIT ?"
    ))
    .args(args)
    .arg(Arg::I64(limit))
    .load::<DeletedCollection>(tx)
}

/// Ids of at most `limit` items the deletion covers (written at or before it).
pub fn deleted_bso_ids(
    tx: &mut Tx<'_>,
    deletion: &DeletedCollection,
    limit: i64,
) -> QueryResult<Vec<String>> {
    Ok(Sql::new("SELECT id AS value FROM bso WHERE userid = ? AND collection = ? AND modified <= ? LIMIT ?")
        .args([
            Arg::I64(deletion.userid),
            Arg::I32(deletion.collection),
            Arg::I64(deletion.deleted_at),
            Arg::I64(limit),
        ])
        .load::<TextValue>(tx)?
        .into_iter()
        .map(|r| r.value)
        .collect())
}

/// Removes the listed items the deletion covers; an item rewritten since (a later `modified`)
/// is not covered and stays. Returns the rows removed.
pub fn delete_deleted_bsos(
    tx: &mut Tx<'_>,
    deletion: &DeletedCollection,
    ids: &[String],
) -> QueryResult<usize> {
    let mut removed = 0;
    for chunk in ids.chunks(ROWS_PER_STATEMENT * 4) {
        removed += Sql::varying(format!(
            "DELETE FROM bso WHERE userid = ? AND collection = ? AND modified <= ? AND id IN ({})",
            placeholders(chunk.len())
        ))
        .args([Arg::I64(deletion.userid), Arg::I32(deletion.collection), Arg::I64(deletion.deleted_at)])
        .args(chunk.iter().map(|id| Arg::Str(id)))
        .execute(tx)?;
    }
    Ok(removed)
}

/// Forgets a deletion whose items are all gone, unless a newer deletion of the collection
/// replaced it meanwhile (that one still has items to remove).
pub fn finish_deletion(tx: &mut Tx<'_>, deletion: &DeletedCollection) -> QueryResult<usize> {
    Sql::new("DELETE FROM weft_deleted_collections WHERE userid = ? AND collection = ? AND deleted_at = ?")
        .args([Arg::I64(deletion.userid), Arg::I32(deletion.collection), Arg::I64(deletion.deleted_at)])
        .execute(tx)
}

/// Items covered by pending deletions (a scan: for `weft purge --dry-run` and its progress bar).
pub fn count_deleted_bsos(tx: &mut Tx<'_>, uid: Option<i64>) -> QueryResult<i64> {
    let (filter, args) = user_filter("d.userid", uid);
    count(
        tx,
        format!(
            "SELECT COUNT(*) AS value FROM weft_deleted_collections d JOIN bso b \
             ON b.userid = d.userid AND b.collection = d.collection AND b.modified <= d.deleted_at \
             WHERE 1 = 1{filter}"
        ),
        args,
    )
}

// ---- expired items ----

/// At most `limit` items expired at `before`, oldest expiry first (the `ttl` index).
pub fn expired_bsos(tx: &mut Tx<'_>, before: i64, uid: Option<i64>, limit: i64) -> QueryResult<Vec<BsoKey>> {
    let (filter, args) = user_filter("userid", uid);
    Sql::new(format!("SELECT userid, collection, id FROM bso WHERE ttl <= ?{filter} ORDER BY ttl LIMIT ?"))
        .arg(Arg::I64(before))
        .args(args)
        .arg(Arg::I64(limit))
        .load::<BsoKey>(tx)
}

/// Removes the listed items if they are still expired at `before` (a write may have renewed
/// one). Returns the rows removed.
pub fn delete_expired_bsos(tx: &mut Tx<'_>, keys: &[BsoKey], before: i64) -> QueryResult<usize> {
    let mut removed = 0;
    for ((userid, collection), ids) in group_by_prefix(keys, |k| ((k.userid, k.collection), k.id.as_str())) {
        for chunk in ids.chunks(ROWS_PER_STATEMENT * 4) {
            removed += Sql::varying(format!(
                "DELETE FROM bso WHERE userid = ? AND collection = ? AND ttl <= ? AND id IN ({})",
                placeholders(chunk.len())
            ))
            .args([Arg::I64(userid), Arg::I32(collection), Arg::I64(before)])
            .args(chunk.iter().map(|id| Arg::Str(id)))
            .execute(tx)?;
        }
    }
    Ok(removed)
}

pub fn count_expired_bsos(tx: &mut Tx<'_>, before: i64, uid: Option<i64>) -> QueryResult<i64> {
    let (filter, args) = user_filter("userid", uid);
    count(
        tx,
        format!("SELECT COUNT(*) AS value FROM bso WHERE ttl <= ?{filter}"),
        [Arg::I64(before)].into_iter().chain(args).collect(),
    )
}

// ---- expired batches ----

/// At most `limit` staged items of batches created at or before `before`.
pub fn expired_batch_items(
    tx: &mut Tx<'_>,
    before: i64,
    uid: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<BatchKey>> {
    let (filter, args) = user_filter("userid", uid);
    Sql::new(format!(
        "SELECT batch, userid, id FROM batch_upload_items WHERE batch <= ?{filter} ORDER BY batch LIMIT ?"
    ))
    .arg(Arg::I64(before))
    .args(args)
    .arg(Arg::I64(limit))
    .load::<BatchKey>(tx)
}

/// Removes the listed staged items (an expired batch never becomes valid again).
pub fn delete_batch_items(tx: &mut Tx<'_>, keys: &[BatchKey]) -> QueryResult<usize> {
    let mut removed = 0;
    for ((batch, userid), ids) in group_by_prefix(keys, |k| ((k.batch, k.userid), k.id.as_str())) {
        for chunk in ids.chunks(ROWS_PER_STATEMENT * 4) {
            removed += Sql::varying(format!(
                "DELETE FROM batch_upload_items WHERE batch = ? AND userid = ? AND id IN ({})",
                placeholders(chunk.len())
            ))
            .args([Arg::I64(batch), Arg::I64(userid)])
            .args(chunk.iter().map(|id| Arg::Str(id)))
            .execute(tx)?;
        }
    }
    Ok(removed)
}

/// Removes at most `limit` batch records created at or before `before`. Returns the rows
/// removed.
pub fn delete_expired_batches(
    tx: &mut Tx<'_>,
    before: i64,
    uid: Option<i64>,
    limit: i64,
) -> QueryResult<usize> {
    let (filter, args) = user_filter("userid", uid);
    let keys = Sql::new(format!(
        "SELECT batch AS value FROM batch_uploads WHERE batch <= ?{filter} ORDER BY batch LIMIT ?"
    ))
    .arg(Arg::I64(before))
    .args(args.clone())
    .arg(Arg::I64(limit))
    .load::<Single>(tx)?;
    if keys.is_empty() {
        return Ok(0);
    }
    Sql::varying(format!(
        "DELETE FROM batch_uploads WHERE batch <= ? AND batch IN ({}){filter}",
        placeholders(keys.len())
    ))
    .arg(Arg::I64(before))
    .args(keys.iter().map(|k| Arg::I64(k.value)))
    .args(args)
    .execute(tx)
}

/// Staged items and batch records of batches created at or before `before`.
pub fn count_expired_batches(tx: &mut Tx<'_>, before: i64, uid: Option<i64>) -> QueryResult<i64> {
    let mut total = 0;
    for table in ["batch_upload_items", "batch_uploads"] {
        let (filter, args) = user_filter("userid", uid);
        let sql = format!("SELECT COUNT(*) AS value FROM {table} WHERE batch <= ?{filter}");
        total += count(tx, sql, [Arg::I64(before)].into_iter().chain(args).collect())?;
    }
    Ok(total)
}

// ---- backlog ----

/// The oldest pending deletion's time and how many are pending (the table only holds pending
/// ones, so both are cheap).
pub fn deletions_backlog(tx: &mut Tx<'_>) -> QueryResult<(Option<i64>, i64)> {
    let oldest = Sql::new("SELECT MIN(deleted_at) AS value FROM weft_deleted_collections")
        .first::<OptionalSingle>(tx)?
        .and_then(|r| r.value);
    let pending = count(tx, "SELECT COUNT(*) AS value FROM weft_deleted_collections".into(), vec![])?;
    Ok((oldest, pending))
}

/// The earliest expiry of any item (one step down the `ttl` index).
pub fn earliest_expiry(tx: &mut Tx<'_>) -> QueryResult<Option<i64>> {
    Ok(Sql::new("SELECT MIN(ttl) AS value FROM bso").first::<OptionalSingle>(tx)?.and_then(|r| r.value))
}

/// The oldest batch id still stored, staged items included (the primary keys' first column).
pub fn oldest_batch(tx: &mut Tx<'_>) -> QueryResult<Option<i64>> {
    let mut oldest: Option<i64> = None;
    for table in ["batch_upload_items", "batch_uploads"] {
        let min = Sql::new(format!("SELECT MIN(batch) AS value FROM {table}"))
            .first::<OptionalSingle>(tx)?
            .and_then(|r| r.value);
        oldest = match (oldest, min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(oldest)
}

fn count(tx: &mut Tx<'_>, sql: String, args: Vec<Arg<'_>>) -> QueryResult<i64> {
    Ok(Sql::new(sql).args(args).first::<Single>(tx)?.map_or(0, |r| r.value))
}

/// Keys grouped by their primary-key prefix, in first-seen order, so that each deletion
/// statement addresses one prefix.
fn group_by_prefix<'k, K, P: PartialEq + Copy>(
    keys: &'k [K],
    split: impl Fn(&'k K) -> (P, &'k str),
) -> Vec<(P, Vec<&'k str>)> {
    let mut groups: Vec<(P, Vec<&str>)> = Vec::new();
    for key in keys {
        let (prefix, id) = split(key);
        match groups.iter_mut().find(|(p, _)| *p == prefix) {
            Some((_, ids)) => ids.push(id),
            None => groups.push((prefix, vec![id])),
        }
    }
    groups
}

#[derive(diesel::QueryableByName)]
struct TextValue {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}
