//! Weft's shared cache (not an actor; used by the storage engine): per-user metadata and small, hot collections kept
//! in memcached (shared by every webhead; `memcached.rs`, keys spread over a ring of servers) or
//! in a bounded in-process store (`memory.rs`, the embedded default for a single process), and
//! the protocol below, which keeps every cached value consistent with the database across
//! webheads. It knows nothing about SQL, actors or HTTP: callers hand it closures that read or
//! write the database, and run it on threads that may block (the shard's), never on the async
//! workers.
//!
//! # The consistency protocol
//!
//! Guarantees, for any number of webheads sharing one database and one cache:
//! 1. once any webhead has acknowledged a write, no webhead serves the value it replaced;
//! 2. a database write that fails or rolls back never leaves the cache claiming it;
//! 3. a cache that fails, is slow, restarts or is gone makes reads go to the database, never to
//!    an answer older than an acknowledged write.
//!
//! An entry is either a **value** (what the database held, current unless a write is in flight)
//! or a **marker**: "ask the database". A marker carries a random token identifying the one
//! operation that placed it, and whether a writer or a reader placed it. Markers expire after
//! `MARKER_TTL_SECONDS`, so that one left by a crashed process stops hiding the value.
//!
//! **Reading** `k`: a value is served (a hit). Anything else is a miss answered from the
//! database, and a reader fills the cache only over a marker *of its own*: on an absent key it
//! `add`s a reader marker, reads it back to learn its CAS version, loads from the database, and
//! `cas`es the loaded value over its marker. The `cas` fails if anything touched the key after
//! the marker was placed, in particular a writer's marker (below) or an eviction. A reader
//! never fills over another operation's marker or over nothing: so a load that started before
//! a write committed can never be stored after that write began (the writer's marker always
//! lands between the two, or the reader's marker was gone before its `cas`).
//!
//! **Writing** (any database write touching keys `k…`): before the database is touched, the
//! writer replaces each key with its own writer marker (`set`; for an entry whose next value
//! it can derive, `cas` over the clean value it read, so it knows exactly which value its
//! marker replaced). Then it writes the database. Then, for each key: if the key still holds
//! *its* marker, it replaces it (`cas`) with the value that follows (the value it replaced,
//! updated with the write's result, or that value unchanged after a failed write), or deletes
//! it when it cannot know that value (a batch commit, or a replaced entry that was itself a
//! marker); anything else it finds (a value or a reader's marker filled after its own marker
//! vanished, or *another writer's* marker) it deletes, because it may predate its commit. Only
//! then is the write acknowledged.
//!
//! Another writer's marker is deleted too, not left to that writer: if W's marker was evicted
//! during W's write, a reader may have filled the key from before W's commit, and a second
//! writer W2 may then have marked it with `cas` over that stale value; left alone, W2 would
//! restore it (W2's write failed) or derive its next value from it after W had acknowledged,
//! and every webhead would serve a record without W's write (seen with a small in-process
//! store that evicts constantly). Deleting W2's marker costs W2 only its derived value: its
//! own finish then finds its marker gone and deletes whatever a reader put there meanwhile.
//!
//! Why (1) holds: a value is put into the cache only by `cas` over a marker its author placed
//! before reading what it stores (a reader before its load, a writer before its commit, with
//! the value it displaced). If that read predates writer W's commit, the marker was there
//! before W's commit and, to be replaced afterwards, was still there when W settled the key;
//! W then deleted it. If it was replaced before W settled, W deleted the value. Why (2):
//! nothing but a marker is put into the cache before the database commits, and after a
//! failure the writer restores the value it displaced or deletes the key.
//!
//! **Failures.** A read that fails is a miss served from the database, without filling. A
//! writer that cannot place a marker distinguishes two cases (`StoreError`): the server is
//! *down* (connection refused: no memcached process, so no entries to be stale; a restarted
//! memcached is empty), and then the write goes on, deletes the key after its commit (the
//! server may have come back meanwhile and a reader filled it from before the commit), and the
//! ring deletes it again when the server is back; or the call *failed* otherwise (timeout, broken connection), and the server
//! may still hold the old value that other webheads read: the write is then refused before it
//! reaches the database ([`WriteError::CacheUnavailable`], which the caller answers with 503 +
//! Retry-After), because a stale read for everyone is worse than one retried write. After the
//! database write, a failing finish leaves the writer's own marker in place, which is safe.
//!
//! The one case the protocol cannot cover: a writer's marker vanishes while its write is in
//! flight (memcached evicted a seconds-old entry, or restarted), a reader fills in between from
//! the database before the commit, *and* the writer's final delete then fails. The writer logs
//! it; the stale entry lives until the next write of that key.
//!
//! What is cached is the storage engine's business (`storage/cache.rs`): each user's
//! metadata record (collection timestamps) and the write-through collections' items. Counts
//! and usage are not cached: items expire (TTL) without any write, so a cached count would go
//! stale by itself. Values above `MAX_VALUE_BYTES` are not cached.

pub mod memcached;
pub mod memory;
mod ring;
pub mod store;

use std::sync::Arc;

use rand::RngCore;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use self::memcached::{MemcachedConfig, MemcachedRing};
pub use self::memory::MemoryStore;
pub use self::store::{Store, StoreError, Versioned};

/// Lifetime of a marker: longer than any database write may take (connection wait, retries),
/// short enough that a crashed writer's key is cached again soon.
pub const MARKER_TTL_SECONDS: u32 = 300;

/// What is cached, the `kind` label of the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A user's metadata record: collection timestamps.
    Metadata,
    /// A write-through collection's items.
    Collection,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Metadata => "metadata",
            Kind::Collection => "collection",
        }
    }
}

/// A write that did not happen, or failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError<E> {
    /// The database write itself failed (and was rolled back); the cache was restored.
    #[error(transparent)]
    Database(E),
    /// A marker could not be placed and the server may still hold the old value: the database
    /// was not touched.
    #[error("cache unavailable: {0}")]
    CacheUnavailable(StoreError),
}

/// A cached value a write changes: its key and, when the value that follows the write can be
/// derived from the one it displaced, how (`None` from the closure: it cannot, and the entry
/// is removed; the next read loads it).
pub struct Derived<'a, R> {
    key: String,
    update: Option<DeriveFn<'a, R>>,
}

/// From the displaced value's JSON and the write's result to the next value's stored form.
type DeriveFn<'a, R> = Box<dyn FnOnce(&[u8], &R) -> Option<Vec<u8>> + 'a>;

impl<'a, R> Derived<'a, R> {
    /// An entry that follows the write: `update(displaced, result)` is its next value.
    pub fn follows<T>(key: String, update: impl FnOnce(T, &R) -> Option<T> + 'a) -> Derived<'a, R>
    where
        T: Serialize + DeserializeOwned,
    {
        let update =
            move |json: &[u8], result: &R| encode(&update(serde_json::from_slice(json).ok()?, result)?);
        Derived { key, update: Some(Box::new(update)) }
    }

    /// An entry the write only invalidates: removed after it, loaded again by the next read.
    pub fn dropped(key: String) -> Derived<'a, R> {
        Derived { key, update: None }
    }
}

/// The cache as the storage layer sees it: a store and the key prefix.
#[derive(Clone)]
pub struct Cache {
    store: Arc<dyn Store>,
    prefix: String,
}

/// First byte of every stored entry.
const VALUE: u8 = b'V';
const WRITER_MARKER: u8 = b'W';
const READER_MARKER: u8 = b'R';

/// Stored form of a marker: its tag and the operation's token.
fn marker(tag: u8) -> Vec<u8> {
    let mut token = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut token);
    let mut bytes = Vec::with_capacity(33);
    bytes.push(tag);
    bytes.extend(token.iter().map(|b| format!("{b:02x}")).collect::<String>().bytes());
    bytes
}

/// The largest value stored: half of memcached's default item size (1 MiB), so that a value
/// and its key always fit; a bigger one is simply not cached (its reads go to the database).
pub const MAX_VALUE_BYTES: usize = 512 * 1024;

fn encode<T: Serialize>(value: &T) -> Option<Vec<u8>> {
    let mut bytes = vec![VALUE];
    serde_json::to_writer(&mut bytes, value).ok()?;
    (bytes.len() <= MAX_VALUE_BYTES).then_some(bytes)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    match bytes.split_first() {
        Some((&VALUE, json)) => serde_json::from_slice(json).ok(),
        _ => None,
    }
}

impl Cache {
    /// `prefix` starts every key, so that several deployments (or nodes) can share memcached.
    pub fn new(store: Arc<dyn Store>, prefix: &str) -> Cache {
        Cache { store, prefix: prefix.to_owned() }
    }

    /// The cache of one db node: `prefix`, then a tag of the node's canonical URL, since a uid
    /// names a user only within one node's database. The tag is the same on every webhead.
    pub fn for_node(store: Arc<dyn Store>, prefix: &str, node: &str) -> Cache {
        Cache::new(store, &format!("{prefix}:{:08x}", ring::hash(node.as_bytes()) >> 32))
    }

    /// `memcached` or `memory`.
    pub fn store_name(&self) -> &'static str {
        self.store.name()
    }

    /// The key of a user's metadata record (ops-model.md §5.2: `<uid>:metadata`).
    pub fn metadata_key(&self, uid: u64) -> String {
        format!("{}:{uid}:metadata", self.prefix)
    }

    /// The key of a cached collection (§5.2: `<uid>:c:<collection>`).
    pub fn collection_key(&self, uid: u64, collection: &str) -> String {
        format!("{}:{uid}:c:{collection}", self.prefix)
    }

    fn count(&self, kind: Kind, outcome: &'static str) {
        metrics::counter!(
            "weft_cache_requests_total",
            "cache" => self.store.name(),
            "kind" => kind.label(),
            "outcome" => outcome
        )
        .increment(1);
    }

    /// Zero for every series, so that dashboards and rates see them from the start.
    pub fn register_metrics(&self) {
        for kind in [Kind::Metadata, Kind::Collection] {
            for outcome in ["hit", "miss", "error"] {
                metrics::counter!(
                    "weft_cache_requests_total",
                    "cache" => self.store.name(),
                    "kind" => kind.label(),
                    "outcome" => outcome
                )
                .absolute(0);
            }
        }
        for outcome in ["marked", "down", "refused", "unsettled"] {
            metrics::counter!("weft_cache_writes_total", "cache" => self.store.name(), "outcome" => outcome)
                .absolute(0);
        }
    }

    /// A hit answered without blocking, for callers on async workers: only a store inside this
    /// process is asked (a memcached call would block the worker), and `answer` says whether
    /// the cached value answers the request. Neither a miss nor an unanswered value is counted
    /// (the caller then goes through `read` on a thread that may block).
    pub fn local_answer<T, A>(&self, kind: Kind, key: &str, answer: impl FnOnce(T) -> Option<A>) -> Option<A>
    where
        T: DeserializeOwned,
    {
        if !self.store.is_local() {
            return None;
        }
        let answered = answer(decode(&self.store.get(key).ok()??.value)?)?;
        self.count(kind, "hit");
        Some(answered)
    }

    /// A value kept only in the cache, with the version `put_kept` needs; `None` when absent
    /// (or hidden by a writer's marker). No database stands behind it, so a store that is down
    /// (and so holds nothing) reads as absent.
    pub fn get_kept<T: DeserializeOwned>(
        &self,
        kind: Kind,
        key: &str,
    ) -> Result<Option<(T, u64)>, StoreError> {
        let found = match self.store.get(key) {
            Ok(found) => found,
            Err(StoreError::Down { .. }) => None,
            Err(err) => {
                self.count(kind, "error");
                return Err(err);
            }
        };
        let value = found.and_then(|f| Some((decode(&f.value)?, f.cas)));
        self.count(kind, if value.is_some() { "hit" } else { "miss" });
        Ok(value)
    }

    /// Stores a kept value if the key still has `version` (`None`: if it is still absent);
    /// `Ok(false)` when another write came first, or the value is over `MAX_VALUE_BYTES`.
    pub fn put_kept<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        version: Option<u64>,
    ) -> Result<bool, StoreError> {
        let Some(bytes) = encode(value) else {
            return Ok(false);
        };
        match version {
            Some(cas) => self.store.cas(key, &bytes, 0, cas),
            None => self.store.add(key, &bytes, 0),
        }
    }

    /// The read protocol: the cached value of `key`, or `load()` from the database (then
    /// stored if this reader may fill it).
    pub fn read<T, E>(&self, kind: Kind, key: &str, load: impl FnOnce() -> Result<T, E>) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
    {
        match self.store.get(key) {
            Ok(Some(found)) => {
                if let Some(value) = decode(&found.value) {
                    self.count(kind, "hit");
                    return Ok(value);
                }
                // Someone else's marker (or an entry this version cannot read): leave it.
                self.count(kind, "miss");
                load()
            }
            Ok(None) => {
                self.count(kind, "miss");
                self.fill(key, load)
            }
            Err(err) => {
                tracing::debug!(%err, "cache read failed; reading the database");
                self.count(kind, "error");
                load()
            }
        }
    }

    /// Places a reader marker on the absent `key`, loads, and stores the loaded value over the
    /// marker if nothing touched the key meanwhile.
    fn fill<T, E>(&self, key: &str, load: impl FnOnce() -> Result<T, E>) -> Result<T, E>
    where
        T: Serialize,
    {
        let mine = marker(READER_MARKER);
        let version = match self.store.add(key, &mine, MARKER_TTL_SECONDS) {
            Ok(true) => match self.store.get(key) {
                Ok(Some(found)) if found.value == mine => Some(found.cas),
                _ => None,
            },
            _ => None,
        };
        let value = load()?;
        if let (Some(cas), Some(bytes)) = (version, encode(&value)) {
            // Losing the race (a writer's marker, an eviction) is fine: the next read fills.
            let _ = self.store.cas(key, &bytes, 0, cas);
        }
        Ok(value)
    }

    /// The write protocol around one database write: `entries` are the cached values the write
    /// changes, each replaced after a successful write by what its `Derived` derives from the
    /// value it displaced (or removed when that cannot be known), and restored after a failed
    /// one.
    pub fn write<R, E>(
        &self,
        entries: Vec<Derived<'_, R>>,
        write: impl FnOnce() -> Result<R, E>,
    ) -> Result<R, WriteError<E>> {
        let mine = marker(WRITER_MARKER);
        // Each marked entry with the clean value its marker displaced, if any.
        let mut marked: Vec<(Derived<'_, R>, Option<Vec<u8>>)> = Vec::with_capacity(entries.len());
        // Keys on a server that is down: nothing to mark there now, but it may come back
        // during the write and be filled from the database by a reader that loads before the
        // commit; removing the key after the commit voids any such fill.
        let mut unmarked: Vec<String> = vec![];
        for entry in entries {
            match self.mark(&entry, &mine) {
                Ok(displaced) => marked.push((entry, displaced)),
                Err(StoreError::Down { .. }) => unmarked.push(entry.key),
                Err(err) => return Err(self.refuse(err)),
            }
        }
        if !unmarked.is_empty() {
            self.count_write("down");
        }
        if !marked.is_empty() {
            self.count_write("marked");
        }
        let result = write();
        for (entry, displaced) in marked {
            let next = displaced.and_then(|bytes| match &result {
                Ok(r) => entry.update.and_then(|update| update(&bytes[1..], r)),
                // The database is as it was: so is the entry.
                Err(_) => Some(bytes),
            });
            self.finish(&entry.key, &mine, next);
        }
        for key in unmarked {
            match self.store.delete(&key) {
                // Still down: the ring owes the key and removes it when the server is back.
                Ok(()) | Err(StoreError::Down { .. }) => {}
                Err(err) => self.unsettled(&err),
            }
        }
        result.map_err(WriteError::Database)
    }

    /// Puts the writer marker on the entry's key; returns the clean value it displaced, if the
    /// entry can follow the write, the key held a value and nothing changed it between the read
    /// and the marker.
    fn mark<R>(&self, entry: &Derived<'_, R>, mine: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if entry.update.is_some() {
            if let Some(found) = self.store.get(&entry.key)? {
                if found.value.first() == Some(&VALUE)
                    && self.store.cas(&entry.key, mine, MARKER_TTL_SECONDS, found.cas)?
                {
                    return Ok(Some(found.value));
                }
            }
        }
        self.store.set(&entry.key, mine, MARKER_TTL_SECONDS)?;
        Ok(None)
    }

    /// After the database write: replaces this writer's marker with `next` (or removes it), and
    /// removes whatever replaced the marker after it vanished.
    fn finish(&self, key: &str, mine: &[u8], next: Option<Vec<u8>>) {
        let outcome = match self.store.get(key) {
            Ok(None) => Ok(()),
            Ok(Some(found)) if found.value == mine => match next {
                Some(bytes) => match self.store.cas(key, &bytes, 0, found.cas) {
                    Ok(true) => Ok(()),
                    _ => self.store.delete(key),
                },
                None => self.store.delete(key),
            },
            // Another writer's marker, a value or a reader's marker: may predate the commit.
            Ok(Some(_)) => self.store.delete(key),
            Err(err) => Err(err),
        };
        if let Err(err) = outcome {
            // Usually this writer's own marker is still there, which is safe; see the module
            // comment for the one case where it is not.
            self.unsettled(&err);
        }
    }

    /// Not logged per request (the ring logs the server's loss once); counted.
    fn unsettled(&self, err: &StoreError) {
        tracing::debug!(%err, "cache entry could not be settled after a write");
        self.count_write("unsettled");
    }

    fn refuse<E>(&self, err: StoreError) -> WriteError<E> {
        self.count_write("refused");
        tracing::debug!(%err, "write refused: the cache may hold entries it cannot invalidate");
        WriteError::CacheUnavailable(err)
    }

    fn count_write(&self, outcome: &'static str) {
        metrics::counter!("weft_cache_writes_total", "cache" => self.store.name(), "outcome" => outcome)
            .increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_never_share_keys() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(1024));
        let one = Cache::for_node(store.clone(), "weft", "https://sync-1.example.com");
        let two = Cache::for_node(store.clone(), "weft", "https://sync-2.example.com");
        assert_ne!(one.metadata_key(7), two.metadata_key(7));
        assert_eq!(
            one.metadata_key(7),
            Cache::for_node(store, "weft", "https://sync-1.example.com").metadata_key(7)
        );
        assert!(one.metadata_key(7).starts_with("weft:") && one.metadata_key(7).ends_with(":7:metadata"));
    }
}
