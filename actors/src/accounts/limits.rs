//! The in-memory guards of local-accounts.md §6, each a capped `BoundedMap`: fixed-window rate
//! limits (per client address, per session, per account and address for wrong passwords) and
//! the Hawk nonces of the replay window. Per process: a restart forgets them, which only ever
//! lets a client through sooner (the stored data never depends on them). docs/accounts.md
//! lists the threat each answers and its numbers.

use std::time::{Duration, Instant};

use super::bounded_map::BoundedMap;

/// Entries each map keeps at most (see docs/accounts.md for what a full map means).
pub const MAX_ENTRIES: usize = 100_000;

/// At most `limit` events per key in each window of `window`; beyond that, how long to wait.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    /// key → (start of its window, events in it).
    counts: BoundedMap<String, (Instant, u32)>,
}

impl RateLimiter {
    pub fn new(name: &'static str, limit: u32, window: Duration) -> RateLimiter {
        RateLimiter { limit, window, counts: BoundedMap::new(name, MAX_ENTRIES) }
    }

    fn expired(&self, now: Instant) -> impl Fn(&(Instant, u32)) -> bool + '_ {
        move |(start, _)| now.duration_since(*start) >= self.window
    }

    fn wait(&self, start: Instant, now: Instant) -> u64 {
        self.window.saturating_sub(now.duration_since(start)).as_secs().max(1)
    }

    /// Counts one event for `key`: `Err(seconds to wait)` when it is over the limit.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        self.counts.update(
            key.to_string(),
            self.expired(now),
            || (now, 0),
            |(start, count)| {
                *count = count.saturating_add(1);
                if *count > self.limit {
                    return Err(self.wait(*start, now));
                }
                Ok(())
            },
        )
    }

    /// Whether `key` has used up its window, without counting: `Err(seconds to wait)` if so.
    pub fn exhausted(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let over = self.counts.peek(&key.to_string(), self.expired(now), |(start, count)| {
            (*count >= self.limit).then(|| self.wait(*start, now))
        });
        match over.flatten() {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts one event for `key` without refusing it (a failure already answered).
    pub fn record(&self, key: &str) {
        let now = Instant::now();
        self.counts.update(
            key.to_string(),
            self.expired(now),
            || (now, 0),
            |(_, count)| {
                *count = count.saturating_add(1);
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.counts.len()
    }
}

/// Hawk nonces of requests whose MAC verified, per token id, each kept until its timestamp
/// leaves the accepted window (so a replay is refused for as long as its `ts` would pass).
pub struct NonceCache {
    /// Seconds a `ts` may be away from the server clock.
    window: u64,
    seen: BoundedMap<String, Instant>,
}

impl NonceCache {
    pub fn new(window_seconds: u64) -> NonceCache {
        NonceCache { window: window_seconds, seen: BoundedMap::new("hawk_nonces", MAX_ENTRIES) }
    }

    /// Remembers `(token_id, nonce)` of a request signed at `ts` (seconds, already within the
    /// window of `now`); false when it was seen before and could still be replayed.
    pub fn first_use(&self, token_id: &str, nonce: &str, ts: i64, now: i64) -> bool {
        let at = Instant::now();
        // `ts` passes while |ts - now| <= window; one second more covers the rounding of `now`.
        let left = u64::try_from(ts + self.window as i64 + 1 - now).unwrap_or(0);
        let until = at + Duration::from_secs(left);
        let created = std::cell::Cell::new(false);
        self.seen.update(
            format!("{token_id}:{nonce}"),
            |until| *until <= at,
            || {
                created.set(true);
                until
            },
            |_| created.get(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_per_key() {
        let limiter = RateLimiter::new("test", 2, Duration::from_secs(60));
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").unwrap_err() >= 1);
        assert!(limiter.check("b").is_ok());
    }

    #[test]
    fn failures_are_counted_apart_from_the_check() {
        let limiter = RateLimiter::new("test", 2, Duration::from_secs(60));
        assert!(limiter.exhausted("k").is_ok());
        assert_eq!(limiter.len(), 0, "looking creates nothing");
        limiter.record("k");
        assert!(limiter.exhausted("k").is_ok());
        limiter.record("k");
        assert!(limiter.exhausted("k").unwrap_err() >= 1);
        assert!(limiter.exhausted("other").is_ok());
    }

    #[test]
    fn nonces_are_kept_while_their_timestamp_passes() {
        let nonces = NonceCache::new(60);
        assert!(nonces.first_use("t", "n", 1000, 1000));
        assert!(!nonces.first_use("t", "n", 1000, 1000));
        assert!(nonces.first_use("u", "n", 1000, 1000));
        // Signed at the far edge of the window: the replay is still refused.
        assert!(nonces.first_use("t", "edge", 1060, 1000));
        assert!(!nonces.first_use("t", "edge", 1060, 1060));
    }
}
