//! Statements on the storage tables: `collections`, `user_collections`, `bso`,
//! `batch_uploads`, `batch_upload_items`, and Weft's `weft_deleted_collections`. Times are
//! milliseconds. A row is live iff `ttl > now` and its `modified` is later than its
//! collection's pending deletion, if any (`AFTER_DELETION`); `purge.rs` removes the others.

use diesel::QueryResult;

/// How a statement locks the rows it reads: the lock clauses are the dialect's.
pub use super::dialect::Lock;
use super::dialect::{desc_nulls_last, greatest, insert_ignore, int64, lock_clause, payload_bytes};
use super::sql::{placeholders, Arg, Sql};
use crate::models::{
    BsoRow, CollectionModified, ExistingBso, NamedCount, NewBso, OptionalSingle, Single, StagedBso, Totals,
    UserCollectionRow,
};
use crate::pool::{Backend, Tx};

/// The collection id of the per-user tombstone row that carries the time of the last
/// collection deletion (REF), so the storage timestamp advances on deletes.
pub const TOMBSTONE_COLLECTION: i32 = 0;

/// Rows written per multi-row statement: far below SQLite's 32 766 bind variables and small
/// enough that a statement of full-size payloads stays within MySQL's default packet limit.
pub(crate) const ROWS_PER_STATEMENT: usize = 200;
const BYTES_PER_STATEMENT: usize = 8 * 1024 * 1024;

/// The condition, on a statement about one `(userid, collection)` of `bso`, that keeps only
/// rows written after the collection's pending deletion (storage-api.md §6.6, §6.10 deferred:
/// the deleter removes the rest later). Binds the uid and the collection id. An uncorrelated
/// subquery, so that every backend evaluates it once per statement.
pub(crate) const AFTER_DELETION: &str =
    " AND modified > COALESCE((SELECT deleted_at FROM weft_deleted_collections \
     WHERE userid = ? AND collection = ?), 0)";

/// The same condition for statements over several collections of `bso` aliased `b`.
const B_AFTER_DELETION: &str =
    " AND b.modified > COALESCE((SELECT d.deleted_at FROM weft_deleted_collections d \
     WHERE d.userid = b.userid AND d.collection = b.collection), 0)";

// ---- collections ----

pub fn collection_id(tx: &mut Tx<'_>, name: &str) -> QueryResult<Option<i32>> {
    let int64 = int64(tx.backend());
    Ok(Sql::new(format!("SELECT CAST(id AS {int64}) AS value FROM collections WHERE name = ?"))
        .arg(Arg::Str(name))
        .first::<Single>(tx)?
        .map(|r| r.value as i32))
}

/// Registers a collection name (idempotent) and returns its id.
pub fn create_collection(tx: &mut Tx<'_>, name: &str) -> QueryResult<i32> {
    let backend = tx.backend();
    Sql::new(insert_ignore(backend, "INTO collections (name) VALUES (?)")).arg(Arg::Str(name)).execute(tx)?;
    collection_id(tx, name)?.ok_or(diesel::result::Error::NotFound)
}

/// How many collections the user holds: those it has (the tombstone aside) and those it has
/// an open batch in, whose name is registered although the collection is not created yet.
pub fn held_collections(tx: &mut Tx<'_>, uid: i64) -> QueryResult<i64> {
    Ok(Sql::new(format!(
        "SELECT COUNT(*) AS value FROM (\
         SELECT collection FROM user_collections WHERE userid = ? AND collection <> {TOMBSTONE_COLLECTION} \
         UNION SELECT collection FROM batch_uploads WHERE userid = ?) held"
    ))
    .arg(Arg::I64(uid))
    .arg(Arg::I64(uid))
    .first::<Single>(tx)?
    .map_or(0, |r| r.value))
}

// ---- user_collections ----

/// The collection's last-modified, locking its row; `None` when the user has no such
/// collection.
pub fn lock_collection(tx: &mut Tx<'_>, uid: i64, collection: i32, lock: Lock) -> QueryResult<Option<i64>> {
    let backend = tx.backend();
    Ok(Sql::new(format!(
        "SELECT last_modified AS value FROM user_collections WHERE userid = ? AND collection = ?{}",
        lock_clause(backend, lock)
    ))
    .arg(Arg::I64(uid))
    .arg(Arg::I32(collection))
    .first::<Single>(tx)?
    .map(|r| r.value))
}

/// Locks the collection's row for writing, creating it (last-modified 0, visible to nobody
/// until commit) when missing, so that concurrent first writers of a new collection queue on
/// the row lock instead of racing. Returns (last-modified, whether it already existed).
pub fn lock_or_create_collection(tx: &mut Tx<'_>, uid: i64, collection: i32) -> QueryResult<(i64, bool)> {
    if let Some(ts) = lock_collection(tx, uid, collection, Lock::Write)? {
        return Ok((ts, true));
    }
    let backend = tx.backend();
    let inserted = Sql::new(insert_ignore(
        backend,
        "INTO user_collections (userid, collection, last_modified, total_bytes, count) VALUES (?, ?, 0, 0, 0)",
    ))
    .arg(Arg::I64(uid))
    .arg(Arg::I32(collection))
    .execute(tx)?;
    // Not inserted: another transaction created it and has committed meanwhile.
    let ts = lock_collection(tx, uid, collection, Lock::Write)?.unwrap_or(0);
    Ok((ts, inserted == 0))
}

/// Locks the user for a write: the row of the tombstone, created at 0 (which changes no
/// timestamp: readers take the maximum) when the user has none. One row per user, so writes of
/// different users never wait for each other. SQLite needs no row lock: its write transactions
/// are exclusive.
pub fn lock_user(tx: &mut Tx<'_>, uid: i64) -> QueryResult<()> {
    match tx.backend() {
        Backend::Sqlite => Ok(()),
        Backend::Mysql | Backend::Postgres => {
            lock_or_create_collection(tx, uid, TOMBSTONE_COLLECTION).map(|_| ())
        }
    }
}

/// `lock_user`, then the collection's row for writing, in one statement when the user's
/// tombstone exists (a round trip less on every write); returns the collection's last-modified,
/// `None` when the user has no such collection (nothing is created for it). Both rows are
/// locked in key order, the tombstone (collection 0) first, as everywhere.
pub fn lock_user_and_collection(tx: &mut Tx<'_>, uid: i64, collection: i32) -> QueryResult<Option<i64>> {
    let backend = tx.backend();
    if backend == Backend::Sqlite {
        return lock_collection(tx, uid, collection, Lock::Write);
    }
    let rows = Sql::new(format!(
        "SELECT collection, last_modified FROM user_collections \
         WHERE userid = ? AND collection IN ({TOMBSTONE_COLLECTION}, ?) ORDER BY collection{}",
        lock_clause(backend, Lock::Write)
    ))
    .arg(Arg::I64(uid))
    .arg(Arg::I32(collection))
    .load::<CollectionModified>(tx)?;
    if rows.first().is_none_or(|row| row.collection != TOMBSTONE_COLLECTION) {
        // The user's first write (or first since a storage deletion): the lock row first.
        lock_user(tx, uid)?;
        return lock_collection(tx, uid, collection, Lock::Write);
    }
    Ok(rows.iter().find(|row| row.collection == collection).map(|row| row.last_modified))
}

/// The newest of the user's timestamps that a write must pass: every collection row (the
/// tombstone included, so this is the storage timestamp) and every pending deletion. Read
/// after `lock_user`, in a statement of its own: under READ COMMITTED it then sees what the
/// previous holder of the lock committed.
pub fn write_floor(tx: &mut Tx<'_>, uid: i64) -> QueryResult<i64> {
    let greatest = greatest(tx.backend());
    Ok(Sql::new(format!(
        "SELECT {greatest}(\
         COALESCE((SELECT MAX(last_modified) FROM user_collections WHERE userid = ?), 0), \
         COALESCE((SELECT MAX(deleted_at) FROM weft_deleted_collections WHERE userid = ?), 0)) AS value"
    ))
    .arg(Arg::I64(uid))
    .arg(Arg::I64(uid))
    .first::<Single>(tx)?
    .map_or(0, |r| r.value))
}

pub fn set_collection_modified(
    tx: &mut Tx<'_>,
    uid: i64,
    collection: i32,
    modified: i64,
) -> QueryResult<usize> {
    Sql::new("UPDATE user_collections SET last_modified = ? WHERE userid = ? AND collection = ?")
        .arg(Arg::I64(modified))
        .arg(Arg::I64(uid))
        .arg(Arg::I32(collection))
        .execute(tx)
}

/// Recomputes the quota bookkeeping columns of one collection from its live rows.
pub fn refresh_collection_totals(tx: &mut Tx<'_>, uid: i64, collection: i32, now: i64) -> QueryResult<usize> {
    let len = payload_bytes(tx.backend());
    Sql::new(format!(
        "UPDATE user_collections SET \
           total_bytes = (SELECT COALESCE(SUM({len}), 0) FROM bso WHERE userid = ? AND collection = ? AND ttl > ?{AFTER_DELETION}), \
           count = (SELECT COUNT(*) FROM bso WHERE userid = ? AND collection = ? AND ttl > ?{AFTER_DELETION}) \
         WHERE userid = ? AND collection = ?"
    ))
    .args([Arg::I64(uid), Arg::I32(collection), Arg::I64(now), Arg::I64(uid), Arg::I32(collection)])
    .args([Arg::I64(uid), Arg::I32(collection), Arg::I64(now), Arg::I64(uid), Arg::I32(collection)])
    .args([Arg::I64(uid), Arg::I32(collection)])
    .execute(tx)
}

/// The user's bytes as recorded by the quota bookkeeping.
pub fn quota_usage(tx: &mut Tx<'_>, uid: i64) -> QueryResult<i64> {
    let int64 = int64(tx.backend());
    Ok(Sql::new(format!(
        "SELECT CAST(SUM(total_bytes) AS {int64}) AS value FROM user_collections WHERE userid = ?"
    ))
    .arg(Arg::I64(uid))
    .first::<OptionalSingle>(tx)?
    .and_then(|r| r.value)
    .unwrap_or(0))
}

/// The storage last-modified: greatest timestamp over the user's collections and tombstone.
pub fn storage_modified(tx: &mut Tx<'_>, uid: i64) -> QueryResult<i64> {
    Ok(Sql::new("SELECT MAX(last_modified) AS value FROM user_collections WHERE userid = ?")
        .arg(Arg::I64(uid))
        .first::<OptionalSingle>(tx)?
        .and_then(|r| r.value)
        .unwrap_or(0))
}

/// Every `user_collections` row of the user, tombstone included, with collection names: one
/// statement gives both the collection timestamps and the storage timestamp (their maximum)
/// from the same snapshot.
pub fn user_collections(tx: &mut Tx<'_>, uid: i64) -> QueryResult<Vec<UserCollectionRow>> {
    Sql::new(
        "SELECT uc.collection AS collection, c.name AS name, uc.last_modified AS last_modified \
         FROM user_collections uc LEFT JOIN collections c ON c.id = uc.collection WHERE uc.userid = ?",
    )
    .arg(Arg::I64(uid))
    .load::<UserCollectionRow>(tx)
}

/// name → number of live items, for collections that have any.
pub fn collection_counts(tx: &mut Tx<'_>, uid: i64, now: i64) -> QueryResult<Vec<(String, i64)>> {
    named_aggregate(tx, "COUNT(*)", uid, now)
}

/// name → payload bytes of live items, for collections that have any.
pub fn collection_usage(tx: &mut Tx<'_>, uid: i64, now: i64) -> QueryResult<Vec<(String, i64)>> {
    let len = payload_bytes(tx.backend());
    let int64 = int64(tx.backend());
    named_aggregate(tx, &format!("CAST(SUM({len}) AS {int64})"), uid, now)
}

fn named_aggregate(tx: &mut Tx<'_>, aggregate: &str, uid: i64, now: i64) -> QueryResult<Vec<(String, i64)>> {
    Ok(Sql::new(format!(
        "SELECT c.name AS name, {aggregate} AS value FROM bso b JOIN collections c ON c.id = b.collection \
         WHERE b.userid = ? AND b.ttl > ?{B_AFTER_DELETION} GROUP BY c.name"
    ))
    .arg(Arg::I64(uid))
    .arg(Arg::I64(now))
    .load::<NamedCount>(tx)?
    .into_iter()
    .map(|r| (r.name, r.value))
    .collect())
}

/// Payload bytes of all the user's live items.
pub fn storage_usage(tx: &mut Tx<'_>, uid: i64, now: i64) -> QueryResult<i64> {
    let len = payload_bytes(tx.backend());
    let int64 = int64(tx.backend());
    Ok(Sql::new(format!(
        "SELECT CAST(SUM({len}) AS {int64}) AS value FROM bso b WHERE b.userid = ? AND b.ttl > ?{B_AFTER_DELETION}"
    ))
        .arg(Arg::I64(uid))
        .arg(Arg::I64(now))
        .first::<OptionalSingle>(tx)?
        .and_then(|r| r.value)
        .unwrap_or(0))
}

/// Deletes a collection as its reader sees it, in a constant number of statements whatever its
/// size: records the deletion at `modified` (its items become invisible), removes the
/// collection's record and moves the tombstone to `modified`. The items themselves are the
/// deleter's (`purge::delete_deleted_bsos`).
pub fn delete_collection(tx: &mut Tx<'_>, uid: i64, collection: i32, modified: i64) -> QueryResult<()> {
    record_deletions(tx, uid, &[collection], modified)?;
    Sql::new("DELETE FROM user_collections WHERE userid = ? AND collection = ?")
        .arg(Arg::I64(uid))
        .arg(Arg::I32(collection))
        .execute(tx)?;
    let updated = set_collection_modified(tx, uid, TOMBSTONE_COLLECTION, modified)?;
    if updated == 0 {
        Sql::new("INSERT INTO user_collections (userid, collection, last_modified, total_bytes, count) VALUES (?, ?, ?, 0, 0)")
            .arg(Arg::I64(uid))
            .arg(Arg::I32(TOMBSTONE_COLLECTION))
            .arg(Arg::I64(modified))
            .execute(tx)?;
    }
    Ok(())
}

/// Deletes everything the user has as readers see it: records the deletion of every
/// collection at `modified`, removes the collection records and tombstone and the pending
/// batches (their staged items, unreachable now, go with the expired batches' purge). Items
/// are the deleter's.
pub fn delete_storage(tx: &mut Tx<'_>, uid: i64, modified: i64) -> QueryResult<()> {
    let collections: Vec<i32> = user_collections(tx, uid)?
        .into_iter()
        .map(|row| row.collection)
        .filter(|&c| c != TOMBSTONE_COLLECTION)
        .collect();
    record_deletions(tx, uid, &collections, modified)?;
    for table in ["user_collections", "batch_uploads"] {
        Sql::new(format!("DELETE FROM {table} WHERE userid = ?")).arg(Arg::I64(uid)).execute(tx)?;
    }
    Ok(())
}

/// Removes every row of the user at once, pending deletions included: for `weft import`, which
/// rewrites a user with the source's timestamps (which a deferred deletion, recorded now, would
/// hide). Costs as much as the user stores; not for the request path.
pub fn erase_user(tx: &mut Tx<'_>, uid: i64) -> QueryResult<()> {
    for table in
        ["bso", "user_collections", "batch_upload_items", "batch_uploads", "weft_deleted_collections"]
    {
        Sql::new(format!("DELETE FROM {table} WHERE userid = ?")).arg(Arg::I64(uid)).execute(tx)?;
    }
    Ok(())
}

/// Marks the collections' items written at or before `deleted_at` deleted; a pending deletion
/// only ever moves forward.
fn record_deletions(tx: &mut Tx<'_>, uid: i64, collections: &[i32], deleted_at: i64) -> QueryResult<()> {
    if collections.is_empty() {
        return Ok(());
    }
    let backend = tx.backend();
    let greatest = greatest(backend);
    let conflict = match backend {
        Backend::Sqlite | Backend::Postgres => format!(
            " ON CONFLICT (userid, collection) DO UPDATE SET \
             deleted_at = {greatest}(weft_deleted_collections.deleted_at, excluded.deleted_at)"
        ),
        Backend::Mysql => {
            format!(" ON DUPLICATE KEY UPDATE deleted_at = {greatest}(deleted_at, VALUES(deleted_at))")
        }
    };
    let values = vec!["(?, ?, ?)"; collections.len()].join(", ");
    Sql::varying(format!(
        "INSERT INTO weft_deleted_collections (userid, collection, deleted_at) VALUES {values}{conflict}"
    ))
    .args(collections.iter().flat_map(|&c| [Arg::I64(uid), Arg::I32(c), Arg::I64(deleted_at)]))
    .execute(tx)?;
    Ok(())
}

// ---- bso ----

const BSO_COLUMNS: &str = "id, modified, payload, sortindex";
const BSO_ID_COLUMNS: &str = "id, modified, '' AS payload, sortindex";

pub fn get_bso(
    tx: &mut Tx<'_>,
    uid: i64,
    collection: i32,
    id: &str,
    now: i64,
) -> QueryResult<Option<BsoRow>> {
    Sql::new(format!(
        "SELECT {BSO_COLUMNS} FROM bso WHERE userid = ? AND collection = ? AND id = ? AND ttl > ?{AFTER_DELETION}"
    ))
    .args([Arg::I64(uid), Arg::I32(collection), Arg::Str(id), Arg::I64(now)])
    .args([Arg::I64(uid), Arg::I32(collection)])
    .first::<BsoRow>(tx)
}

/// The live item's `modified`, for item-level preconditions.
pub fn bso_modified(
    tx: &mut Tx<'_>,
    uid: i64,
    collection: i32,
    id: &str,
    now: i64,
) -> QueryResult<Option<i64>> {
    Ok(Sql::new(format!(
        "SELECT modified AS value FROM bso WHERE userid = ? AND collection = ? AND id = ? AND ttl > ?{AFTER_DELETION}"
    ))
    .args([Arg::I64(uid), Arg::I32(collection), Arg::Str(id), Arg::I64(now)])
    .args([Arg::I64(uid), Arg::I32(collection)])
    .first::<Single>(tx)?
    .map(|r| r.value))
}

/// Ordering of a collection read; every ordering ends with `id` so that it is total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Newest,
    Oldest,
    Index,
}

/// The filters of a collection read, in stored units.
#[derive(Debug, Clone, Default)]
pub struct BsoFilter<'a> {
    pub ids: &'a [String],
    /// `modified > newer`
    pub newer: Option<i64>,
    /// `modified < older`
    pub older: Option<i64>,
    /// Offset-token bound: `modified <= bound` (newest) or `>= bound` (oldest).
    pub bound: Option<i64>,
    pub order: Option<Order>,
    pub limit: Option<i64>,
    pub skip: i64,
    pub full: bool,
}

/// One page of a collection read, in the requested order (the caller holds the collection's
/// row lock, so the page and the collection timestamp it read agree).
pub fn find_bsos(
    tx: &mut Tx<'_>,
    uid: i64,
    collection: i32,
    filter: &BsoFilter<'_>,
    now: i64,
) -> QueryResult<Vec<BsoRow>> {
    let columns = if filter.full { BSO_COLUMNS } else { BSO_ID_COLUMNS };
    let order = filter.order.unwrap_or(Order::Newest);
    let mut sql =
        format!("SELECT {columns} FROM bso WHERE userid = ? AND collection = ? AND ttl > ?{AFTER_DELETION}");
    let mut args =
        vec![Arg::I64(uid), Arg::I32(collection), Arg::I64(now), Arg::I64(uid), Arg::I32(collection)];
    if !filter.ids.is_empty() {
        sql.push_str(&format!(" AND id IN ({})", placeholders(filter.ids.len())));
        args.extend(filter.ids.iter().map(|id| Arg::Str(id)));
    }
    if let Some(newer) = filter.newer {
        sql.push_str(" AND modified > ?");
        args.push(Arg::I64(newer));
    }
    if let Some(older) = filter.older {
        sql.push_str(" AND modified < ?");
        args.push(Arg::I64(older));
    }
    if let Some(bound) = filter.bound {
        sql.push_str(if order == Order::Oldest { " AND modified >= ?" } else { " AND modified <= ?" });
        args.push(Arg::I64(bound));
    }
    match order {
        Order::Newest => sql.push_str(" ORDER BY modified DESC, id DESC"),
        Order::Oldest => sql.push_str(" ORDER BY modified ASC, id ASC"),
        Order::Index => {
            sql.push_str(&format!(" ORDER BY sortindex {}, id DESC", desc_nulls_last(tx.backend())))
        }
    }
    // Both engines need a LIMIT to accept an OFFSET; -1 / 2^63-1 mean "no limit".
    sql.push_str(" LIMIT ? OFFSET ?");
    args.push(Arg::I64(filter.limit.unwrap_or(i64::MAX)));
    args.push(Arg::I64(filter.skip));
    Sql::new(sql).varying_if(!filter.ids.is_empty()).args(args).load::<BsoRow>(tx)
}

/// The stored rows (live or expired, not deleted) among `ids`: a deleted row is absent, and the
/// write that replaces it writes every column.
pub fn existing_bsos(
    tx: &mut Tx<'_>,
    uid: i64,
    collection: i32,
    ids: &[&str],
) -> QueryResult<Vec<ExistingBso>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT * 4) {
        let sql = format!(
            "SELECT id, sortindex, modified, ttl FROM bso WHERE userid = ? AND collection = ? AND id IN ({}){AFTER_DELETION}",
            placeholders(chunk.len())
        );
        let rows = Sql::varying(sql)
            .arg(Arg::I64(uid))
            .arg(Arg::I32(collection))
            .args(chunk.iter().map(|id| Arg::Str(id)))
            .args([Arg::I64(uid), Arg::I32(collection)])
            .load::<ExistingBso>(tx)?;
        found.extend(rows);
    }
    Ok(found)
}

/// Writes complete rows, replacing any stored row with the same id: on PostgreSQL one statement
/// of fixed text whatever the number of rows (`upsert_bsos_postgres`), elsewhere multi-row
/// statements.
pub fn upsert_bsos(tx: &mut Tx<'_>, uid: i64, collection: i32, rows: &[NewBso<'_>]) -> QueryResult<()> {
    let conflict = match tx.backend() {
        Backend::Postgres => return upsert_bsos_postgres(tx, uid, collection, rows),
        Backend::Sqlite => {
            " ON CONFLICT (userid, collection, id) DO UPDATE SET sortindex = excluded.sortindex, \
             payload = excluded.payload, modified = excluded.modified, ttl = excluded.ttl, \
             payload_size = excluded.payload_size"
        }
        Backend::Mysql => {
            " ON DUPLICATE KEY UPDATE sortindex = VALUES(sortindex), payload = VALUES(payload), \
             modified = VALUES(modified), ttl = VALUES(ttl), payload_size = VALUES(payload_size)"
        }
    };
    for chunk in chunks_by_size(rows, |r| r.payload.len()) {
        let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut sql = Sql::varying(format!(
            "INSERT INTO bso (userid, collection, id, sortindex, payload, modified, ttl, payload_size) VALUES {values}{conflict}"
        ));
        for row in chunk {
            sql = sql.args([
                Arg::I64(uid),
                Arg::I32(collection),
                Arg::Str(row.id),
                Arg::OptI32(row.sortindex),
                Arg::Str(row.payload),
                Arg::I64(row.modified),
                Arg::I64(row.ttl),
                Arg::I32(payload_size(row)),
            ]);
        }
        sql.execute(tx)?;
    }
    Ok(())
}

fn payload_size(row: &NewBso<'_>) -> i32 {
    i32::try_from(row.payload.len()).unwrap_or(i32::MAX)
}

/// PostgreSQL's upsert: the rows travel as one JSON array, expanded by `json_to_recordset`, so
/// the statement's text is the same for every POST and stays prepared. A multi-row `VALUES` of
/// 100 rows is 800 binds that PostgreSQL parses and plans on every POST, the bulk of the
/// database's CPU for a write (issue 26; Mozilla's PostgreSQL backend upserts with `UNNEST` for
/// the same reason). The source is a function, not a table, so the `INSERT … SELECT` takes no
/// lock on anything it reads.
fn upsert_bsos_postgres(tx: &mut Tx<'_>, uid: i64, collection: i32, rows: &[NewBso<'_>]) -> QueryResult<()> {
    for chunk in chunks_by_size(rows, |r| r.payload.len()) {
        let json: Vec<serde_json::Value> = chunk
            .iter()
            .map(|row| {
                serde_json::json!({
                    "id": row.id,
                    "sortindex": row.sortindex,
                    "payload": row.payload,
                    "modified": row.modified,
                    "ttl": row.ttl,
                    "payload_size": payload_size(row),
                })
            })
            .collect();
        let json = serde_json::Value::Array(json).to_string();
        Sql::new(
            "INSERT INTO bso (userid, collection, id, sortindex, payload, modified, ttl, payload_size) \
             SELECT ?, ?, r.id, r.sortindex, r.payload, r.modified, r.ttl, r.payload_size \
             FROM json_to_recordset(CAST(? AS json)) AS r(id text, sortindex integer, payload text, \
             modified bigint, ttl bigint, payload_size integer) \
             ON CONFLICT (userid, collection, id) DO UPDATE SET sortindex = excluded.sortindex, \
             payload = excluded.payload, modified = excluded.modified, ttl = excluded.ttl, \
             payload_size = excluded.payload_size",
        )
        .arg(Arg::I64(uid))
        .arg(Arg::I32(collection))
        .arg(Arg::Str(&json))
        .execute(tx)?;
    }
    Ok(())
}

/// Changes the metadata of a stored row without touching its payload.
pub fn update_bso_metadata(
    tx: &mut Tx<'_>,
    uid: i64,
    collection: i32,
    id: &str,
    sortindex: Option<i32>,
    modified: i64,
    ttl: i64,
) -> QueryResult<usize> {
    Sql::new(
        "UPDATE bso SET sortindex = ?, modified = ?, ttl = ? WHERE userid = ? AND collection = ? AND id = ?",
    )
    .args([Arg::OptI32(sortindex), Arg::I64(modified), Arg::I64(ttl)])
    .args([Arg::I64(uid), Arg::I32(collection), Arg::Str(id)])
    .execute(tx)
}

/// Deletes the listed items; returns how many rows went.
pub fn delete_bsos(tx: &mut Tx<'_>, uid: i64, collection: i32, ids: &[String]) -> QueryResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    Sql::varying(format!(
        "DELETE FROM bso WHERE userid = ? AND collection = ? AND id IN ({})",
        placeholders(ids.len())
    ))
    .arg(Arg::I64(uid))
    .arg(Arg::I32(collection))
    .args(ids.iter().map(|id| Arg::Str(id)))
    .execute(tx)
}

// ---- batches ----

/// Records a new batch; `false` when the id is taken, also by the staged items of a batch that
/// a storage deletion left for the purge (they must not join the new batch).
pub fn create_batch(tx: &mut Tx<'_>, batch: i64, uid: i64, collection: i32) -> QueryResult<bool> {
    let backend = tx.backend();
    let leftover =
        Sql::new("SELECT batch AS value FROM batch_upload_items WHERE batch = ? AND userid = ? LIMIT 1")
            .arg(Arg::I64(batch))
            .arg(Arg::I64(uid))
            .first::<Single>(tx)?;
    if leftover.is_some() {
        return Ok(false);
    }
    let inserted =
        Sql::new(insert_ignore(backend, "INTO batch_uploads (batch, userid, collection) VALUES (?, ?, ?)"))
            .args([Arg::I64(batch), Arg::I64(uid), Arg::I32(collection)])
            .execute(tx)?;
    Ok(inserted == 1)
}

/// The batch's collection, locking the batch row so appends and the commit of one batch
/// queue behind each other.
pub fn lock_batch(tx: &mut Tx<'_>, batch: i64, uid: i64) -> QueryResult<Option<i32>> {
    let backend = tx.backend();
    Ok(Sql::new(format!(
        "SELECT CAST(collection AS {}) AS value FROM batch_uploads WHERE batch = ? AND userid = ?{}",
        int64(backend),
        lock_clause(backend, Lock::Write)
    ))
    .arg(Arg::I64(batch))
    .arg(Arg::I64(uid))
    .first::<Single>(tx)?
    .map(|r| r.value as i32))
}

/// Stages items, merging per id: a field a later item carries replaces the staged one, an
/// absent field (NULL) keeps it.
pub fn stage_batch_items(tx: &mut Tx<'_>, batch: i64, uid: i64, items: &[StagedBso]) -> QueryResult<()> {
    let conflict = match tx.backend() {
        Backend::Sqlite | Backend::Postgres => {
            " ON CONFLICT (batch, userid, id) DO UPDATE SET \
             sortindex = COALESCE(excluded.sortindex, batch_upload_items.sortindex), \
             payload = COALESCE(excluded.payload, batch_upload_items.payload), \
             payload_size = COALESCE(excluded.payload_size, batch_upload_items.payload_size), \
             ttl_offset = COALESCE(excluded.ttl_offset, batch_upload_items.ttl_offset)"
        }
        Backend::Mysql => {
            " ON DUPLICATE KEY UPDATE \
             sortindex = COALESCE(VALUES(sortindex), sortindex), \
             payload = COALESCE(VALUES(payload), payload), \
             payload_size = COALESCE(VALUES(payload_size), payload_size), \
             ttl_offset = COALESCE(VALUES(ttl_offset), ttl_offset)"
        }
    };
    for chunk in chunks_by_size(items, |i| i.payload.as_ref().map_or(0, String::len)) {
        let values = vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut sql = Sql::varying(format!(
            "INSERT INTO batch_upload_items (batch, userid, id, sortindex, payload, payload_size, ttl_offset) VALUES {values}{conflict}"
        ));
        for item in chunk {
            let size = item.payload.as_ref().map(|p| i32::try_from(p.len()).unwrap_or(i32::MAX));
            sql = sql.args([
                Arg::I64(batch),
                Arg::I64(uid),
                Arg::Str(&item.id),
                Arg::OptI32(item.sortindex),
                Arg::OptStr(item.payload.as_deref()),
                Arg::OptI32(size),
                Arg::OptI32(item.ttl_offset),
            ]);
        }
        sql.execute(tx)?;
    }
    Ok(())
}

/// (items, payload bytes) staged so far.
pub fn batch_totals(tx: &mut Tx<'_>, batch: i64, uid: i64) -> QueryResult<(i64, i64)> {
    let int64 = int64(tx.backend());
    Ok(Sql::new(format!(
        "SELECT COUNT(*) AS count, CAST(COALESCE(SUM(payload_size), 0) AS {int64}) AS bytes \
         FROM batch_upload_items WHERE batch = ? AND userid = ?"
    ))
    .arg(Arg::I64(batch))
    .arg(Arg::I64(uid))
    .first::<Totals>(tx)?
    .map_or((0, 0), |t| (t.count, t.bytes)))
}

/// How many batches the user has with an id above `since` (the expired ones are at or below it).
pub fn open_batches(tx: &mut Tx<'_>, uid: i64, since: i64) -> QueryResult<i64> {
    Ok(Sql::new("SELECT COUNT(*) AS value FROM batch_uploads WHERE userid = ? AND batch > ?")
        .arg(Arg::I64(uid))
        .arg(Arg::I64(since))
        .first::<Single>(tx)?
        .map_or(0, |r| r.value))
}

/// Payload bytes staged in the user's batches with an id above `since`.
pub fn staged_bytes(tx: &mut Tx<'_>, uid: i64, since: i64) -> QueryResult<i64> {
    let int64 = int64(tx.backend());
    Ok(Sql::new(format!(
        "SELECT CAST(SUM(i.payload_size) AS {int64}) AS value FROM batch_uploads b \
         JOIN batch_upload_items i ON i.batch = b.batch AND i.userid = b.userid \
         WHERE b.userid = ? AND b.batch > ?"
    ))
    .arg(Arg::I64(uid))
    .arg(Arg::I64(since))
    .first::<OptionalSingle>(tx)?
    .and_then(|r| r.value)
    .unwrap_or(0))
}

pub fn batch_items(tx: &mut Tx<'_>, batch: i64, uid: i64) -> QueryResult<Vec<StagedBso>> {
    Sql::new(
        "SELECT id, sortindex, payload, ttl_offset FROM batch_upload_items WHERE batch = ? AND userid = ?",
    )
    .arg(Arg::I64(batch))
    .arg(Arg::I64(uid))
    .load::<StagedBso>(tx)
}

pub fn delete_batch(tx: &mut Tx<'_>, batch: i64, uid: i64) -> QueryResult<()> {
    for table in ["batch_upload_items", "batch_uploads"] {
        Sql::new(format!("DELETE FROM {table} WHERE batch = ? AND userid = ?"))
            .arg(Arg::I64(batch))
            .arg(Arg::I64(uid))
            .execute(tx)?;
    }
    Ok(())
}

/// Splits rows into statement-sized groups by count and payload bytes.
fn chunks_by_size<T>(rows: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, row) in rows.iter().enumerate() {
        let len = size(row);
        if i > start && (i - start >= ROWS_PER_STATEMENT || bytes + len > BYTES_PER_STATEMENT) {
            chunks.push(&rows[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += len;
    }
    if start < rows.len() {
        chunks.push(&rows[start..]);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::chunks_by_size;

    #[test]
    fn chunks_respect_rows_and_bytes() {
        let rows: Vec<usize> = vec![1; 450];
        let sizes: Vec<usize> = chunks_by_size(&rows, |r| *r).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![200, 200, 50]);
        let big = vec![5 * 1024 * 1024usize; 3];
        assert_eq!(chunks_by_size(&big, |r| *r).len(), 3);
        assert!(chunks_by_size::<usize>(&[], |r| *r).is_empty());
    }
}
