//! Storage-level operations: the `info/*` reads and deleting all of a user's data
//! (storage-api.md §6.1–§6.4, §6.6). Their precondition resource is the storage timestamp.

use std::collections::BTreeMap;

use weft_schema::pool::Tx;
use weft_schema::queries::storage;
use weft_schema::SyncTimestamp;

use crate::storage::requests::*;
use crate::storage::rules::{check_precondition, lock_user, write_timestamp};
use crate::storage::Storage;
use crate::storage::StorageError;

/// The storage timestamp, after checking the request's precondition against it.
fn storage_timestamp(
    tx: &mut Tx<'_>,
    uid: u64,
    precondition: Precondition,
) -> Result<SyncTimestamp, StorageError> {
    let ts = SyncTimestamp::from_millis(storage::storage_modified(tx, uid as i64)?);
    check_precondition(precondition, ts)?;
    Ok(ts)
}

/// One statement: every collection row of the user, the tombstone included, so that the
/// storage timestamp (their maximum) and the listed timestamps come from one snapshot.
pub fn get_collections(
    _: &Storage,
    tx: &mut Tx<'_>,
    msg: &GetCollections,
) -> Result<Timestamped<BTreeMap<String, SyncTimestamp>>, StorageError> {
    let rows = storage::user_collections(tx, msg.uid as i64)?;
    let last_modified = SyncTimestamp::from_millis(rows.iter().map(|r| r.last_modified).max().unwrap_or(0));
    check_precondition(msg.precondition, last_modified)?;
    let value = rows
        .into_iter()
        .filter(|r| r.collection != storage::TOMBSTONE_COLLECTION)
        .filter_map(|r| Some((r.name?, SyncTimestamp::from_millis(r.last_modified))))
        .collect();
    Ok(Timestamped { last_modified, value })
}

pub fn get_quota(_: &Storage, tx: &mut Tx<'_>, msg: &GetQuota) -> Result<Timestamped<u64>, StorageError> {
    let last_modified = storage_timestamp(tx, msg.uid, msg.precondition)?;
    let used = storage::storage_usage(tx, msg.uid as i64, SyncTimestamp::now().as_millis())?;
    Ok(Timestamped { last_modified, value: used.max(0) as u64 })
}

pub fn get_collection_usage(
    _: &Storage,
    tx: &mut Tx<'_>,
    msg: &GetCollectionUsage,
) -> Result<Timestamped<BTreeMap<String, u64>>, StorageError> {
    let last_modified = storage_timestamp(tx, msg.uid, msg.precondition)?;
    let rows = storage::collection_usage(tx, msg.uid as i64, SyncTimestamp::now().as_millis())?;
    Ok(Timestamped { last_modified, value: non_negative(rows) })
}

pub fn get_collection_counts(
    _: &Storage,
    tx: &mut Tx<'_>,
    msg: &GetCollectionCounts,
) -> Result<Timestamped<BTreeMap<String, u64>>, StorageError> {
    let last_modified = storage_timestamp(tx, msg.uid, msg.precondition)?;
    let rows = storage::collection_counts(tx, msg.uid as i64, SyncTimestamp::now().as_millis())?;
    Ok(Timestamped { last_modified, value: non_negative(rows) })
}

fn non_negative(rows: Vec<(String, i64)>) -> BTreeMap<String, u64> {
    rows.into_iter().map(|(name, n)| (name, n.max(0) as u64)).collect()
}

/// Deletes everything for readers; replies with the time of the deletion (the storage timestamp
/// itself is 0 afterwards, as nothing is left). The deletion time is taken like a write's,
/// strictly after the user's timestamps (`rules::lock_user`), and every stored item is at or
/// before it: the deleter removes exactly those later (`purge.rs`), so this answers in a few
/// statements whatever the user stores. The next write, which has no collection left to
/// compare with, is later than the pending deletions this records, and so than anything the
/// user saw before (§13.36).
pub fn delete_storage(
    _: &Storage,
    tx: &mut Tx<'_>,
    msg: &DeleteStorage,
) -> Result<SyncTimestamp, StorageError> {
    let floor = lock_user(tx, msg.uid as i64)?;
    storage_timestamp(tx, msg.uid, msg.precondition)?;
    let t = write_timestamp(floor)?;
    storage::delete_storage(tx, msg.uid as i64, t.as_millis())?;
    Ok(t)
}
