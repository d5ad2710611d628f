//! The node's cache in front of the engine (ops-model.md §5; the consistency protocol is
//! written in `crate::cache`): what is cached, how each read is answered from it and how each
//! write changes it.
//!
//! * **Each user's metadata record** — every collection's last-modified time and the storage
//!   timestamp — answers `info/collections`, and gives every read its collection timestamp
//!   (`X-Last-Modified`) and precondition without the collection's row lock.
//! * **Write-through collections** (`cache.collections`, by default `meta`, `clients`,
//!   `crypto`: small, read by every sync) are kept whole — items with their expiry, and the
//!   collection's timestamp — and reads of them are answered in memory with the database's
//!   filters, order and paging. Every write to one places the protocol's marker over the record
//!   and, once committed, stores the record it displaced with the write applied by the same
//!   PUT-semantics rule the database write used (`apply::merge`); a failed write puts the
//!   displaced record back; a batch commit (whose staged items only the database holds) drops
//!   it, to be loaded by the next read.
//!
//! Counts and usage stay in the database: items expire without a write, so a cached count goes
//! stale by itself; only their preconditions are answered from the record.
//!
//! **Why a cached timestamp may stand beside items read afterwards.** A collection read that is
//! not answered by the timestamp alone reads its page in one statement, without the row lock,
//! after taking the collection timestamp `C` from the record. The protocol guarantees `C` is
//! not older than any write acknowledged before the read began; a write that commits between
//! the two can only add items newer than `C`. When the page holds such an item the read is run
//! again the locked way, so `X-Last-Modified` is never older than an item it is sent with, and
//! a client that resumes from it (`newer=`) misses nothing.
//!
//! With the in-process store a hit costs no blocking call and is answered on the async worker
//! before the request reaches a shard thread (`Operation::local_hit`); a memcached hit is
//! answered on the shard thread without touching the database.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use weft_schema::models::ExportedBso;
use weft_schema::queries::storage::Order;
use weft_schema::SyncTimestamp;

use crate::cache::{Cache, Derived, Kind, WriteError};
use crate::storage::apply::{merge, Stored, Touch};
use crate::storage::cache_only;
use crate::storage::collection::{LoadItems, PageAfter, Window};
use crate::storage::requests::*;
use crate::storage::rules::check_precondition;
use crate::storage::{Operation, ShedReason, Storage, StorageError};

/// Items of a write-through collection beyond which it is not kept (its reads go to the
/// database): the write-through collections are small, and a whole record is read and
/// rewritten by every access.
const MAX_CACHED_ITEMS: i64 = 1000;

/// A node's cache and what it holds (`cache.*` settings).
#[derive(Clone)]
pub struct NodeCache {
    cache: Cache,
    /// Whether each user's metadata record is cached.
    metadata: bool,
    /// The write-through collections.
    collections: BTreeSet<String>,
    /// The cache-only collections (`cache_only.rs`); they need the metadata record.
    cache_only: BTreeSet<String>,
}

impl NodeCache {
    /// The node's cache holding each user's metadata record (if `metadata`), the write-through
    /// `collections` and, when `metadata`, the `cache_only` ones.
    pub fn new(
        cache: Cache,
        metadata: bool,
        collections: impl IntoIterator<Item = String>,
        cache_only: impl IntoIterator<Item = String>,
    ) -> NodeCache {
        let cache_only = if metadata { cache_only.into_iter().collect() } else { BTreeSet::new() };
        NodeCache { cache, metadata, collections: collections.into_iter().collect(), cache_only }
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    fn writes_through(&self, collection: &str) -> bool {
        self.collections.contains(collection)
    }

    fn keeps_only(&self, collection: &str) -> bool {
        self.cache_only.contains(collection)
    }

    fn metadata_key(&self, uid: u64) -> String {
        self.cache.metadata_key(uid)
    }

    /// The user's metadata record (loaded on a miss); `None` when it is not cached.
    fn metadata(&self, storage: &Storage, uid: u64) -> Result<Option<Metadata>, StorageError> {
        if !self.metadata {
            return Ok(None);
        }
        let record = self.cache.read(Kind::Metadata, &self.metadata_key(uid), || {
            let all = GetCollections { uid, precondition: Precondition::None };
            let mut record = storage.execute(&all).map(Metadata::from_reply)?;
            // The database does not know the cache-only collections.
            for name in &self.cache_only {
                let modified = cache_only::items(self, uid, name)?.modified;
                if modified > 0 {
                    record = record.touched(name, SyncTimestamp::from_millis(modified));
                }
            }
            Ok::<_, StorageError>(record)
        })?;
        Ok(Some(record))
    }

    /// The metadata record from the in-process store, answered by `answer`.
    fn local_metadata<A>(&self, uid: u64, answer: impl FnOnce(Metadata) -> Option<A>) -> Option<A> {
        if !self.metadata {
            return None;
        }
        self.cache.local_answer(Kind::Metadata, &self.metadata_key(uid), answer)
    }

    /// A write-through or cache-only collection's record (a write-through one is loaded on a
    /// miss).
    fn items(&self, storage: &Storage, uid: u64, collection: &str) -> Result<Items, StorageError> {
        if self.keeps_only(collection) {
            return cache_only::items(self, uid, collection);
        }
        self.cache.read(Kind::Collection, &self.cache.collection_key(uid, collection), || {
            storage.execute(&LoadItems { uid, collection, max_items: MAX_CACHED_ITEMS }).map(Items::loaded)
        })
    }

    fn local_items<A>(
        &self,
        uid: u64,
        collection: &str,
        answer: impl FnOnce(Items) -> Option<A>,
    ) -> Option<A> {
        self.cache.local_answer(Kind::Collection, &self.cache.collection_key(uid, collection), answer)
    }

    /// The metadata entry a write changes, when cached.
    fn metadata_entry<'a, R>(
        &self,
        uid: u64,
        update: impl FnOnce(Metadata, &R) -> Option<Metadata> + 'a,
    ) -> Option<Derived<'a, R>> {
        self.metadata.then(|| Derived::follows(self.metadata_key(uid), update))
    }

    /// The record of `collection` a write changes, when it is a write-through collection.
    fn items_entry<'a, R>(
        &self,
        uid: u64,
        collection: &str,
        update: impl FnOnce(Items, &R) -> Option<Items> + 'a,
    ) -> Option<Derived<'a, R>> {
        self.writes_through(collection)
            .then(|| Derived::follows(self.cache.collection_key(uid, collection), update))
    }
}

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

    /// The collection's timestamp; 0 when the user has no such collection.
    fn collection(&self, name: &str) -> SyncTimestamp {
        SyncTimestamp::from_millis(self.collections.get(name).copied().unwrap_or(0))
    }

    /// After a write that left `collection` modified at `t`.
    fn touched(mut self, collection: &str, t: SyncTimestamp) -> Metadata {
        self.collections.insert(collection.to_owned(), t.as_millis());
        self.modified = self.modified.max(t.as_millis());
        self
    }
}

/// A write-through or cache-only collection as cached (ops-model.md §5.2
/// `<uid>:c:<collection>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Items {
    /// The collection's last-modified (milliseconds); 0 when the user has none.
    modified: i64,
    /// id → item (expired ones are skipped by reads and dropped by writes); `None` when the
    /// collection had more than `MAX_CACHED_ITEMS`: its reads then go to the database.
    items: Option<BTreeMap<String, Item>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Item {
    pub(crate) modified: i64,
    payload: String,
    sortindex: Option<i32>,
    /// Absolute expiry (milliseconds): the item is live while `expiry > now`.
    expiry: i64,
}

impl Items {
    pub(crate) fn empty() -> Items {
        Items { modified: 0, items: Some(BTreeMap::new()) }
    }

    /// The collection's timestamp (milliseconds).
    pub(crate) fn modified(&self) -> i64 {
        self.modified
    }

    /// The item `id` if it is live at `now`.
    pub(crate) fn live_item(&self, id: &str, now: SyncTimestamp) -> Option<&Item> {
        self.items.as_ref()?.get(id).filter(|item| item.expiry > now.as_millis())
    }

    fn loaded((modified, rows): (SyncTimestamp, Option<Vec<ExportedBso>>)) -> Items {
        let items = rows.map(|rows| {
            rows.into_iter()
                .map(|r| {
                    let item = Item {
                        modified: r.modified,
                        payload: r.payload,
                        sortindex: r.sortindex,
                        expiry: r.ttl,
                    };
                    (r.id, item)
                })
                .collect()
        });
        Items { modified: modified.as_millis(), items }
    }

    /// The reply to a collection read, as the database would give it at this instant (the
    /// filters, order and paging of `storage::find_bsos`); `None` when the items are not kept.
    fn page(&self, ctx: &Storage, msg: &GetBsos) -> Option<Result<Timestamped<BsoPage>, StorageError>> {
        let items = self.items.as_ref()?;
        let last_modified = SyncTimestamp::from_millis(self.modified);
        if let Err(err) = check_precondition(msg.precondition, last_modified) {
            return Some(Err(err));
        }
        let query = &msg.query;
        let window = Window::of(ctx, query);
        if window.limit == 0 {
            return Some(Ok(Timestamped { last_modified, value: BsoPage::default() }));
        }
        let now = SyncTimestamp::now().as_millis();
        let newer = query.newer.map(SyncTimestamp::as_millis);
        let older = query.older.map(SyncTimestamp::as_millis);
        let mut matching: Vec<(&String, &Item)> = items
            .iter()
            .filter(|(id, item)| {
                item.expiry > now
                    && (query.ids.is_empty() || query.ids.contains(*id))
                    && newer.is_none_or(|n| item.modified > n)
                    && older.is_none_or(|o| item.modified < o)
                    && window.bound.is_none_or(|b| match window.order {
                        Order::Oldest => item.modified >= b,
                        Order::Newest | Order::Index => item.modified <= b,
                    })
            })
            .collect();
        matching.sort_by(|(a_id, a), (b_id, b)| match window.order {
            Order::Newest => b.modified.cmp(&a.modified).then_with(|| b_id.cmp(a_id)),
            Order::Oldest => a.modified.cmp(&b.modified).then_with(|| a_id.cmp(b_id)),
            // sortindex descending, NULL last, then id descending.
            Order::Index => match (a.sortindex, b.sortindex) {
                (Some(x), Some(y)) => y.cmp(&x),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
            .then_with(|| b_id.cmp(a_id)),
        });
        let bsos = matching
            .into_iter()
            .skip(usize::try_from(window.skip).unwrap_or(usize::MAX))
            .take(usize::try_from(window.limit).unwrap_or(usize::MAX).saturating_add(1))
            .map(|(id, item)| Bso {
                id: id.clone(),
                modified: SyncTimestamp::from_millis(item.modified),
                payload: if query.full { item.payload.clone() } else { String::new() },
                sortindex: item.sortindex,
            })
            .collect();
        Some(Ok(Timestamped { last_modified, value: window.page(bsos) }))
    }

    /// The reply to an item read; `None` when the items are not kept.
    fn item(&self, msg: &GetBso) -> Option<Result<Bso, StorageError>> {
        self.items.as_ref()?;
        let item = self.live_item(&msg.id, SyncTimestamp::now());
        let resource = SyncTimestamp::from_millis(item.map_or(0, |item| item.modified));
        Some(check_precondition(msg.precondition, resource).and_then(|()| {
            let item = item.ok_or(StorageError::NotFound)?;
            Ok(Bso {
                id: msg.id.clone(),
                modified: resource,
                payload: item.payload.clone(),
                sortindex: item.sortindex,
            })
        }))
    }

    /// After `bsos` were written at `t` (`apply::apply_bsos`, the same rule).
    pub(crate) fn applied(mut self, bsos: &[BsoInput], t: SyncTimestamp, touch: Touch) -> Items {
        self.modified = t.as_millis();
        if let Some(items) = &mut self.items {
            items.retain(|_, item| item.expiry > t.as_millis());
            for bso in bsos {
                let stored = items.get(&bso.id);
                let merged = merge(
                    bso,
                    stored.map(|s| Stored { modified: s.modified, sortindex: s.sortindex, ttl: s.expiry }),
                    t,
                    touch,
                );
                let payload = match (merged.payload, stored) {
                    (Some(payload), _) => payload.to_owned(),
                    // `merge` keeps the payload only of a live stored item.
                    (None, stored) => stored.map(|s| s.payload.clone()).unwrap_or_default(),
                };
                let item = Item {
                    modified: merged.modified,
                    payload,
                    sortindex: merged.sortindex,
                    expiry: merged.ttl,
                };
                items.insert(bso.id.clone(), item);
            }
        }
        self
    }

    /// After the items `ids` were deleted at `t`.
    pub(crate) fn removed(mut self, ids: &[String], t: SyncTimestamp) -> Items {
        self.modified = t.as_millis();
        if let Some(items) = &mut self.items {
            for id in ids {
                items.remove(id);
            }
        }
        self
    }
}

/// A collection read answered by the collection's timestamp alone: a failed precondition, a
/// collection the user does not have, nothing newer than `newer=`, or `limit=0`.
fn by_timestamp(
    ctx: &Storage,
    last_modified: SyncTimestamp,
    msg: &GetBsos,
) -> Option<Result<Timestamped<BsoPage>, StorageError>> {
    if let Err(err) = check_precondition(msg.precondition, last_modified) {
        return Some(Err(err));
    }
    // No item is newer than its collection.
    let empty = last_modified == SyncTimestamp::ZERO
        || msg.query.newer.is_some_and(|newer| newer >= last_modified)
        || Window::of(ctx, &msg.query).limit == 0;
    empty.then(|| Ok(Timestamped { last_modified, value: BsoPage::default() }))
}

/// `GET info/collections` through the cache, on a shard thread.
pub(crate) fn get_collections(
    storage: &Storage,
    nc: &NodeCache,
    msg: &GetCollections,
) -> Result<CollectionsReply, StorageError> {
    match nc.metadata(storage, msg.uid)? {
        Some(record) => record.reply(msg.precondition),
        None => storage.execute(msg),
    }
}

/// `GET info/collections` from the in-process store, on the async worker; `None` sends the
/// request on to a shard thread.
pub(crate) fn local_get_collections(
    storage: &Storage,
    msg: &GetCollections,
) -> Option<Result<CollectionsReply, StorageError>> {
    storage.cache()?.local_metadata(msg.uid, |record| Some(record.reply(msg.precondition)))
}

/// `GET storage/{collection}` through the cache, on a shard thread.
pub(crate) fn get_bsos(
    storage: &Storage,
    nc: &NodeCache,
    msg: &GetBsos,
) -> Result<Timestamped<BsoPage>, StorageError> {
    if nc.writes_through(&msg.collection) || nc.keeps_only(&msg.collection) {
        if let Some(reply) = nc.items(storage, msg.uid, &msg.collection)?.page(storage, msg) {
            return reply;
        }
        return storage.execute(msg);
    }
    let Some(record) = nc.metadata(storage, msg.uid)? else {
        return storage.execute(msg);
    };
    let last_modified = record.collection(&msg.collection);
    if let Some(reply) = by_timestamp(storage, last_modified, msg) {
        return reply;
    }
    let page = storage.execute(&PageAfter(msg))?;
    if page.items.iter().any(|bso| bso.modified > last_modified) {
        // A write committed after the timestamp was read (module comment).
        return storage.execute(msg);
    }
    Ok(Timestamped { last_modified, value: page })
}

pub(crate) fn local_get_bsos(
    storage: &Storage,
    msg: &GetBsos,
) -> Option<Result<Timestamped<BsoPage>, StorageError>> {
    let nc = storage.cache()?;
    if nc.writes_through(&msg.collection) || nc.keeps_only(&msg.collection) {
        return nc.local_items(msg.uid, &msg.collection, |items| items.page(storage, msg));
    }
    nc.local_metadata(msg.uid, |record| by_timestamp(storage, record.collection(&msg.collection), msg))
}

/// `GET storage/{collection}/{id}` through the cache, on a shard thread: from a write-through
/// collection's record, or 404 at once for a collection the user does not have.
pub(crate) fn get_bso(storage: &Storage, nc: &NodeCache, msg: &GetBso) -> Result<Bso, StorageError> {
    if nc.writes_through(&msg.collection) || nc.keeps_only(&msg.collection) {
        if let Some(reply) = nc.items(storage, msg.uid, &msg.collection)?.item(msg) {
            return reply;
        }
    } else if let Some(record) = nc.metadata(storage, msg.uid)? {
        if record.collection(&msg.collection) == SyncTimestamp::ZERO {
            return missing_item(msg);
        }
    }
    storage.execute(msg)
}

pub(crate) fn local_get_bso(storage: &Storage, msg: &GetBso) -> Option<Result<Bso, StorageError>> {
    let nc = storage.cache()?;
    if nc.writes_through(&msg.collection) || nc.keeps_only(&msg.collection) {
        return nc.local_items(msg.uid, &msg.collection, |items| items.item(msg));
    }
    nc.local_metadata(msg.uid, |record| {
        (record.collection(&msg.collection) == SyncTimestamp::ZERO).then(|| missing_item(msg))
    })
}

fn missing_item(msg: &GetBso) -> Result<Bso, StorageError> {
    check_precondition(msg.precondition, SyncTimestamp::ZERO)?;
    Err(StorageError::NotFound)
}

/// `info/quota`, `info/collection_usage`, `info/collection_counts`: a failed precondition on the
/// storage timestamp is answered from the record; the figures come from the database.
pub(crate) fn storage_read<Q: Operation>(
    storage: &Storage,
    nc: &NodeCache,
    op: &Q,
    uid: u64,
    precondition: Precondition,
) -> Result<Q::Output, StorageError> {
    if precondition != Precondition::None {
        if let Some(record) = nc.metadata(storage, uid)? {
            check_precondition(precondition, SyncTimestamp::from_millis(record.modified))?;
        }
    }
    storage.execute(op)
}

pub(crate) fn get_quota(
    storage: &Storage,
    nc: &NodeCache,
    msg: &GetQuota,
) -> Result<Timestamped<u64>, StorageError> {
    storage_read(storage, nc, msg, msg.uid, msg.precondition)
}

pub(crate) fn get_collection_usage(
    storage: &Storage,
    nc: &NodeCache,
    msg: &GetCollectionUsage,
) -> Result<Timestamped<BTreeMap<String, u64>>, StorageError> {
    storage_read(storage, nc, msg, msg.uid, msg.precondition)
}

pub(crate) fn get_collection_counts(
    storage: &Storage,
    nc: &NodeCache,
    msg: &GetCollectionCounts,
) -> Result<Timestamped<BTreeMap<String, u64>>, StorageError> {
    storage_read(storage, nc, msg, msg.uid, msg.precondition)
}

/// Runs a write under the protocol over the cached `entries` it changes: on the database, or
/// on the cache alone (`keep`) for a cache-only collection. A cache-only write is given the
/// user's storage timestamp from the metadata record, which its timestamp must pass as a
/// database write's passes the user's timestamps (`rules::lock_user`). It is read before the
/// write marks the record: a cache-only write takes no lock on the user, so two writes of one
/// user to two cache-only collections at the same instant can still share a tick.
fn write<'a, Q: Operation>(
    storage: &Storage,
    nc: &NodeCache,
    op: &Q,
    uid: u64,
    collection: &str,
    entries: impl IntoIterator<Item = Option<Derived<'a, Q::Output>>>,
    keep: impl FnOnce(i64) -> Result<Q::Output, StorageError>,
) -> Result<Q::Output, StorageError> {
    let floor = match nc.keeps_only(collection) {
        true => nc.metadata(storage, uid)?.map_or(0, |record| record.modified),
        false => 0,
    };
    let entries = entries.into_iter().flatten().collect();
    let run = || if nc.keeps_only(collection) { keep(floor) } else { storage.execute(op) };
    nc.cache.write(entries, run).map_err(unavailable)
}

fn unavailable(err: WriteError<StorageError>) -> StorageError {
    match err {
        WriteError::Database(err) => err,
        WriteError::CacheUnavailable(_) => StorageError::Overloaded(ShedReason::CacheUnavailable),
    }
}

pub(crate) fn put_bso(storage: &Storage, nc: &NodeCache, msg: &PutBso) -> Result<PutResult, StorageError> {
    let entries = [
        nc.metadata_entry(msg.uid, |m: Metadata, out: &PutResult| {
            Some(m.touched(&msg.collection, out.modified))
        }),
        nc.items_entry(msg.uid, &msg.collection, |items: Items, out: &PutResult| {
            Some(items.applied(std::slice::from_ref(&msg.bso), out.modified, Touch::Changed))
        }),
    ];
    write(storage, nc, msg, msg.uid, &msg.collection, entries, |floor| cache_only::put_bso(nc, msg, floor))
}

pub(crate) fn post_bsos(
    storage: &Storage,
    nc: &NodeCache,
    msg: &PostBsos,
) -> Result<PostResult, StorageError> {
    let entries = [
        nc.metadata_entry(msg.uid, |m: Metadata, out: &PostResult| match out.outcome {
            PostOutcome::Committed { modified } => Some(m.touched(&msg.collection, modified)),
            // Staging changes nothing a reader of the record sees.
            PostOutcome::Staged { .. } => Some(m),
        }),
        nc.items_entry(msg.uid, &msg.collection, |items: Items, out: &PostResult| {
            match (&out.outcome, &msg.batch) {
                (PostOutcome::Staged { .. }, _) => Some(items),
                // The staged items are only in the database: the next read loads them.
                (PostOutcome::Committed { .. }, Some(BatchMode::Append(_))) => None,
                (PostOutcome::Committed { modified }, _) => {
                    Some(items.applied(&msg.bsos, *modified, Touch::Changed))
                }
            }
        }),
    ];
    write(storage, nc, msg, msg.uid, &msg.collection, entries, |floor| cache_only::post_bsos(nc, msg, floor))
}

pub(crate) fn delete_bso(
    storage: &Storage,
    nc: &NodeCache,
    msg: &DeleteBso,
) -> Result<SyncTimestamp, StorageError> {
    let entries = [
        nc.metadata_entry(msg.uid, |m: Metadata, t: &SyncTimestamp| Some(m.touched(&msg.collection, *t))),
        nc.items_entry(msg.uid, &msg.collection, |items: Items, t: &SyncTimestamp| {
            Some(items.removed(std::slice::from_ref(&msg.id), *t))
        }),
    ];
    write(storage, nc, msg, msg.uid, &msg.collection, entries, |floor| cache_only::delete_bso(nc, msg, floor))
}

pub(crate) fn delete_collection(
    storage: &Storage,
    nc: &NodeCache,
    msg: &DeleteCollection,
) -> Result<SyncTimestamp, StorageError> {
    let entries = [
        nc.metadata_entry(msg.uid, |mut m: Metadata, t: &SyncTimestamp| match msg.ids {
            // By ids: the collection's new timestamp.
            Some(_) => Some(m.touched(&msg.collection, *t)),
            // Whole collection: gone from the list; the reply is the storage timestamp (the
            // deletion time: later than every collection's).
            None => {
                m.collections.remove(&msg.collection);
                m.modified = m.modified.max(t.as_millis());
                Some(m)
            }
        }),
        nc.items_entry(msg.uid, &msg.collection, |items: Items, t: &SyncTimestamp| match &msg.ids {
            Some(ids) => Some(items.removed(ids, *t)),
            None => Some(Items::empty()),
        }),
    ];
    write(storage, nc, msg, msg.uid, &msg.collection, entries, |floor| {
        cache_only::delete_collection(nc, msg, floor)
    })
}

pub(crate) fn delete_storage(
    storage: &Storage,
    nc: &NodeCache,
    msg: &DeleteStorage,
) -> Result<SyncTimestamp, StorageError> {
    // Nothing is left; the next reads load the empty records (a cache-only collection's is
    // simply gone).
    let metadata = nc.metadata_entry(msg.uid, |_: Metadata, _: &SyncTimestamp| None);
    let collections = nc
        .collections
        .iter()
        .chain(&nc.cache_only)
        .map(|name| Some(Derived::dropped(nc.cache.collection_key(msg.uid, name))));
    let entries: Vec<_> = std::iter::once(metadata).chain(collections).collect();
    nc.cache.write(entries.into_iter().flatten().collect(), || storage.execute(msg)).map_err(unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_follows_writes() {
        let m = Metadata { modified: 2000, collections: BTreeMap::from([("tabs".into(), 2000)]) };
        let m = m.touched("bookmarks", SyncTimestamp::from_millis(3000));
        assert_eq!(m.modified, 3000);
        assert_eq!(m.collections.get("bookmarks"), Some(&3000));
        let reply = m.clone().reply(Precondition::IfModifiedSince(SyncTimestamp::from_millis(3000)));
        assert!(matches!(reply, Err(StorageError::NotModified(_))));
        let reply = m.reply(Precondition::None).unwrap();
        assert_eq!(reply.last_modified, SyncTimestamp::from_millis(3000));
        assert_eq!(reply.value.len(), 2);
    }

    #[test]
    fn items_follow_put_semantics() {
        let t1 = SyncTimestamp::now();
        let t2 = SyncTimestamp::from_millis(t1.as_millis() + 10);
        let put = |id: &str, payload: Option<&str>, sortindex: Option<i32>, ttl: Option<u32>| BsoInput {
            id: id.into(),
            payload: payload.map(str::to_owned),
            sortindex,
            ttl,
        };
        let items = Items::empty().applied(
            &[put("a", Some("one"), Some(5), None), put("b", Some("two"), None, Some(0))],
            t1,
            Touch::Changed,
        );
        // A ttl-only update keeps payload, sortindex and modified; "b" expired at once.
        let items = items.applied(&[put("a", None, None, Some(60))], t2, Touch::Changed);
        assert_eq!(items.modified, t2.as_millis());
        let kept = items.items.as_ref().unwrap();
        let a = &kept["a"];
        assert_eq!((a.payload.as_str(), a.sortindex, a.modified), ("one", Some(5), t1.as_millis()));
        assert_eq!(a.expiry, t2.as_millis() + 60_000);
        assert!(!kept.contains_key("b"), "expired items are dropped by writes");
        let items = items.removed(&["a".to_string()], t2);
        assert!(items.items.unwrap().is_empty());
    }
}
