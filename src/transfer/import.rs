//! Writing records into a database. Each user is imported in one write transaction that first
//! removes whatever the target holds for that uid, so importing the same file twice gives the
//! same result (idempotent), and an interruption leaves every user either complete or absent.
//! A journal of completed uids lets a rerun skip them (resumable). BSOs are written in
//! statement-sized groups as they are read: memory stays bounded.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use weft_schema::models::{ExportedBso, NewBso};
use weft_schema::pool::Tx;
use weft_schema::queries::storage::{self, TOMBSTONE_COLLECTION};
use weft_schema::queries::transfer;
use weft_schema::timestamp::unix_millis;
use weft_schema::DbPool;

use super::format::{Record, FORMAT, VERSION};
use super::{Progress, TransferError};

/// BSOs buffered before they are written (one multi-row statement).
const GROUP: usize = 200;

/// Totals of one import.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    pub users: u64,
    /// Users skipped because the journal lists them.
    pub skipped: u64,
    pub bsos: u64,
}

/// Completed uids, one per line, appended after each commit.
pub struct Journal {
    done: HashSet<i64>,
    file: Option<File>,
}

impl Journal {
    pub fn none() -> Journal {
        Journal { done: HashSet::new(), file: None }
    }

    pub fn open(path: &Path) -> Result<Journal, TransferError> {
        let mut done = HashSet::new();
        if path.exists() {
            for line in BufReader::new(File::open(path)?).lines() {
                if let Ok(uid) = line?.trim().parse() {
                    done.insert(uid);
                }
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Journal { done, file: Some(file) })
    }

    fn record(&mut self, uid: i64) -> Result<(), TransferError> {
        if let Some(file) = &mut self.file {
            writeln!(file, "{uid}")?;
            file.sync_data()?;
        }
        self.done.insert(uid);
        Ok(())
    }
}

pub struct Importer<'a> {
    pub pool: &'a DbPool,
    pub progress: &'a Progress,
    /// Collection name → id in the target database.
    collection_ids: HashMap<String, i32>,
}

impl<'a> Importer<'a> {
    pub fn new(pool: &'a DbPool, progress: &'a Progress) -> Self {
        Importer { pool, progress, collection_ids: HashMap::new() }
    }

    /// Imports every user of `records` not in the journal. Fails on a file that is not a
    /// complete version-1 export (after committing the complete users before the problem).
    pub fn run(
        &mut self,
        records: &mut dyn Iterator<Item = Result<Record, TransferError>>,
        journal: &mut Journal,
    ) -> Result<Imported, TransferError> {
        match records.next().transpose()? {
            Some(Record::Header { format, version, .. }) if format == FORMAT && version == VERSION => {}
            Some(Record::Header { format, version, .. }) => {
                return Err(TransferError::Unsupported(format!("{format} version {version}")))
            }
            _ => return Err(TransferError::Unsupported("no weft-export header".into())),
        }
        let mut totals = Imported::default();
        loop {
            match records.next().transpose()? {
                Some(Record::User { uid }) if journal.done.contains(&uid) => {
                    skip_user(records, uid)?;
                    totals.skipped += 1;
                    self.progress.user_done(totals.bsos);
                }
                Some(Record::User { uid }) => {
                    let mut conn = self.pool.get()?;
                    let bsos = conn.write_transaction(|tx| self.user(tx, uid, records))?;
                    journal.record(uid)?;
                    totals.users += 1;
                    totals.bsos += bsos;
                    self.progress.user_done(totals.bsos);
                }
                Some(Record::End { .. }) => return Ok(totals),
                Some(other) => return Err(unexpected(&other)),
                None => return Err(TransferError::Truncated),
            }
        }
    }

    fn collection_id(&mut self, tx: &mut Tx<'_>, name: &str) -> Result<i32, TransferError> {
        if let Some(id) = self.collection_ids.get(name) {
            return Ok(*id);
        }
        let id = match storage::collection_id(tx, name)? {
            Some(id) => id,
            None => storage::create_collection(tx, name)?,
        };
        self.collection_ids.insert(name.to_string(), id);
        Ok(id)
    }

    /// One user's records after `user`, through `user_end`, replacing what the target holds.
    fn user(
        &mut self,
        tx: &mut Tx<'_>,
        uid: i64,
        records: &mut dyn Iterator<Item = Result<Record, TransferError>>,
    ) -> Result<u64, TransferError> {
        storage::delete_storage(tx, uid)?;
        let mut collections: Vec<i32> = Vec::new();
        let mut group: Vec<(String, ExportedBso)> = Vec::with_capacity(GROUP);
        let mut bsos = 0u64;
        loop {
            let record = records.next().transpose()?.ok_or(TransferError::Truncated)?;
            match record {
                Record::Collection { name, modified } => {
                    let id = self.collection_id(tx, &name)?;
                    transfer::put_collection_modified(tx, uid, id, modified)?;
                    collections.push(id);
                }
                Record::Tombstone { modified } => {
                    transfer::put_collection_modified(tx, uid, TOMBSTONE_COLLECTION, modified)?
                }
                Record::Bso { collection, id, modified, sortindex, ttl, payload } => {
                    bsos += 1;
                    group.push((collection, ExportedBso { id, sortindex, payload, modified, ttl }));
                    if group.len() == GROUP {
                        self.write_group(tx, uid, &mut group)?;
                    }
                }
                Record::UserEnd { uid: end_uid, bsos: expected } if end_uid == uid => {
                    self.write_group(tx, uid, &mut group)?;
                    if expected != bsos {
                        return Err(TransferError::Count { uid, expected, found: bsos });
                    }
                    // The quota bookkeeping columns, as the write path keeps them.
                    let now = unix_millis();
                    for id in collections {
                        storage::refresh_collection_totals(tx, uid, id, now)?;
                    }
                    return Ok(bsos);
                }
                other => return Err(unexpected(&other)),
            }
        }
    }

    /// Writes the buffered BSOs, one statement per run of the same collection.
    fn write_group(
        &mut self,
        tx: &mut Tx<'_>,
        uid: i64,
        group: &mut Vec<(String, ExportedBso)>,
    ) -> Result<(), TransferError> {
        for run in group.chunk_by(|a, b| a.0 == b.0) {
            let id = self.collection_id(tx, &run[0].0)?;
            let rows: Vec<NewBso<'_>> = run
                .iter()
                .map(|(_, b)| NewBso {
                    id: &b.id,
                    sortindex: b.sortindex,
                    payload: &b.payload,
                    modified: b.modified,
                    ttl: b.ttl,
                })
                .collect();
            storage::upsert_bsos(tx, uid, id, &rows)?;
        }
        group.clear();
        Ok(())
    }
}

/// Reads past a user's records (already imported, says the journal).
fn skip_user(
    records: &mut dyn Iterator<Item = Result<Record, TransferError>>,
    uid: i64,
) -> Result<(), TransferError> {
    loop {
        match records.next().transpose()? {
            Some(Record::UserEnd { uid: end_uid, .. }) if end_uid == uid => return Ok(()),
            Some(Record::Collection { .. } | Record::Tombstone { .. } | Record::Bso { .. }) => {}
            Some(other) => return Err(unexpected(&other)),
            None => return Err(TransferError::Truncated),
        }
    }
}

fn unexpected(record: &Record) -> TransferError {
    let kind = serde_json::to_value(record)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_default();
    TransferError::Unexpected(kind)
}
