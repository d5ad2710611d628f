//! Collection operations: reading a collection with its filters and paging, and deleting it
//! or some of its items (storage-api.md §6.7, §6.10). Their precondition resource is the
//! collection's timestamp.

use weft_schema::models::BsoRow;
use weft_schema::pool::Tx;
use weft_schema::queries::storage::{self, BsoFilter, Lock, Order};
use weft_schema::SyncTimestamp;

use crate::storage::requests::*;
use crate::storage::rules::{check_precondition, open_collection, settle_quota, write_timestamp};
use crate::storage::Storage;
use crate::storage::StorageError;

pub fn get_bsos(ctx: &Storage, tx: &mut Tx<'_>, msg: &GetBsos) -> Result<Timestamped<BsoPage>, StorageError> {
    let uid = msg.uid as i64;
    let empty = BsoPage { items: vec![], next_offset: None };
    let Some(collection) = ctx.collection_id(tx, &msg.collection)? else {
        check_precondition(msg.precondition, SyncTimestamp::ZERO)?;
        return Ok(Timestamped { last_modified: SyncTimestamp::ZERO, value: empty });
    };
    let last_modified =
        SyncTimestamp::from_millis(storage::lock_collection(tx, uid, collection, Lock::Read)?.unwrap_or(0));
    check_precondition(msg.precondition, last_modified)?;

    let query = &msg.query;
    // Unlimited reads are capped like REF's (10 000 rows), with a next offset beyond.
    let cap = ctx.config().max_read_records;
    let limit = query.limit.map_or(cap, |l| l.min(cap));
    if limit == 0 {
        return Ok(Timestamped { last_modified, value: empty });
    }
    let order = match query.sort {
        Sort::Newest => Order::Newest,
        Sort::Oldest => Order::Oldest,
        Sort::Index => Order::Index,
    };
    let (bound, skip) = match query.offset {
        None => (None, 0),
        Some(Offset::Rows(n)) => (None, n),
        // A timestamp token only means something for a timestamp ordering.
        Some(Offset::Timestamp { bound, skip }) if order != Order::Index => (Some(bound.as_millis()), skip),
        Some(Offset::Timestamp { skip, .. }) => (None, skip),
    };
    let skip = i64::try_from(skip).unwrap_or(i64::MAX);
    let filter = BsoFilter {
        ids: &query.ids,
        newer: query.newer.map(SyncTimestamp::as_millis),
        older: query.older.map(SyncTimestamp::as_millis),
        bound,
        order: Some(order),
        // One row more than asked tells whether a next page exists.
        limit: Some(limit as i64 + 1),
        skip,
        full: query.full,
    };
    let mut rows = storage::find_bsos(tx, uid, collection, &filter, SyncTimestamp::now().as_millis())?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_offset = more.then(|| next_offset(order, &rows, bound, skip));
    let items = rows
        .into_iter()
        .map(|row| Bso {
            id: row.id,
            modified: SyncTimestamp::from_millis(row.modified),
            payload: row.payload,
            sortindex: row.sortindex,
        })
        .collect();
    Ok(Timestamped { last_modified, value: BsoPage { items, next_offset } })
}

/// Where the page after `rows` starts (REF's paging, storage-api.md §6.7): a plain row offset
/// for `sort=index`; otherwise the last item's `modified` as the bound and, as the skip, the
/// returned items at that bound (plus the previous skip when the whole page sat at the previous
/// bound).
fn next_offset(order: Order, rows: &[BsoRow], bound: Option<i64>, skip: i64) -> Offset {
    let skip = skip.max(0) as u64;
    let Some(last) = rows.last() else {
        return Offset::Rows(skip);
    };
    if order == Order::Index {
        return Offset::Rows(skip + rows.len() as u64);
    }
    let at_bound = rows.iter().rev().take_while(|r| r.modified == last.modified).count() as u64;
    let carried = if at_bound == rows.len() as u64 && bound == Some(last.modified) { skip } else { 0 };
    Offset::Timestamp { bound: SyncTimestamp::from_millis(last.modified), skip: at_bound + carried }
}

pub fn delete_collection(
    ctx: &Storage,
    tx: &mut Tx<'_>,
    msg: &DeleteCollection,
) -> Result<SyncTimestamp, StorageError> {
    let uid = msg.uid as i64;
    let Some(ids) = &msg.ids else {
        return delete_whole_collection(ctx, tx, msg);
    };
    // Deleting by ids touches the collection, creating it when missing (both references).
    let (collection, current) = open_collection(ctx, tx, uid, &msg.collection)?;
    check_precondition(msg.precondition, SyncTimestamp::from_millis(current))?;
    let t = write_timestamp(current)?;
    storage::delete_bsos(tx, uid, collection, ids)?;
    storage::set_collection_modified(tx, uid, collection, t.as_millis())?;
    settle_quota(ctx, tx, uid, collection, t)?;
    Ok(t)
}

/// Deletes items and record; replies with the storage timestamp, which the tombstone moves to
/// the deletion time. A missing collection is not an error: nothing changes.
fn delete_whole_collection(
    ctx: &Storage,
    tx: &mut Tx<'_>,
    msg: &DeleteCollection,
) -> Result<SyncTimestamp, StorageError> {
    let uid = msg.uid as i64;
    let current = match ctx.collection_id(tx, &msg.collection)? {
        Some(collection) => {
            storage::lock_collection(tx, uid, collection, Lock::Write)?.map(|ts| (collection, ts))
        }
        None => None,
    };
    let Some((collection, current)) = current else {
        check_precondition(msg.precondition, SyncTimestamp::ZERO)?;
        return Ok(SyncTimestamp::from_millis(storage::storage_modified(tx, uid)?));
    };
    check_precondition(msg.precondition, SyncTimestamp::from_millis(current))?;
    let t = write_timestamp(current)?;
    storage::delete_collection(tx, uid, collection, t.as_millis())?;
    Ok(SyncTimestamp::from_millis(storage::storage_modified(tx, uid)?))
}
