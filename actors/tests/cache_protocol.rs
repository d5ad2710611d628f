//! The cache protocol against real stores: a private memcached started by the test on a free
//! loopback port (the `memcached` binary must be installed; scripts/test installs it), and the
//! in-process store. A "database" here is a versioned map behind a lock whose reads and writes
//! take random time, so that readers, writers and the cache interleave in every order; each
//! simulated webhead has its own `Cache` over its own connections.
//!
//! The property checked is the protocol's promise: once a write was acknowledged, no read that
//! starts afterwards, through any webhead, returns an older value.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rand::Rng;
use weft_actors::cache::{
    Cache, Derived, Kind, MemcachedConfig, MemcachedRing, MemoryStore, Store, StoreError, WriteError,
};

#[path = "../../tests/common/memcached.rs"]
mod memcached;
use memcached::PrivateMemcached as Memcached;

fn ring(address: &str) -> Arc<dyn Store> {
    Arc::new(
        MemcachedRing::new(MemcachedConfig {
            servers: vec![address.to_owned()],
            timeout: Duration::from_millis(500),
            retry_interval: Duration::from_millis(200),
        })
        .unwrap(),
    )
}

/// The stand-in database: collection timestamps per user, with slow reads and writes. Writes
/// are serialised, as the collection lock serialises them in the real one, and each takes its
/// value inside that lock, so later commits carry larger values (like timestamps).
#[derive(Default)]
struct Database {
    rows: Mutex<BTreeMap<String, u64>>,
    writer: Mutex<()>,
}

/// The metadata record as the cache holds it.
type Record = BTreeMap<String, u64>;

/// The stand-in database's one failure: a write it rolled back.
#[derive(Debug)]
struct RolledBack;

impl Database {
    fn read(&self) -> Result<Record, RolledBack> {
        let snapshot = self.rows.lock().unwrap().clone();
        pause();
        Ok(snapshot)
    }

    /// Writes the value `next()` gives to `collection`; `fail` rolls it back.
    fn write(&self, collection: &str, next: impl FnOnce() -> u64, fail: bool) -> Result<u64, RolledBack> {
        let _lock = self.writer.lock().unwrap();
        pause();
        if fail {
            return Err(RolledBack);
        }
        let value = next();
        self.rows.lock().unwrap().insert(collection.to_owned(), value);
        pause();
        Ok(value)
    }
}

fn pause() {
    let micros = rand::thread_rng().gen_range(0..400);
    thread::sleep(Duration::from_micros(micros));
}

fn write(
    cache: &Cache,
    db: &Database,
    key: &str,
    collection: &str,
    next: impl FnOnce() -> u64,
    fail: bool,
) -> Result<u64, WriteError<RolledBack>> {
    let follows = Derived::follows(key.to_owned(), |mut record: Record, written: &u64| {
        record.insert(collection.to_owned(), *written);
        Some(record)
    });
    cache.write(vec![follows], || db.write(collection, next, fail))
}

fn read(cache: &Cache, db: &Database, key: &str) -> Record {
    cache.read(Kind::Metadata, key, || db.read()).unwrap()
}

#[test]
fn memcached_store_semantics() {
    let server = Memcached::start();
    let store = ring(&server.address());
    assert_eq!(store.get("t:k").unwrap(), None);
    assert!(store.add("t:k", b"one", 0).unwrap());
    assert!(!store.add("t:k", b"two", 0).unwrap());
    let first = store.get("t:k").unwrap().unwrap();
    assert_eq!(first.value, b"one");
    assert!(store.cas("t:k", b"three", 0, first.cas).unwrap());
    assert!(!store.cas("t:k", b"four", 0, first.cas).unwrap());
    store.delete("t:k").unwrap();
    assert!(!store.cas("t:k", b"five", 0, first.cas).unwrap());
    store.set("t:m", b"marker", 1).unwrap();
    thread::sleep(Duration::from_millis(2100));
    assert_eq!(store.get("t:m").unwrap(), None, "entries with a ttl expire");
}

fn protocol_basics(store: Arc<dyn Store>) {
    let db = Database::default();
    let cache = Cache::new(store.clone(), "basics");
    let key = cache.metadata_key(7);
    assert_eq!(read(&cache, &db, &key), Record::new());
    // The miss filled the cache: the next read is served without the database.
    assert!(store.get(&key).unwrap().unwrap().value.starts_with(b"V"));
    db.rows.lock().unwrap().insert("sneaked".into(), 1);
    assert_eq!(read(&cache, &db, &key), Record::new(), "served from the cache");

    // A write updates the cached record from the one it displaced.
    assert_eq!(write(&cache, &db, &key, "bookmarks", || 5, false).unwrap(), 5);
    let cached = read(&cache, &db, &key);
    assert_eq!(cached.get("bookmarks"), Some(&5));

    // A failed write leaves the previous record, not its value.
    assert!(matches!(write(&cache, &db, &key, "bookmarks", || 6, true), Err(WriteError::Database(_))));
    assert_eq!(read(&cache, &db, &key).get("bookmarks"), Some(&5));

    // A collection key is invalidated by a write and filled by the next read.
    let ckey = cache.collection_key(7, "meta");
    let items = |n: u64| -> Result<Vec<u64>, RolledBack> { Ok(vec![n]) };
    assert_eq!(cache.read(Kind::Collection, &ckey, || items(1)).unwrap(), vec![1]);
    assert_eq!(cache.read(Kind::Collection, &ckey, || items(2)).unwrap(), vec![1], "a hit");
    cache.write(vec![Derived::dropped(ckey.clone())], || Ok::<_, RolledBack>(())).unwrap();
    assert_eq!(cache.read(Kind::Collection, &ckey, || items(3)).unwrap(), vec![3]);
}

#[test]
fn protocol_basics_memcached() {
    let server = Memcached::start();
    protocol_basics(ring(&server.address()));
}

#[test]
fn protocol_basics_memory() {
    protocol_basics(Arc::new(MemoryStore::new(1 << 20)));
}

/// The collections the stress writers change.
const COLLECTIONS: [&str; 2] = ["tabs", "history"];

/// Writers and readers on several webheads: every read that starts after a write was
/// acknowledged sees that write (or a later one). Writers change one of two collections, so
/// that a cached record derived from a stale one shows as a stale value of the other.
/// Returns (reads checked, writes acknowledged).
fn no_stale_reads(
    webheads: Vec<Cache>,
    users: u64,
    duration: Duration,
    during: impl FnOnce(&AtomicBool),
) -> (u64, u64) {
    let db = Arc::new((0..users).map(|_| Database::default()).collect::<Vec<_>>());
    // Per user and collection: the highest acknowledged value.
    let acked: Arc<Vec<[AtomicU64; 2]>> =
        Arc::new((0..users).map(|_| [AtomicU64::new(0), AtomicU64::new(0)]).collect());
    let next_value = Arc::new(AtomicU64::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let writes = Arc::new(AtomicU64::new(0));
    let mut threads = vec![];
    for (i, cache) in webheads.iter().enumerate() {
        for role in 0..4 {
            let (cache, db, acked, next_value, stop, reads, writes) = (
                cache.clone(),
                db.clone(),
                acked.clone(),
                next_value.clone(),
                stop.clone(),
                reads.clone(),
                writes.clone(),
            );
            threads.push(thread::spawn(move || {
                let mut rng = rand::thread_rng();
                while !stop.load(Ordering::Relaxed) {
                    let uid = rng.gen_range(0..users);
                    let key = cache.metadata_key(uid);
                    let database = &db[uid as usize];
                    if role == 0 {
                        // Writers serialise per user, as the collection lock does in the database.
                        let fail = rng.gen_bool(0.1);
                        let next = || next_value.fetch_add(1, Ordering::SeqCst);
                        let c = rng.gen_range(0..COLLECTIONS.len());
                        match write(&cache, database, &key, COLLECTIONS[c], next, fail) {
                            Ok(v) => {
                                acked[uid as usize][c].fetch_max(v, Ordering::SeqCst);
                                writes.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(WriteError::Database(_)) => assert!(fail),
                            Err(WriteError::CacheUnavailable(err)) => {
                                panic!("webhead {i}: write refused: {err}")
                            }
                        }
                    } else {
                        let floors = acked[uid as usize].each_ref().map(|a| a.load(Ordering::SeqCst));
                        let record = read(&cache, database, &key);
                        for (collection, floor) in COLLECTIONS.iter().zip(floors) {
                            let seen = record.get(*collection).copied().unwrap_or(0);
                            assert!(
                                seen >= floor,
                                "webhead {i} read {collection} {seen} after {floor} was acknowledged"
                            );
                        }
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
    }
    let started = Instant::now();
    during(&stop);
    thread::sleep(duration.saturating_sub(started.elapsed()));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a webhead thread failed");
    }
    (reads.load(Ordering::Relaxed), writes.load(Ordering::Relaxed))
}

#[test]
fn webheads_sharing_memcached_never_read_stale() {
    let server = Memcached::start();
    let webheads = (0..3).map(|_| Cache::new(ring(&server.address()), "shared")).collect();
    let (reads, writes) = no_stale_reads(webheads, 20, Duration::from_secs(6), |_| {});
    assert!(reads > 2000 && writes > 300, "{reads} reads, {writes} writes");
}

#[test]
fn one_process_with_the_memory_store_never_reads_stale() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(1 << 20));
    let webheads = (0..3).map(|_| Cache::new(store.clone(), "local")).collect();
    let (reads, writes) = no_stale_reads(webheads, 20, Duration::from_secs(4), |_| {});
    assert!(reads > 2000 && writes > 300, "{reads} reads, {writes} writes");
}

/// A tiny memory store evicts constantly: eviction must never make a stale read possible.
#[test]
fn eviction_never_reads_stale() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(16 * 300));
    let webheads = (0..3).map(|_| Cache::new(store.clone(), "evicting")).collect();
    let (reads, writes) = no_stale_reads(webheads, 50, Duration::from_secs(3), |_| {});
    assert!(reads > 1000 && writes > 100, "{reads} reads, {writes} writes");
}

/// memcached killed and restarted twice under load: no write is refused (a stopped memcached
/// holds nothing), no read is stale, and the webheads use memcached again afterwards.
#[test]
fn memcached_killed_and_restarted_under_load() {
    let server = Arc::new(Mutex::new(Memcached::start()));
    let address = server.lock().unwrap().address();
    let stores: Vec<Arc<dyn Store>> = (0..3).map(|_| ring(&address)).collect();
    let webheads = stores.iter().map(|s| Cache::new(s.clone(), "fault")).collect();
    let bouncer = server.clone();
    let (reads, writes) = no_stale_reads(webheads, 20, Duration::from_secs(8), move |_| {
        for _ in 0..2 {
            thread::sleep(Duration::from_millis(1500));
            bouncer.lock().unwrap().kill();
            thread::sleep(Duration::from_millis(1000));
            bouncer.lock().unwrap().restart();
        }
    });
    assert!(reads > 2000 && writes > 300, "{reads} reads, {writes} writes");
    // Back in use: a fill and a hit through a fresh key.
    thread::sleep(Duration::from_millis(300));
    let cache = Cache::new(stores[0].clone(), "fault");
    let db = Database::default();
    let key = cache.metadata_key(999);
    read(&cache, &db, &key);
    read(&cache, &db, &key);
    assert!(stores[0].get(&key).unwrap().is_some_and(|v| v.value.starts_with(b"V")));
}

/// A memcached that accepts connections but never answers may still hold old entries: writes
/// are refused before the database is touched, reads go to the database.
#[test]
fn unresponsive_memcached_refuses_writes_and_reads_the_database() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let store = ring(&silent.local_addr().unwrap().to_string());
    let cache = Cache::new(store, "silent");
    let db = Database::default();
    let key = cache.metadata_key(1);
    db.rows.lock().unwrap().insert("tabs".into(), 3);
    assert_eq!(read(&cache, &db, &key).get("tabs"), Some(&3));
    match write(&cache, &db, &key, "tabs", || 4, false) {
        Err(WriteError::CacheUnavailable(StoreError::Failed { .. })) => {}
        other => panic!("expected a refused write, got {other:?}"),
    }
    assert_eq!(db.rows.lock().unwrap().get("tabs"), Some(&3), "the database was not touched");
}

/// Nothing listens: writes go on (nothing can be stale there), reads go to the database.
#[test]
fn stopped_memcached_lets_writes_through() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cache = Cache::new(ring(&format!("127.0.0.1:{port}")), "stopped");
    let db = Database::default();
    let key = cache.metadata_key(1);
    assert_eq!(write(&cache, &db, &key, "tabs", || 4, false).unwrap(), 4);
    assert_eq!(read(&cache, &db, &key).get("tabs"), Some(&4));
}
