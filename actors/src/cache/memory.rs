//! The embedded default: a bounded in-process store with memcached's `add`/`cas`/`set`
//! semantics, so that a single Weft process gets the cache without running memcached. It is
//! private to the process: with several webheads on one database, each would keep entries the
//! others' writes never invalidate, so it must not be used there (README, and a warning at
//! start when the configuration shows other webheads may exist).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::cache::store::{Store, StoreError, Versioned};

/// Independent locks, so that shard threads working for different users rarely wait on each
/// other; a key always lives in the same shard.
const SHARDS: usize = 16;

/// Per-entry overhead counted against the budget besides key and value (map slot, lengths,
/// version): keeps a flood of tiny entries from exceeding the budget by much.
const ENTRY_OVERHEAD: usize = 64;

pub struct MemoryStore {
    shards: Vec<Mutex<Shard>>,
    /// Budget of each shard, in bytes.
    shard_budget: usize,
    /// Source of versions; never reused, so a stale `cas` can never match a new entry.
    next_cas: AtomicU64,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<String, Entry>,
    bytes: usize,
}

struct Entry {
    stored: Versioned,
    expires: Option<Instant>,
}

impl Shard {
    /// The live entry of `key`: an expired one is removed on the way, as memcached does lazily.
    fn live(&mut self, key: &str) -> Option<&Versioned> {
        let expired = self.entries.get(key)?.expires.is_some_and(|at| at <= Instant::now());
        if expired {
            self.remove(key);
            return None;
        }
        self.entries.get(key).map(|e| &e.stored)
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.bytes -= entry_size(key, &old.stored.value);
        }
    }
}

impl MemoryStore {
    /// A store holding at most about `max_bytes` of keys and values.
    pub fn new(max_bytes: usize) -> MemoryStore {
        MemoryStore {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_budget: (max_bytes / SHARDS).max(1),
            next_cas: AtomicU64::new(1),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let index = crate::cache::ring::hash(key.as_bytes()) as usize % SHARDS;
        // Nothing panics while a shard is locked; a poisoned shard is still consistent.
        self.shards[index].lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn store(&self, shard: &mut Shard, key: &str, value: &[u8], ttl: u32) {
        let cas = self.next_cas.fetch_add(1, Ordering::Relaxed);
        let size = entry_size(key, value);
        let expires = (ttl > 0).then(|| Instant::now() + Duration::from_secs(u64::from(ttl)));
        let entry = Entry { stored: Versioned { value: value.to_vec(), cas }, expires };
        if let Some(old) = shard.entries.insert(key.to_owned(), entry) {
            shard.bytes -= entry_size(key, &old.stored.value);
        }
        shard.bytes += size;
        if shard.bytes > self.shard_budget {
            evict(shard, key, self.shard_budget);
        }
    }
}

fn entry_size(key: &str, value: &[u8]) -> usize {
    key.len() + value.len() + ENTRY_OVERHEAD
}

/// Drops entries other than `keep` until the shard is back under 3/4 of its budget. Which ones
/// does not matter for correctness (the protocol treats a vanished entry as a miss), and an
/// arbitrary order costs no bookkeeping on the hit path; the slack means eviction runs once per
/// many inserts, not on each.
fn evict(shard: &mut Shard, keep: &str, budget: usize) {
    let target = budget / 4 * 3;
    let victims: Vec<String> = shard
        .entries
        .iter()
        .filter(|(k, _)| k.as_str() != keep)
        .scan(shard.bytes, |bytes, (k, v)| {
            (*bytes > target).then(|| {
                *bytes -= entry_size(k, &v.stored.value);
                k.clone()
            })
        })
        .collect();
    for key in victims {
        shard.remove(&key);
    }
}

impl Store for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn is_local(&self) -> bool {
        true
    }

    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        Ok(self.shard(key).live(key).cloned())
    }

    fn add(&self, key: &str, value: &[u8], ttl: u32) -> Result<bool, StoreError> {
        let mut shard = self.shard(key);
        if shard.live(key).is_some() {
            return Ok(false);
        }
        self.store(&mut shard, key, value, ttl);
        Ok(true)
    }

    fn cas(&self, key: &str, value: &[u8], ttl: u32, cas: u64) -> Result<bool, StoreError> {
        let mut shard = self.shard(key);
        if shard.live(key).map(|v| v.cas) != Some(cas) {
            return Ok(false);
        }
        self.store(&mut shard, key, value, ttl);
        Ok(true)
    }

    fn set(&self, key: &str, value: &[u8], ttl: u32) -> Result<(), StoreError> {
        let mut shard = self.shard(key);
        self.store(&mut shard, key, value, ttl);
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.shard(key).remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memcached_semantics() {
        let store = MemoryStore::new(1 << 20);
        assert_eq!(store.get("k").unwrap(), None);
        assert!(store.add("k", b"one", 0).unwrap());
        assert!(!store.add("k", b"two", 0).unwrap(), "add never replaces");
        let first = store.get("k").unwrap().unwrap();
        assert_eq!(first.value, b"one");
        assert!(store.cas("k", b"three", 0, first.cas).unwrap());
        assert!(!store.cas("k", b"four", 0, first.cas).unwrap(), "a used version never matches again");
        assert_eq!(store.get("k").unwrap().unwrap().value, b"three");
        store.delete("k").unwrap();
        assert!(!store.cas("k", b"five", 0, first.cas).unwrap(), "cas on a removed key fails");
        store.set("k", b"six", 0).unwrap();
        assert_ne!(store.get("k").unwrap().unwrap().cas, first.cas);
    }

    #[test]
    fn stays_within_budget() {
        let budget = 64 * 1024;
        let store = MemoryStore::new(budget);
        let value = vec![7u8; 900];
        for i in 0..10_000 {
            store.set(&format!("user{i}:metadata"), &value, 0).unwrap();
        }
        let held: usize = store
            .shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap();
                let counted: usize = s.entries.iter().map(|(k, e)| entry_size(k, &e.stored.value)).sum();
                assert_eq!(counted, s.bytes, "the running total matches the entries");
                s.bytes
            })
            .sum();
        assert!(held <= budget, "{held} bytes held for a budget of {budget}");
        assert!(held > budget / 2, "eviction keeps most of the budget in use ({held})");
        // The entry just written is never the one evicted.
        assert_eq!(store.get("user9999:metadata").unwrap().unwrap().value, value);
    }

    #[test]
    fn entries_expire() {
        let store = MemoryStore::new(1 << 20);
        store.set("marker", b"W1", 1).unwrap();
        store.set("value", b"V1", 0).unwrap();
        let marker = store.get("marker").unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(store.get("marker").unwrap(), None);
        assert!(!store.cas("marker", b"V2", 0, marker.cas).unwrap(), "an expired entry cannot be replaced");
        assert!(store.add("marker", b"R1", 0).unwrap(), "an expired entry counts as absent");
        assert_eq!(store.get("value").unwrap().unwrap().value, b"V1");
    }
}
