//! `weft import --from-reference`: the source side, a database Mozilla's syncstorage-rs left
//! behind (reference-databases.md), on MySQL/MariaDB or PostgreSQL, read as it is: no migration,
//! no Weft table, read-only transactions (one snapshot per user, one for the tokenserver's
//! rows). Its tokenserver tables (`services`, `nodes`, `users`) are read from the storage
//! database when they are there (the reference's Docker how-to keeps both in one database) or
//! from a database of their own (`--from-reference-tokenserver`). The records go to the
//! importer as an export file's would.

use weft_schema::layout;
use weft_schema::pool::is_postgres_url;
use weft_schema::DbPool;

use super::export::{Exported, Exporter, Schema, Selection};
use super::format::{Record, Sink};
use super::{backend_name, pool, Progress, TransferError};
use crate::config::Settings;

/// The reference's databases, opened (never migrated).
pub struct Reference {
    storage: DbPool,
    /// `None`: the storage database holds no tokenserver tables and none was named.
    tokenserver: Option<DbPool>,
    source_name: String,
}

impl Reference {
    /// Opens the storage database `url` and the tokenserver's: `tokenserver_url`, else `url`
    /// itself when it holds the tokenserver's tables.
    pub fn open(
        url: &str,
        tokenserver_url: Option<&str>,
        settings: &Settings,
    ) -> Result<Reference, TransferError> {
        for u in std::iter::once(url).chain(tokenserver_url) {
            if !(is_postgres_url(u) || u.starts_with("mysql://")) {
                return Err(TransferError::Usage(format!(
                    "{}: syncstorage-rs keeps its data in MySQL/MariaDB (mysql://…) or PostgreSQL \
                     (postgres://…)",
                    crate::commands::serve::startup::redact_url(u)
                )));
            }
        }
        let storage = pool(url, settings)?;
        let tokenserver = match tokenserver_url {
            Some(u) => {
                let tokenserver = pool(u, settings)?;
                if !tokenserver.get()?.single_statement(layout::holds_tokenserver)? {
                    return Err(TransferError::Usage(format!(
                        "{} has no tokenserver tables (services, nodes, users)",
                        crate::commands::serve::startup::redact_url(u)
                    )));
                }
                Some(tokenserver)
            }
            None => storage.get()?.single_statement(layout::holds_tokenserver)?.then(|| storage.clone()),
        };
        Ok(Reference { storage, tokenserver, source_name: format!("reference-{}", backend_name(url)) })
    }

    /// Writes the tokenserver's records (when `with_tokenserver` and there are tokenserver
    /// tables), then the selected users' storage, then `end`; returns the storage totals.
    pub fn read(
        &self,
        selection: &Selection,
        with_tokenserver: bool,
        sink: &mut dyn Sink,
    ) -> Result<Exported, TransferError> {
        let hidden = Progress::new(false, "read");
        let exporter = Exporter {
            pool: &self.storage,
            schema: Schema::Reference,
            source_name: self.source_name.clone(),
            progress: &hidden,
        };
        sink.put(exporter.header())?;
        if let (Some(pool), true) = (&self.tokenserver, with_tokenserver) {
            Exporter { pool, ..exporter.with_progress(&hidden) }.tokenserver(sink)?;
        }
        let storage = exporter.users(selection, sink, Exported::default())?;
        sink.put(Record::End { users: storage.users, bsos: storage.bsos })?;
        Ok(storage)
    }

    pub fn has_tokenserver(&self) -> bool {
        self.tokenserver.is_some()
    }
}
