//! Cache-only collections (`cache.cache_only`, off by default; ops-model.md §5.5): their items
//! live only in the cache, as the same record a write-through collection has, and never reach
//! the database. Each write reads the record with its version, applies the operation's rules
//! (preconditions, the write timestamp strictly after the collection's and the user's storage
//! timestamp, `floor`, which the caller reads from the metadata record; PUT semantics) and
//! stores it back only if nobody wrote it meanwhile (`cas`; losing that race is a `Conflict`,
//! 503 + Retry-After, as for a busy collection). The caller (`storage/cache.rs`) runs these
//! writes under the metadata record's protocol, so `info/collections` and every timestamp stay
//! exact across webheads.
//!
//! The durability trade-off (README): losing the cache loses these collections (a restarted
//! memcached, or the process with the in-process store); a store that is down reads as empty.
//! Only one-request uploads are kept (`?batch=true&commit=true` is a plain POST); a batch over
//! several requests is refused as an invalid batch, since its staged items would live in the
//! database. Counts and usage (`info/*`) do not include these collections.

use weft_schema::SyncTimestamp;

use crate::cache::Kind;
use crate::storage::apply::Touch;
use crate::storage::cache::{Items, NodeCache};
use crate::storage::requests::*;
use crate::storage::rules::{check_precondition, write_timestamp};
use crate::storage::{ShedReason, StorageError};

/// The collection's record and its version (`None`: absent, so empty).
fn load(nc: &NodeCache, uid: u64, collection: &str) -> Result<(Items, Option<u64>), StorageError> {
    let key = nc.cache().collection_key(uid, collection);
    match nc.cache().get_kept::<Items>(Kind::Collection, &key) {
        Ok(Some((items, version))) => Ok((items, Some(version))),
        Ok(None) => Ok((Items::empty(), None)),
        Err(_) => Err(StorageError::Overloaded(ShedReason::CacheUnavailable)),
    }
}

/// The collection's record, for reads.
pub(crate) fn items(nc: &NodeCache, uid: u64, collection: &str) -> Result<Items, StorageError> {
    Ok(load(nc, uid, collection)?.0)
}

/// Reads the record, lets `change` derive the next one, and stores it if nobody wrote it
/// meanwhile.
fn change<R>(
    nc: &NodeCache,
    uid: u64,
    collection: &str,
    change: impl FnOnce(Items) -> Result<(Items, R), StorageError>,
) -> Result<R, StorageError> {
    let (items, version) = load(nc, uid, collection)?;
    let (next, result) = change(items)?;
    let key = nc.cache().collection_key(uid, collection);
    match nc.cache().put_kept(&key, &next, version) {
        Ok(true) => Ok(result),
        Ok(false) => Err(StorageError::Conflict),
        Err(_) => Err(StorageError::Overloaded(ShedReason::CacheUnavailable)),
    }
}

/// The item's timestamp (0 when missing or expired), for item preconditions.
fn item_timestamp(items: &Items, id: &str, now: SyncTimestamp) -> SyncTimestamp {
    SyncTimestamp::from_millis(items.live_item(id, now).map_or(0, |item| item.modified))
}

pub(crate) fn put_bso(nc: &NodeCache, msg: &PutBso, floor: i64) -> Result<PutResult, StorageError> {
    change(nc, msg.uid, &msg.collection, |items| {
        check_precondition(msg.precondition, item_timestamp(&items, &msg.bso.id, SyncTimestamp::now()))?;
        let t = write_timestamp(items.modified().max(floor))?;
        let next = items.applied(std::slice::from_ref(&msg.bso), t, Touch::Changed);
        Ok((next, PutResult { modified: t, quota_remaining: None }))
    })
}

pub(crate) fn post_bsos(nc: &NodeCache, msg: &PostBsos, floor: i64) -> Result<PostResult, StorageError> {
    match (&msg.batch, msg.commit) {
        (None, _) | (Some(BatchMode::Create), true) => {}
        _ => return Err(StorageError::InvalidBatch),
    }
    change(nc, msg.uid, &msg.collection, |items| {
        check_precondition(msg.precondition, SyncTimestamp::from_millis(items.modified()))?;
        let t = write_timestamp(items.modified().max(floor))?;
        let next = items.applied(&msg.bsos, t, Touch::Changed);
        Ok((next, PostResult { outcome: PostOutcome::Committed { modified: t }, quota_remaining: None }))
    })
}

pub(crate) fn delete_bso(nc: &NodeCache, msg: &DeleteBso, floor: i64) -> Result<SyncTimestamp, StorageError> {
    change(nc, msg.uid, &msg.collection, |items| {
        let item = item_timestamp(&items, &msg.id, SyncTimestamp::now());
        check_precondition(msg.precondition, item)?;
        if item == SyncTimestamp::ZERO {
            return Err(StorageError::NotFound);
        }
        let t = write_timestamp(items.modified().max(floor))?;
        Ok((items.removed(std::slice::from_ref(&msg.id), t), t))
    })
}

/// By ids: the collection's new timestamp. Whole: the collection is gone and the reply is the
/// deletion time, which the metadata record takes as the storage timestamp.
pub(crate) fn delete_collection(
    nc: &NodeCache,
    msg: &DeleteCollection,
    floor: i64,
) -> Result<SyncTimestamp, StorageError> {
    change(nc, msg.uid, &msg.collection, |items| {
        check_precondition(msg.precondition, SyncTimestamp::from_millis(items.modified()))?;
        let t = write_timestamp(items.modified().max(floor))?;
        match &msg.ids {
            Some(ids) => Ok((items.removed(ids, t), t)),
            None => Ok((Items::empty(), t)),
        }
    })
}
