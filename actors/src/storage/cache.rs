//! The node's cache in front of the engine (ops-model.md §5; the consistency protocol is
//! written in the weft-cache crate). Each user's metadata record — every collection's
//! last-modified time and the storage timestamp, what `info/collections` and its
//! preconditions need — is read through the cache, and every write goes through the protocol's
//! markers and leaves the record it displaced updated with its own timestamp, so that no
//! webhead serves a record older than an acknowledged write. Counts, usage and items are read
//! from the database (weft-cache explains why).
//!
//! With the in-process store, a hit costs no blocking call and is answered on the async worker
//! before the request reaches a shard thread (`Operation::local_hit`); a memcached hit is
//! answered on the shard thread without touching the database.

use std::collections::BTreeMap;

use crate::cache::{Cache, Kind, WriteError};
use serde::{Deserialize, Serialize};
use weft_schema::SyncTimestamp;

use crate::storage::requests::*;
use crate::storage::rules::check_precondition;
use crate::storage::{Operation, ShedReason, Storage, StorageError};

/// A user's metadata as cached: the `info/collections` reply without its precondition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Metadata {
    /// The storage timestamp (milliseconds): the newest collection row, tombstone included.
    modified: i64,
    /// Collection name → last-modified (milliseconds).
    collections: BTreeMap<String, i64>,
}

type CollectionsReply = Timestamped<BTreeMap<String, SyncTimestamp>>;

impl Metadata {
    fn from_reply(reply: CollectionsReply) -> Metadata {
        Metadata {
            modified: reply.last_modified.as_millis(),
            collections: reply.value.into_iter().map(|(name, ts)| (name, ts.as_millis())).collect(),
        }
    }

    /// The reply to `GET info/collections` with `precondition`.
    fn reply(self, precondition: Precondition) -> Result<CollectionsReply, StorageError> {
        let last_modified = SyncTimestamp::from_millis(self.modified);
        check_precondition(precondition, last_modified)?;
        let value =
            self.collections.into_iter().map(|(name, ms)| (name, SyncTimestamp::from_millis(ms))).collect();
        Ok(Timestamped { last_modified, value })
    }

    /// After a write that left `collection` modified at `t`.
    fn touched(mut self, collection: &str, t: SyncTimestamp) -> Option<Metadata> {
        self.collections.insert(collection.to_owned(), t.as_millis());
        self.modified = self.modified.max(t.as_millis());
        Some(self)
    }
}

fn metadata_key(cache: &Cache, uid: u64) -> String {
    cache.metadata_key(uid)
}

/// `GET info/collections` through the cache, on a shard thread.
pub(crate) fn get_collections(
    storage: &Storage,
    cache: &Cache,
    msg: &GetCollections,
) -> Result<CollectionsReply, StorageError> {
    let record = cache.read(Kind::Metadata, &metadata_key(cache, msg.uid), || {
        let all = GetCollections { uid: msg.uid, precondition: Precondition::None };
        storage.execute(&all).map(Metadata::from_reply)
    })?;
    record.reply(msg.precondition)
}

/// `GET info/collections` from the in-process store, on the async worker; `None` sends the
/// request on to a shard thread.
pub(crate) fn local_get_collections(
    storage: &Storage,
    msg: &GetCollections,
) -> Option<Result<CollectionsReply, StorageError>> {
    let cache = storage.cache()?;
    let record: Metadata = cache.local_hit(Kind::Metadata, &metadata_key(cache, msg.uid))?;
    Some(record.reply(msg.precondition))
}

/// Runs a write under the protocol; `update` derives the next metadata record from the one it
/// displaced (`None` drops it: the next read loads it).
fn write<Q: Operation>(
    storage: &Storage,
    cache: &Cache,
    op: &Q,
    uid: u64,
    update: impl FnOnce(Metadata, &Q::Output) -> Option<Metadata>,
) -> Result<Q::Output, StorageError> {
    cache.write(Some(&metadata_key(cache, uid)), &[], || storage.execute(op), update).map_err(|err| match err
    {
        WriteError::Database(err) => err,
        WriteError::CacheUnavailable(_) => StorageError::Overloaded(ShedReason::CacheUnavailable),
    })
}

pub(crate) fn put_bso(storage: &Storage, cache: &Cache, msg: &PutBso) -> Result<PutResult, StorageError> {
    write(storage, cache, msg, msg.uid, |m, out| m.touched(&msg.collection, out.modified))
}

pub(crate) fn post_bsos(
    storage: &Storage,
    cache: &Cache,
    msg: &PostBsos,
) -> Result<PostResult, StorageError> {
    write(storage, cache, msg, msg.uid, |m, out| match out.outcome {
        PostOutcome::Committed { modified } => m.touched(&msg.collection, modified),
        // Staging changes nothing a reader of the record sees.
        PostOutcome::Staged { .. } => Some(m),
    })
}

pub(crate) fn delete_bso(
    storage: &Storage,
    cache: &Cache,
    msg: &DeleteBso,
) -> Result<SyncTimestamp, StorageError> {
    write(storage, cache, msg, msg.uid, |m, t| m.touched(&msg.collection, *t))
}

pub(crate) fn delete_collection(
    storage: &Storage,
    cache: &Cache,
    msg: &DeleteCollection,
) -> Result<SyncTimestamp, StorageError> {
    write(storage, cache, msg, msg.uid, |mut m, t| match msg.ids {
        // By ids: the collection's new timestamp.
        Some(_) => m.touched(&msg.collection, *t),
        // Whole collection: gone from the list; the reply is the storage timestamp.
        None => {
            m.collections.remove(&msg.collection);
            m.modified = t.as_millis();
            Some(m)
        }
    })
}

pub(crate) fn delete_storage(
    storage: &Storage,
    cache: &Cache,
    msg: &DeleteStorage,
) -> Result<SyncTimestamp, StorageError> {
    // Nothing is left; the next read loads the empty record.
    write(storage, cache, msg, msg.uid, |_, _| None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_follows_writes() {
        let m = Metadata { modified: 2000, collections: BTreeMap::from([("tabs".into(), 2000)]) };
        let m = m.touched("bookmarks", SyncTimestamp::from_millis(3000)).unwrap();
        assert_eq!(m.modified, 3000);
        assert_eq!(m.collections.get("bookmarks"), Some(&3000));
        let reply = m.clone().reply(Precondition::IfModifiedSince(SyncTimestamp::from_millis(3000)));
        assert!(matches!(reply, Err(StorageError::NotModified(_))));
        let reply = m.reply(Precondition::None).unwrap();
        assert_eq!(reply.last_modified, SyncTimestamp::from_millis(3000));
        assert_eq!(reply.value.len(), 2);
    }
}
