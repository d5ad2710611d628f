//! `weft import --from-reference URL --check`: the check that proves a move. The reference is
//! read exactly as an import reads it, and every user it holds is compared with what the
//! target holds for the same uid: each collection's timestamp, its record count and a digest of
//! its records (id, modified, sortindex, expiry, payload), and the tombstone; then the
//! tokenserver's nodes and users (count and digest). Nothing is written anywhere. One user is in
//! memory at a time: the target's side is read when the source's `user_end` arrives.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use weft_schema::DbPool;

use super::export::{Exported, Exporter, Schema, Selection};
use super::format::{Record, Sink};
use super::reference::Reference;
use super::{Progress, TransferError};

/// Differences printed before the rest are only counted.
const SHOWN: usize = 20;

/// One collection: last-modified, records, and the sum of the records' hashes (the order in
/// which the two databases list records may differ: their collations do).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Collection {
    modified: Option<i64>,
    records: u64,
    digest: u64,
}

/// What one side holds: a user's collections and tombstone, or the tokenserver's rows.
#[derive(Debug, Default, PartialEq, Eq)]
struct Summary {
    collections: BTreeMap<String, Collection>,
    tombstone: Option<i64>,
    nodes: Collection,
    accounts: Collection,
}

fn hash_of(record: &Record) -> u64 {
    // Fixed keys: both sides are hashed by this process.
    let mut hasher = DefaultHasher::new();
    serde_json::to_string(record).unwrap_or_default().hash(&mut hasher);
    hasher.finish()
}

impl Summary {
    fn add(record: &mut Collection, hash: u64) {
        record.records += 1;
        record.digest = record.digest.wrapping_add(hash);
    }
}

impl Sink for Summary {
    fn put(&mut self, record: Record) -> Result<(), TransferError> {
        match &record {
            Record::Collection { name, modified } => {
                self.collections.entry(name.clone()).or_default().modified = Some(*modified)
            }
            Record::Tombstone { modified } => self.tombstone = Some(*modified),
            Record::Bso { collection, .. } => {
                let hash = hash_of(&record);
                Summary::add(self.collections.entry(collection.clone()).or_default(), hash)
            }
            Record::Node { .. } => Summary::add(&mut self.nodes, hash_of(&record)),
            Record::Account { .. } => Summary::add(&mut self.accounts, hash_of(&record)),
            Record::Header { .. } | Record::User { .. } | Record::UserEnd { .. } | Record::End { .. } => {}
        }
        Ok(())
    }
}

/// Totals of a check.
#[derive(Debug, Default)]
pub struct Checked {
    pub users: u64,
    pub bsos: u64,
    pub accounts: u64,
    /// One line per difference found.
    pub differences: Vec<String>,
    pub more_differences: u64,
}

/// Receives the reference's records and compares each complete user with the target.
struct Compare<'a> {
    target: Exporter<'a>,
    target_tokenserver: Option<&'a DbPool>,
    source: Summary,
    checked: Checked,
}

impl Compare<'_> {
    fn differ(&mut self, line: String) {
        if self.checked.differences.len() < SHOWN {
            self.checked.differences.push(line);
        } else {
            self.checked.more_differences += 1;
        }
    }

    fn compare_user(&mut self, uid: i64) -> Result<(), TransferError> {
        let source = std::mem::take(&mut self.source);
        let mut target = Summary::default();
        let found = self.target.users(&Selection::Uids(vec![uid]), &mut target, Exported::default())?;
        self.checked.users += 1;
        self.checked.bsos += source.collections.values().map(|c| c.records).sum::<u64>();
        if !found.missing.is_empty() {
            self.differ(format!("uid {uid}: not in the target"));
            return Ok(());
        }
        if source.tombstone != target.tombstone {
            self.differ(format!(
                "uid {uid}: tombstone {} in the source, {} in the target",
                show(source.tombstone),
                show(target.tombstone)
            ));
        }
        let names: std::collections::BTreeSet<&String> =
            source.collections.keys().chain(target.collections.keys()).collect();
        for name in names {
            let (s, t) = (source.collections.get(name).copied(), target.collections.get(name).copied());
            if s != t {
                let describe = |c: Option<Collection>| match c {
                    Some(c) => format!("{} records, modified {}", c.records, show(c.modified)),
                    None => "absent".to_string(),
                };
                let same_counts = s.map(|c| (c.records, c.modified)) == t.map(|c| (c.records, c.modified));
                self.differ(format!(
                    "uid {uid} {name}: source {}, target {}{}",
                    describe(s),
                    describe(t),
                    if same_counts { " (records differ)" } else { "" }
                ));
            }
        }
        Ok(())
    }

    fn compare_tokenserver(&mut self) -> Result<(), TransferError> {
        let Some(pool) = self.target_tokenserver else { return Ok(()) };
        let hidden = Progress::new(false, "check");
        let mut target = Summary::default();
        Exporter { pool, ..self.target.with_progress(&hidden) }.tokenserver(&mut target)?;
        self.checked.accounts = self.source.accounts.records;
        for (what, s, t) in
            [("nodes", self.source.nodes, target.nodes), ("users", self.source.accounts, target.accounts)]
        {
            if s != t {
                self.differ(format!(
                    "tokenserver {what}: {} in the source, {} in the target{}",
                    s.records,
                    t.records,
                    if s.records == t.records { " (rows differ)" } else { "" }
                ));
            }
        }
        self.source = Summary::default();
        Ok(())
    }
}

fn show(ms: Option<i64>) -> String {
    ms.map_or("none".into(), |ms| format!("{}.{:02}", ms / 1000, (ms % 1000) / 10))
}

impl Sink for Compare<'_> {
    fn put(&mut self, record: Record) -> Result<(), TransferError> {
        match record {
            Record::User { .. } => {
                // The tokenserver's records come first; once users begin they are complete.
                if self.source.nodes.records + self.source.accounts.records > 0 {
                    self.compare_tokenserver()?;
                }
                self.source = Summary::default();
                Ok(())
            }
            Record::UserEnd { uid, .. } => self.compare_user(uid),
            Record::End { .. } if self.source.nodes.records + self.source.accounts.records > 0 => {
                self.compare_tokenserver()
            }
            other => self.source.put(other),
        }
    }
}

/// Compares every user of `source` (or `uids`) and its tokenserver rows with the target.
pub fn check(
    source: &Reference,
    uids: &[i64],
    target: &DbPool,
    target_tokenserver: &DbPool,
) -> Result<Checked, TransferError> {
    let with_tokenserver = uids.is_empty() && source.has_tokenserver();
    let progress = Progress::new(false, "check");
    let mut compare = Compare {
        target: Exporter {
            pool: target,
            schema: Schema::Weft,
            source_name: String::new(),
            progress: &progress,
        },
        target_tokenserver: with_tokenserver.then_some(target_tokenserver),
        source: Summary::default(),
        checked: Checked::default(),
    };
    let selection =
        if uids.is_empty() { Selection::All { after: 0 } } else { Selection::Uids(uids.to_vec()) };
    let read = source.read(&selection, with_tokenserver, &mut compare)?;
    for uid in read.missing {
        compare.differ(format!("uid {uid}: not in the source"));
    }
    Ok(compare.checked)
}
