//! What a run measures: per request kind a latency histogram (microseconds, HdrHistogram),
//! status counts, error messages with their counts, and records written and read. Every task
//! keeps its own `Stats` (no lock on the hot path); they are merged when the phase ends.
//! With `--tokenserver`, also the 401s and held 503s and which node served each user when.
//! Also the run budget (`Budget`) every task draws its requests from.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Distinct error messages kept; beyond that they are counted under one line, so a run that
/// fails everything cannot grow without bound.
const MAX_ERROR_KINDS: usize = 64;
const OTHER_ERRORS: &str = "(other errors)";
/// Latencies above a minute are clamped (requests time out before that).
const MAX_LATENCY_US: u64 = 60_000_000;

#[derive(Debug)]
pub struct KindStats {
    hist: Histogram<u64>,
    errors: u64,
}

impl KindStats {
    fn new() -> KindStats {
        // Three significant digits over 1 µs..60 s: bounds are constants, so this cannot fail.
        let hist = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds");
        KindStats { hist, errors: 0 }
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    pub kinds: BTreeMap<&'static str, KindStats>,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: BTreeMap<String, u64>,
    pub requests: u64,
    pub records_written: u64,
    pub records_read: u64,
    /// `--tokenserver`: 401s, each followed by a new token.
    pub unauthorized: u64,
    /// `--tokenserver`: 503s with `Retry-After`, and the users who got them.
    pub held: u64,
    pub held_users: BTreeSet<u64>,
    /// `--tokenserver`: per uid, each node that answered it below 400, with the first and
    /// last time it did.
    pub nodes: HashMap<u64, Vec<Served>>,
}

/// When one node answered one user.
#[derive(Debug, Clone)]
pub struct Served {
    pub origin: String,
    pub first: Instant,
    pub last: Instant,
}

impl Stats {
    /// One answered request (any status) or one raw operation.
    pub fn record(&mut self, kind: &'static str, latency: Duration, status: Option<u16>) {
        let entry = self.kinds.entry(kind).or_insert_with(KindStats::new);
        let us = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        // `saturating_record` clamps instead of failing on out-of-range values.
        entry.hist.saturating_record(us);
        self.requests += 1;
        if let Some(status) = status {
            *self.statuses.entry(status).or_default() += 1;
        }
    }

    /// Counts an error against `kind`; `message` says what happened, without per-request data
    /// so that equal failures add up.
    pub fn error(&mut self, kind: &'static str, message: String) {
        self.kinds.entry(kind).or_insert_with(KindStats::new).errors += 1;
        let key = format!("{kind}: {message}");
        if self.errors.contains_key(&key) || self.errors.len() < MAX_ERROR_KINDS {
            *self.errors.entry(key).or_default() += 1;
        } else {
            *self.errors.entry(OTHER_ERRORS.to_string()).or_default() += 1;
        }
    }

    /// A 503 with `Retry-After` to user `uid`.
    pub fn held(&mut self, uid: Option<u64>) {
        self.held += 1;
        self.held_users.extend(uid);
    }

    /// `origin` answered user `uid` (below 400) to a request sent at `at`.
    pub fn served(&mut self, uid: u64, origin: &str, at: Instant) {
        let nodes = self.nodes.entry(uid).or_default();
        match nodes.iter_mut().find(|n| n.origin == origin) {
            Some(n) => {
                n.first = n.first.min(at);
                n.last = n.last.max(at);
            }
            None => nodes.push(Served { origin: origin.to_string(), first: at, last: at }),
        }
    }

    /// Users answered by more than one node during the run.
    pub fn users_on_two_nodes(&self) -> usize {
        self.nodes.values().filter(|n| n.len() > 1).count()
    }

    /// Users one node answered after another had already answered them and before that other
    /// answered them for the last time: served by two nodes at once.
    pub fn users_served_twice_at_once(&self) -> usize {
        self.nodes
            .values()
            .filter(|nodes| {
                nodes
                    .iter()
                    .enumerate()
                    .any(|(i, a)| nodes.iter().skip(i + 1).any(|b| a.first < b.last && b.first < a.last))
            })
            .count()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn server_errors(&self) -> u64 {
        self.statuses.iter().filter(|(s, _)| **s >= 500).map(|(_, n)| n).sum()
    }

    pub fn merge(&mut self, other: Stats) {
        for (kind, k) in other.kinds {
            let mine = self.kinds.entry(kind).or_insert_with(KindStats::new);
            // Same bounds on both sides, so adding cannot fail; clamp defensively anyway.
            if mine.hist.add(&k.hist).is_err() {
                for v in k.hist.iter_recorded() {
                    mine.hist.saturating_record_n(v.value_iterated_to(), v.count_at_value());
                }
            }
            mine.errors += k.errors;
        }
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        for (message, n) in other.errors {
            if self.errors.contains_key(&message) || self.errors.len() < MAX_ERROR_KINDS {
                *self.errors.entry(message).or_default() += n;
            } else {
                *self.errors.entry(OTHER_ERRORS.to_string()).or_default() += n;
            }
        }
        self.requests += other.requests;
        self.records_written += other.records_written;
        self.records_read += other.records_read;
        self.unauthorized += other.unauthorized;
        self.held += other.held;
        self.held_users.extend(other.held_users);
        for (uid, nodes) in other.nodes {
            for n in nodes {
                self.served(uid, &n.origin, n.first);
                self.served(uid, &n.origin, n.last);
            }
        }
    }

    /// Latency percentiles per kind, in milliseconds.
    pub fn latency_json(&self) -> Value {
        let kinds: serde_json::Map<String, Value> = self
            .kinds
            .iter()
            .map(|(kind, k)| {
                let ms = |q: f64| k.hist.value_at_quantile(q) as f64 / 1000.0;
                (
                    kind.to_string(),
                    json!({
                        "count": k.hist.len(),
                        "errors": k.errors,
                        "p50_ms": ms(0.50),
                        "p90_ms": ms(0.90),
                        "p99_ms": ms(0.99),
                        "max_ms": k.hist.max() as f64 / 1000.0,
                    }),
                )
            })
            .collect();
        Value::Object(kinds)
    }

    pub fn statuses_json(&self) -> Value {
        Value::Object(self.statuses.iter().map(|(s, n)| (s.to_string(), json!(n))).collect())
    }

    pub fn errors_json(&self) -> Value {
        Value::Object(self.errors.iter().map(|(m, n)| (m.clone(), json!(n))).collect())
    }

    /// Lines of the human summary's latency table.
    pub fn latency_lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "  {:<40} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9}",
            "kind", "count", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms"
        )];
        for (kind, k) in &self.kinds {
            let ms = |v: u64| v as f64 / 1000.0;
            lines.push(format!(
                "  {:<40} {:>9} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                kind,
                k.hist.len(),
                k.errors,
                ms(k.hist.value_at_quantile(0.50)),
                ms(k.hist.value_at_quantile(0.90)),
                ms(k.hist.value_at_quantile(0.99)),
                ms(k.hist.max()),
            ));
        }
        lines
    }
}

/// The shared bound of a phase: a deadline, a request count, or neither (setup and verify
/// phases, which are bounded by the work they have to do).
#[derive(Debug)]
pub struct Budget {
    deadline: Option<Instant>,
    max_requests: Option<u64>,
    issued: AtomicU64,
    stopped: AtomicBool,
}

impl Budget {
    pub fn new(duration: Option<Duration>, max_requests: Option<u64>) -> Budget {
        Budget {
            deadline: duration.map(|d| Instant::now() + d),
            max_requests,
            issued: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        }
    }

    pub fn unbounded() -> Budget {
        Budget::new(None, None)
    }

    /// Takes one request from the budget; `false` once the phase is over.
    pub fn take(&self) -> bool {
        if self.stopped.load(Ordering::Relaxed) {
            return false;
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.stopped.store(true, Ordering::Relaxed);
            return false;
        }
        let n = self.issued.fetch_add(1, Ordering::Relaxed) + 1;
        if self.max_requests.is_some_and(|max| n > max) {
            self.stopped.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    pub fn is_open(&self) -> bool {
        let before_deadline = match self.deadline {
            Some(d) => Instant::now() < d,
            None => true,
        };
        !self.stopped.load(Ordering::Relaxed) && before_deadline
    }

    /// Requests handed out so far (for the progress bar).
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed).min(self.max_requests.unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_stops_at_the_request_bound() {
        let b = Budget::new(None, Some(3));
        assert!(b.take() && b.take() && b.take());
        assert!(!b.take());
        assert!(!b.is_open());
        assert_eq!(b.issued(), 3);
    }

    #[test]
    fn a_user_served_by_two_nodes_in_turn_is_not_served_at_once() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let (mut a, mut b) = (Stats::default(), Stats::default());
        // User 1 moves: node 1 until 10 ms, node 2 from 20 ms (seen by two tasks).
        a.served(1, "http://n1", at(0));
        b.served(1, "http://n1", at(10));
        a.served(1, "http://n2", at(20));
        b.served(1, "http://n2", at(30));
        // User 2 is answered by node 1 again after node 2 had answered it.
        a.served(2, "http://n1", at(0));
        a.served(2, "http://n2", at(5));
        b.served(2, "http://n1", at(8));
        a.served(3, "http://n1", at(1));
        a.merge(b);
        assert_eq!(a.users_on_two_nodes(), 2);
        assert_eq!(a.users_served_twice_at_once(), 1);
    }

    #[test]
    fn merge_adds_up_and_bounds_error_kinds() {
        let mut a = Stats::default();
        a.record("get", Duration::from_millis(2), Some(200));
        let mut b = Stats::default();
        b.record("get", Duration::from_millis(4), Some(503));
        for i in 0..(MAX_ERROR_KINDS + 10) {
            b.error("get", format!("e{i}"));
        }
        a.merge(b);
        assert_eq!(a.requests, 2);
        assert_eq!(a.server_errors(), 1);
        assert_eq!(a.error_count(), (MAX_ERROR_KINDS + 10) as u64);
        assert!(a.errors.len() <= MAX_ERROR_KINDS + 1);
        assert_eq!(a.kinds["get"].hist.len(), 2);
    }
}
