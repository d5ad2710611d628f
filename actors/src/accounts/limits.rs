//! The in-memory guards of local-accounts.md §6: fixed-window rate limits per client address
//! and per email, the Hawk nonce memory of the replay window, and the bound on concurrent
//! password stretches. Per process: a restart forgets them, which only ever lets a client
//! through sooner (the stored data never depends on them).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most `limit` events per key in each window of `window`; beyond that, how long to wait.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    counts: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Keys kept before expired windows are swept, bounding the memory an attacker can fill.
const MAX_KEYS: usize = 100_000;

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> RateLimiter {
        RateLimiter { limit, window, counts: Mutex::default() }
    }

    /// Counts one event for `key`: `Err(seconds to wait)` when over the limit.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() >= MAX_KEYS {
            counts.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = counts.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > self.limit {
            let left = self.window.saturating_sub(now.duration_since(entry.0));
            return Err(left.as_secs().max(1));
        }
        Ok(())
    }
}

/// Hawk nonces seen within the replay window, per token id.
pub struct NonceCache {
    window: Duration,
    seen: Mutex<HashMap<(String, String), Instant>>,
}

impl NonceCache {
    pub fn new(window: Duration) -> NonceCache {
        NonceCache { window, seen: Mutex::default() }
    }

    /// Remembers `(token_id, nonce)`; false when it was already seen within the window.
    pub fn first_use(&self, token_id: &str, nonce: &str) -> bool {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_KEYS {
            seen.retain(|_, at| now.duration_since(*at) < self.window * 2);
        }
        match seen.insert((token_id.to_string(), nonce.to_string()), now) {
            Some(at) => now.duration_since(at) >= self.window * 2,
            None => true,
        }
    }
}

/// A counting bound without waiting: `try_acquire` fails when `max` permits are out.
pub struct Bound {
    max: usize,
    used: AtomicUsize,
}

pub struct Permit<'a>(&'a Bound);

impl Bound {
    pub fn new(max: usize) -> Bound {
        Bound { max, used: AtomicUsize::new(0) }
    }

    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        let previous = self.used.fetch_add(1, Ordering::SeqCst);
        if previous >= self.max {
            self.used.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Permit(self))
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_per_key() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").unwrap_err() >= 1);
        assert!(limiter.check("b").is_ok());
    }

    #[test]
    fn nonces_and_bound() {
        let nonces = NonceCache::new(Duration::from_secs(60));
        assert!(nonces.first_use("t", "n"));
        assert!(!nonces.first_use("t", "n"));
        assert!(nonces.first_use("u", "n"));
        let bound = Bound::new(1);
        let permit = bound.try_acquire();
        assert!(permit.is_some());
        assert!(bound.try_acquire().is_none());
        drop(permit);
        assert!(bound.try_acquire().is_some());
    }
}
