//! `BoundedMap`: the one shape of every in-memory map of local accounts (the rate-limit counters
//! and the Hawk nonces). Keys come from clients, so no map may grow with them: each holds at
//! most `capacity` entries; expired entries at the old end are dropped as new ones come, and when
//! the map is still full the least recently used entry is evicted and counted in
//! `weft_accounts_map_evictions_total{map}` (an operator seeing it grow is under a flood, or
//! has more live clients than the capacity). `weft_accounts_map_entries{map}` is the size.

use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

pub struct BoundedMap<K: Hash + Eq, V> {
    name: &'static str,
    entries: Mutex<LruCache<K, V>>,
}

impl<K: Hash + Eq, V> BoundedMap<K, V> {
    pub fn new(name: &'static str, capacity: usize) -> BoundedMap<K, V> {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        // The map's series exist from the start, at 0: an alert on their rate sees a flat line
        // rather than no series until the first flood.
        metrics::counter!("weft_accounts_map_evictions_total", "map" => name).increment(0);
        metrics::gauge!("weft_accounts_map_entries", "map" => name).set(0.0);
        BoundedMap { name, entries: Mutex::new(LruCache::new(capacity)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<K, V>> {
        // A panic elsewhere cannot leave a counter half-written: the map stays usable.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the entry of `key`, made by `new` when absent (or expired). `expired` says
    /// which entries are dead: those at the least-recently-used end go first, for free.
    pub fn update<R>(
        &self,
        key: K,
        expired: impl Fn(&V) -> bool,
        new: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> R {
        let mut entries = self.lock();
        while entries.peek_lru().is_some_and(|(_, v)| expired(v)) {
            entries.pop_lru();
        }
        if entries.peek(&key).is_some_and(&expired) {
            entries.pop(&key);
        }
        if !entries.contains(&key) && entries.len() == entries.cap().get() {
            metrics::counter!("weft_accounts_map_evictions_total", "map" => self.name).increment(1);
        }
        let value = entries.get_or_insert_mut(key, new);
        let answer = f(value);
        metrics::gauge!("weft_accounts_map_entries", "map" => self.name).set(entries.len() as f64);
        answer
    }

    /// What `f` says of the live entry of `key`, without creating or promoting one.
    pub fn peek<R>(&self, key: &K, expired: impl Fn(&V) -> bool, f: impl FnOnce(&V) -> R) -> Option<R> {
        self.lock().peek(key).filter(|v| !expired(v)).map(f)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::BoundedMap;

    #[test]
    fn the_oldest_entry_goes_when_full() {
        let map = BoundedMap::new("test", 2);
        let never = |_: &u32| false;
        map.update("a", never, || 1, |_| ());
        map.update("b", never, || 1, |_| ());
        map.update("a", never, || 1, |v| *v += 1);
        map.update("c", never, || 1, |_| ());
        assert_eq!(map.len(), 2);
        assert_eq!(map.peek(&"a", never, |v| *v), Some(2), "a was used after b");
        assert_eq!(map.peek(&"b", never, |v| *v), None, "b was the least recently used");
    }

    #[test]
    fn expired_entries_are_dropped_and_replaced() {
        let map = BoundedMap::new("test", 10);
        let dead = |v: &u32| *v >= 100;
        map.update("old", dead, || 100, |_| ());
        map.update("new", dead, || 1, |_| ());
        assert_eq!(map.len(), 1, "the expired entry at the old end went");
        assert_eq!(map.peek(&"old", dead, |v| *v), None);
        map.update("x", |v: &u32| *v == 5, || 5, |_| ());
        assert_eq!(map.update("x", |v: &u32| *v == 5, || 7, |v| *v), 7, "an expired entry is made anew");
    }
}
