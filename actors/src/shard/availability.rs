//! Whether a db node is reachable, as its shard sees it: a circuit breaker per db node, shared
//! by every node name the db node serves. Without it, each request to a dead db node would hold
//! a shard thread for the whole pool timeout (or, on a server that hangs, until the request
//! deadline), and requests would queue behind those threads until the queue bound sheds them.
//!
//! After `FAILURE_THRESHOLD` consecutive requests found the database unreachable (no connection
//! in time, a lost connection, the request deadline passed), the circuit opens: requests are
//! answered `DbNodeDown` at once, without a thread or a connection. Every `PROBE_INTERVAL` one
//! request (or a heartbeat's check) goes through as a probe; its success closes the circuit, its
//! failure keeps it open for another interval. Any answer from the database counts as a success
//! (a 404 is the database working). Nothing here knows actix: the shard handle asks `admit`
//! before sending and reports how the request ended.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Consecutive failures that open the circuit. More than one, so that a single pool timeout
/// under a burst of load does not turn every user of the db node away; few enough that a dead
/// db node costs only a handful of slow requests.
const FAILURE_THRESHOLD: u32 = 3;

/// How long an open circuit answers at once before letting one probe through.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// How a request to the db node ended, as far as reachability goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The database answered (whatever it answered).
    Reached,
    /// No connection came, the connection broke, or the deadline passed.
    Unreachable,
    /// Says nothing about the database (refused before reaching it, the cache failed, the
    /// caller went away).
    Unknown,
}

/// Whether a request may go to the db node now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// The circuit is closed.
    Yes,
    /// The circuit is open and this request is the one probe of this interval.
    Probe,
    /// The circuit is open: answer at once.
    No,
}

#[derive(Debug, Default)]
struct State {
    consecutive_failures: u32,
    /// While the circuit is open: when the next probe may go.
    open_until: Option<Instant>,
    /// A probe is in flight; the others are refused until it reports.
    probing: bool,
}

/// One db node's circuit.
#[derive(Debug)]
pub struct Availability {
    /// The db node's name, for the log and the `db_node` label.
    db_node: String,
    /// Held only for a few comparisons, never across a request.
    state: Mutex<State>,
}

impl Availability {
    pub fn new(db_node: &str) -> Availability {
        let availability = Availability { db_node: db_node.to_string(), state: Mutex::default() };
        availability.publish(true);
        availability
    }

    pub fn db_node(&self) -> &str {
        &self.db_node
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few plain fields updated together: a panic cannot leave them torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a request may be sent now.
    pub fn admit(&self, now: Instant) -> Admit {
        let mut state = self.state();
        match state.open_until {
            None => Admit::Yes,
            Some(until) if now >= until && !state.probing => {
                state.probing = true;
                Admit::Probe
            }
            Some(_) => Admit::No,
        }
    }

    /// Records how a request ended; `probe` says whether it was the probe `admit` let through.
    pub fn record(&self, outcome: Outcome, probe: bool, now: Instant) {
        let mut state = self.state();
        if probe {
            state.probing = false;
        }
        match outcome {
            Outcome::Reached => {
                state.consecutive_failures = 0;
                if state.open_until.take().is_some() {
                    tracing::warn!(db_node = %self.db_node, "db node reachable again: requests go through");
                    self.publish(true);
                }
            }
            Outcome::Unreachable => {
                state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                let was_open = state.open_until.is_some();
                if was_open || state.consecutive_failures >= FAILURE_THRESHOLD {
                    state.open_until = Some(now + PROBE_INTERVAL);
                }
                if !was_open && state.open_until.is_some() {
                    tracing::error!(
                        db_node = %self.db_node,
                        "db node unreachable ({} requests in a row): its requests get 503 at once, \
                         one probe every {PROBE_INTERVAL:?}",
                        state.consecutive_failures
                    );
                    self.publish(false);
                }
            }
            Outcome::Unknown => {}
        }
    }

    /// Whether the circuit is closed (requests go to the database).
    pub fn is_available(&self) -> bool {
        self.state().open_until.is_none()
    }

    fn publish(&self, available: bool) {
        metrics::gauge!("weft_db_node_available", "db_node" => self.db_node.clone())
            .set(f64::from(u8::from(available)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_only() {
        let a = Availability::new("db");
        let t = Instant::now();
        a.record(Outcome::Unreachable, false, t);
        a.record(Outcome::Unreachable, false, t);
        a.record(Outcome::Reached, false, t);
        a.record(Outcome::Unreachable, false, t);
        a.record(Outcome::Unknown, false, t);
        a.record(Outcome::Unreachable, false, t);
        assert_eq!(a.admit(t), Admit::Yes, "a success in between resets the count");
        a.record(Outcome::Unreachable, false, t);
        assert!(!a.is_available());
        assert_eq!(a.admit(t), Admit::No);
    }

    #[test]
    fn one_probe_per_interval_closes_or_reopens() {
        let a = Availability::new("db");
        let t = Instant::now();
        for _ in 0..FAILURE_THRESHOLD {
            a.record(Outcome::Unreachable, false, t);
        }
        let later = t + PROBE_INTERVAL;
        assert_eq!(a.admit(later), Admit::Probe);
        assert_eq!(a.admit(later), Admit::No, "one probe at a time");
        a.record(Outcome::Unreachable, true, later);
        assert_eq!(a.admit(later), Admit::No, "a failed probe reopens for an interval");
        let again = later + PROBE_INTERVAL;
        assert_eq!(a.admit(again), Admit::Probe);
        a.record(Outcome::Unknown, true, again);
        assert_eq!(a.admit(again), Admit::Probe, "a probe that said nothing frees the slot");
        a.record(Outcome::Reached, true, again);
        assert!(a.is_available());
        assert_eq!(a.admit(again), Admit::Yes);
    }
}
