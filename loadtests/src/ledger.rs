//! The record of acknowledged writes that `--verify` checks: for every (uid, collection, id)
//! the server said it stored, the write timestamp and a fingerprint of the payload. Kept only
//! when verifying. `check` compares it with what a read-back found.

use std::collections::HashMap;

use crate::payload::digest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Acked {
    modified_ms: i64,
    digest: u64,
}

/// Acknowledged writes, grouped per (uid, collection).
#[derive(Debug, Default)]
pub struct Ledger {
    collections: HashMap<(u64, &'static str), HashMap<String, Acked>>,
}

/// What the read-back of one collection found, as (id, modified ms, payload).
pub type StoredRows = Vec<(String, i64, String)>;

#[derive(Debug, Default, Clone, Copy)]
pub struct VerifyOutcome {
    /// Acknowledged items checked.
    pub checked: u64,
    /// Acknowledged items absent from the read-back: lost writes.
    pub missing: u64,
    /// Present, but with another payload at a timestamp not later than the acknowledged
    /// write: a lost or corrupted write.
    pub mismatched: u64,
    /// Present with a later timestamp and another payload: overwritten by a writer outside this
    /// run (not a failure, reported for the record).
    pub overwritten_later: u64,
}

impl VerifyOutcome {
    pub fn lost(&self) -> u64 {
        self.missing + self.mismatched
    }

    pub fn add(&mut self, other: VerifyOutcome) {
        self.checked += other.checked;
        self.missing += other.missing;
        self.mismatched += other.mismatched;
        self.overwritten_later += other.overwritten_later;
    }
}

impl Ledger {
    /// Records an acknowledged write; a later acknowledgement of the same id replaces an
    /// earlier one (the server keeps the write with the later timestamp).
    pub fn ack(&mut self, uid: u64, collection: &'static str, id: &str, modified_ms: i64, payload: &str) {
        let acked = Acked { modified_ms, digest: digest(payload) };
        let items = self.collections.entry((uid, collection)).or_default();
        match items.get_mut(id) {
            Some(prev) if prev.modified_ms > modified_ms => {}
            Some(prev) => *prev = acked,
            None => {
                items.insert(id.to_string(), acked);
            }
        }
    }

    pub fn merge(&mut self, other: Ledger) {
        for ((uid, collection), items) in other.collections {
            for (id, acked) in items {
                let mine = self.collections.entry((uid, collection)).or_default();
                match mine.get(&id) {
                    Some(prev) if prev.modified_ms > acked.modified_ms => {}
                    _ => {
                        mine.insert(id, acked);
                    }
                }
            }
        }
    }

    pub fn collections(&self) -> Vec<(u64, &'static str)> {
        let mut keys: Vec<_> = self.collections.keys().copied().collect();
        keys.sort_unstable();
        keys
    }

    /// Compares one collection's acknowledged items with the rows read back.
    pub fn check(&self, uid: u64, collection: &'static str, stored: &StoredRows) -> VerifyOutcome {
        let mut out = VerifyOutcome::default();
        let Some(items) = self.collections.get(&(uid, collection)) else {
            return out;
        };
        let found: HashMap<&str, (i64, &str)> = stored
            .iter()
            .map(|(id, modified, payload)| (id.as_str(), (*modified, payload.as_str())))
            .collect();
        for (id, acked) in items {
            out.checked += 1;
            match found.get(id.as_str()) {
                None => out.missing += 1,
                Some((_, payload)) if digest(payload) == acked.digest => {}
                Some((modified, _)) if *modified > acked.modified_ms => out.overwritten_later += 1,
                Some(_) => out.mismatched += 1,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_ack_wins_and_check_classifies() {
        let mut l = Ledger::default();
        l.ack(1, "history", "a", 100, "p1");
        l.ack(1, "history", "a", 90, "old");
        l.ack(1, "history", "b", 100, "p2");
        l.ack(1, "history", "c", 100, "p3");
        l.ack(1, "history", "d", 100, "p4");
        let mut other = Ledger::default();
        other.ack(1, "history", "b", 110, "p2b");
        l.merge(other);
        let stored = vec![
            ("a".to_string(), 100, "p1".to_string()),
            ("b".to_string(), 110, "p2b".to_string()),
            ("c".to_string(), 100, "other".to_string()),
            ("d".to_string(), 200, "newer".to_string()),
        ];
        let out = l.check(1, "history", &stored);
        assert_eq!((out.checked, out.missing, out.mismatched, out.overwritten_later), (4, 0, 1, 1));
        let out = l.check(1, "history", &vec![]);
        assert_eq!(out.missing, 4);
        assert_eq!(out.lost(), 4);
    }
}
