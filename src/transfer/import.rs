//! Writing records into a database. Each user is imported in one write transaction that first
//! removes whatever the target holds for that uid, so importing the same file twice gives the
//! same result (idempotent), and an interruption leaves every user either complete or absent.
//! A journal of completed uids lets a rerun skip them (resumable). BSOs are written in
//! statement-sized groups as they are read: memory stays bounded. The tokenserver's `node` and
//! `account` records go to the tokenserver database: nodes by URL (updated or added), accounts
//! with their uids (replacing a row of the same uid), so tokens keep naming the same storage.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use weft_schema::models::tokenserver::{NewUser, NodeFields};
use weft_schema::models::{ExportedBso, NewBso};
use weft_schema::pool::Tx;
use weft_schema::queries::storage::{self, TOMBSTONE_COLLECTION};
use weft_schema::queries::{tokenserver, transfer};
use weft_schema::timestamp::unix_millis;
use weft_schema::DbPool;

use super::format::{Record, FORMAT, VERSION};
use super::{Progress, TransferError};

/// BSOs buffered before they are written (one multi-row statement).
const GROUP: usize = 200;
/// Tokenserver accounts written per transaction.
const ACCOUNTS: usize = 500;

/// Totals of one import.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    pub users: u64,
    /// Users skipped because the journal lists them.
    pub skipped: u64,
    pub bsos: u64,
    /// Tokenserver nodes and accounts written.
    pub nodes: u64,
    pub accounts: u64,
}

/// The tokenserver database, opened (and migrated) when the first tokenserver record comes.
pub struct TokenserverTarget<'a> {
    pub open: Box<dyn Fn() -> Result<DbPool, TransferError> + 'a>,
    pool: Option<DbPool>,
    /// Node URL → id there.
    node_ids: HashMap<String, i64>,
    pending: Vec<Record>,
}

impl<'a> TokenserverTarget<'a> {
    pub fn new(open: Box<dyn Fn() -> Result<DbPool, TransferError> + 'a>) -> Self {
        TokenserverTarget { open, pool: None, node_ids: HashMap::new(), pending: Vec::new() }
    }

    fn pool(&mut self) -> Result<&DbPool, TransferError> {
        if self.pool.is_none() {
            self.pool = Some((self.open)()?);
        }
        self.pool.as_ref().ok_or(TransferError::Aborted)
    }

    /// Adds the node or updates it to the exported values.
    fn node(&mut self, url: &str, fields: NodeFields) -> Result<(), TransferError> {
        let mut conn = self.pool()?.get()?;
        let id = conn.write_transaction(|tx| -> Result<i64, TransferError> {
            let service = sync_service(tx)?;
            Ok(match tokenserver::node_by_url(tx, service, url)? {
                Some(existing) => {
                    tokenserver::update_node(tx, existing.id, &fields)?;
                    existing.id
                }
                None => tokenserver::insert_node(tx, service, url, &fields)?,
            })
        })?;
        self.node_ids.insert(url.to_string(), id);
        Ok(())
    }

    /// Writes the buffered accounts in one transaction.
    fn flush(&mut self) -> Result<u64, TransferError> {
        if self.pending.is_empty() {
            return Ok(0);
        }
        let pending = std::mem::take(&mut self.pending);
        let node_ids = self.node_ids.clone();
        let mut conn = self.pool()?.get()?;
        conn.write_transaction(|tx| -> Result<(), TransferError> {
            let service = sync_service(tx)?;
            for record in &pending {
                if let Record::Account {
                    uid,
                    email,
                    generation,
                    client_state,
                    created_at,
                    replaced_at,
                    keys_changed_at,
                    node,
                } = record
                {
                    let nodeid = match node {
                        Some(url) => match node_ids.get(url) {
                            Some(id) => *id,
                            None => tokenserver::node_by_url(tx, service, url)?.map_or(0, |n| n.id),
                        },
                        None => 0,
                    };
                    let user = NewUser {
                        service,
                        email,
                        generation: *generation,
                        client_state,
                        created_at: *created_at,
                        nodeid,
                        keys_changed_at: *keys_changed_at,
                    };
                    transfer::put_account(tx, *uid, &user, *replaced_at)?;
                }
            }
            transfer::advance_user_ids(tx)?;
            Ok(())
        })?;
        Ok(pending.len() as u64)
    }
}

fn sync_service(tx: &mut Tx<'_>) -> Result<i32, TransferError> {
    tokenserver::service_id(tx, tokenserver::SYNC_SERVICE)?
        .ok_or_else(|| TransferError::Usage("the tokenserver database has no sync-1.5 service".into()))
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
    tokenserver: TokenserverTarget<'a>,
    /// Collection name → id in the target database.
    collection_ids: HashMap<String, i32>,
}

impl<'a> Importer<'a> {
    pub fn new(pool: &'a DbPool, progress: &'a Progress, tokenserver: TokenserverTarget<'a>) -> Self {
        Importer { pool, progress, tokenserver, collection_ids: HashMap::new() }
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
            let record = records.next().transpose()?;
            if !matches!(record, Some(Record::Account { .. })) {
                totals.accounts += self.tokenserver.flush()?;
            }
            match record {
                Some(Record::Node { node, available, current_load, capacity, downed, backoff }) => {
                    let fields = NodeFields {
                        capacity: Some(capacity),
                        available: Some(available),
                        current_load: Some(current_load),
                        downed: Some(downed),
                        backoff: Some(backoff),
                    };
                    self.tokenserver.node(&node, fields)?;
                    totals.nodes += 1;
                }
                Some(account @ Record::Account { .. }) => {
                    self.tokenserver.pending.push(account);
                    if self.tokenserver.pending.len() == ACCOUNTS {
                        totals.accounts += self.tokenserver.flush()?;
                    }
                }
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
        storage::erase_user(tx, uid)?;
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
            let rows: Vec<NewBso<'_>> = run.iter().map(|(_, b)| b.as_new()).collect();
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
