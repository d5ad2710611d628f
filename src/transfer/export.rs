//! Reading users out of a database into a `Sink`: Weft's own tables on any backend, or a
//! database Mozilla's syncstorage-rs left behind (MySQL or PostgreSQL, read by
//! `queries::reference`). Each user is read in one read-only transaction that sees one
//! snapshot, a page of `PAGE` BSOs at a time, so memory stays bounded whatever the user's size.
//! A uid the source does not hold is reported (`Exported::missing`) and gets no records, so an
//! import never replaces anything for it.

use weft_schema::models::{ExportedBso, UserCollectionRow};
use weft_schema::pool::Tx;
use weft_schema::queries::storage::TOMBSTONE_COLLECTION;
use weft_schema::queries::{reference, storage, tokenserver, transfer};
use weft_schema::timestamp::unix_millis;
use weft_schema::DbPool;

use super::format::{Record, Sink, FORMAT, VERSION};
use super::{Progress, TransferError};

/// BSOs read per statement.
const PAGE: i64 = 1000;
/// Users listed per statement when exporting a whole node.
const USER_PAGE: i64 = 1000;

/// The tables a source database has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Weft's tables (any backend).
    Weft,
    /// The tables Mozilla's syncstorage-rs left, on MySQL or PostgreSQL (the source's backend
    /// says which): no Weft table is read.
    Reference,
}

/// Which users to export.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Every user of the node, in uid order, starting above `after` (resuming).
    All { after: i64 },
    /// These uids, in this order.
    Uids(Vec<i64>),
}

/// Totals of one export.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Exported {
    pub users: u64,
    pub bsos: u64,
    /// Uids asked for by name that the source does not hold (no records were written).
    pub missing: Vec<i64>,
}

pub struct Exporter<'a> {
    pub pool: &'a DbPool,
    pub schema: Schema,
    pub source_name: String,
    pub progress: &'a Progress,
}

impl<'a> Exporter<'a> {
    /// This exporter's settings with another progress bar (to read another database with).
    pub fn with_progress(&self, progress: &'a Progress) -> Exporter<'a> {
        Exporter { pool: self.pool, schema: self.schema, source_name: self.source_name.clone(), progress }
    }

    /// The header record of a new file.
    pub fn header(&self) -> Record {
        Record::Header {
            format: FORMAT.into(),
            version: VERSION,
            exported_at: unix_millis(),
            source: self.source_name.clone(),
        }
    }

    /// Writes every selected user (without header and `end`: the caller decides, so that a
    /// resumed export continues one file). `done` counts users already in the file.
    pub fn users(
        &self,
        selection: &Selection,
        sink: &mut dyn Sink,
        done: Exported,
    ) -> Result<Exported, TransferError> {
        let mut totals = done;
        let mut conn = self.pool.get()?;
        match selection {
            Selection::Uids(uids) => {
                self.progress.set_users(uids.len() as u64);
                for &uid in uids {
                    match conn.snapshot_transaction(|tx| self.user(tx, uid, sink))? {
                        Some(bsos) => {
                            totals.bsos += bsos;
                            totals.users += 1;
                        }
                        None => totals.missing.push(uid),
                    }
                    self.progress.user_done(totals.bsos);
                }
            }
            Selection::All { after } => {
                let count = conn.single_statement(|tx| match self.schema {
                    Schema::Weft => transfer::user_count(tx),
                    Schema::Reference => reference::user_count(tx),
                })?;
                self.progress.set_users(u64::try_from(count).unwrap_or(0));
                self.progress.skip_users(totals.users);
                let mut after = *after;
                loop {
                    let uids = conn.single_statement(|tx| match self.schema {
                        Schema::Weft => transfer::users_after(tx, after, USER_PAGE),
                        Schema::Reference => reference::users_after(tx, after, USER_PAGE),
                    })?;
                    let Some(&last) = uids.last() else { break };
                    for uid in uids {
                        // Listed a moment ago; gone since (deleted meanwhile): nothing to move.
                        if let Some(bsos) = conn.snapshot_transaction(|tx| self.user(tx, uid, sink))? {
                            totals.bsos += bsos;
                            totals.users += 1;
                        }
                        self.progress.user_done(totals.bsos);
                    }
                    after = last;
                }
            }
        }
        Ok(totals)
    }

    /// The tokenserver's `node` and `account` records (of `sync-1.5`), read in one snapshot;
    /// returns the accounts. The statements are the same for Weft's tables and the reference's
    /// (which have the same names and columns).
    pub fn tokenserver(&self, sink: &mut dyn Sink) -> Result<u64, TransferError> {
        self.pool.get()?.snapshot_transaction(|tx| Self::tokenserver_rows(tx, sink))
    }

    fn tokenserver_rows(tx: &mut Tx<'_>, sink: &mut dyn Sink) -> Result<u64, TransferError> {
        let Some(service) = tokenserver::service_id(tx, tokenserver::SYNC_SERVICE)? else {
            return Ok(0);
        };
        for n in tokenserver::list_nodes(tx, service)? {
            sink.put(Record::Node {
                node: n.node,
                available: n.available,
                current_load: n.current_load,
                capacity: n.capacity,
                downed: n.downed,
                backoff: n.backoff,
            })?;
        }
        let (mut after, mut accounts) = (0, 0);
        loop {
            let page = transfer::accounts_after(tx, service, after, USER_PAGE)?;
            let Some(last) = page.last().map(|a| a.uid) else { break };
            for a in page {
                accounts += 1;
                sink.put(Record::Account {
                    uid: a.uid,
                    email: a.email,
                    generation: a.generation,
                    client_state: a.client_state,
                    created_at: a.created_at,
                    replaced_at: a.replaced_at,
                    keys_changed_at: a.keys_changed_at,
                    node: a.node,
                })?;
            }
            after = last;
        }
        Ok(accounts)
    }

    /// One user's records, `user` … `user_end`; returns the BSOs written, or `None` (and
    /// writes nothing) when the source holds nothing for the uid.
    fn user(&self, tx: &mut Tx<'_>, uid: i64, sink: &mut dyn Sink) -> Result<Option<u64>, TransferError> {
        let now = unix_millis();
        let mut collections: Vec<UserCollectionRow> = match self.schema {
            Schema::Weft => storage::user_collections(tx, uid)?,
            Schema::Reference => reference::user_collections(tx, uid)?,
        };
        if collections.is_empty() {
            return Ok(None);
        }
        // Name order, so that two exports of the same data are the same bytes.
        collections.sort_by(|a, b| a.name.cmp(&b.name).then(a.collection.cmp(&b.collection)));
        sink.put(Record::User { uid })?;
        for row in &collections {
            match &row.name {
                Some(name) if row.collection != TOMBSTONE_COLLECTION => {
                    sink.put(Record::Collection { name: name.clone(), modified: row.last_modified })?
                }
                // A tombstone at 0 only ever served as the user's write lock
                // (`queries::storage::lock_user`): it carries no timestamp.
                _ if row.collection == TOMBSTONE_COLLECTION && row.last_modified == 0 => {}
                _ if row.collection == TOMBSTONE_COLLECTION => {
                    sink.put(Record::Tombstone { modified: row.last_modified })?
                }
                _ => return Err(TransferError::UnnamedCollection { uid, collection: row.collection }),
            }
        }
        let mut bsos = 0;
        for row in collections.iter().filter(|r| r.collection != TOMBSTONE_COLLECTION) {
            let name = row.name.clone().unwrap_or_default();
            let mut after = String::new();
            loop {
                let page: Vec<ExportedBso> = match self.schema {
                    Schema::Weft => transfer::bsos_after(tx, uid, row.collection, &after, now, PAGE)?,
                    Schema::Reference => reference::bsos_after(tx, uid, row.collection, &after, now, PAGE)?,
                };
                let full = page.len() as i64 == PAGE;
                for bso in page {
                    after.clone_from(&bso.id);
                    bsos += 1;
                    sink.put(Record::Bso {
                        collection: name.clone(),
                        id: bso.id,
                        modified: bso.modified,
                        sortindex: bso.sortindex,
                        ttl: bso.ttl,
                        payload: bso.payload,
                    })?;
                }
                if !full {
                    break;
                }
            }
        }
        sink.put(Record::UserEnd { uid, bsos })?;
        Ok(Some(bsos))
    }
}
