//! Moving users' sync data between databases of any backend, for `weft export` and `weft
//! import` (`crate::commands::{export, import}`): through a file in a documented, versioned
//! format (`format`), or directly from a Mozilla syncstorage-rs database (`--from-reference`,
//! `reference`). `export` reads, `import` writes; both stream with bounded memory, show
//! progress on a terminal, and can be run again after an interruption (export `--resume`,
//! import's journal).

pub mod check;
pub mod export;
pub mod format;
pub mod import;
pub mod reference;

use std::time::Duration;

use weft_schema::pool::is_postgres_url;
use weft_schema::{DbError, DbPool, PoolSettings};

use crate::commands::serve::startup;
use crate::config::Settings;

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("line {line}: not a weft-export record: {message}")]
    Format { line: u64, message: String },
    #[error("unsupported export file: {0} (this weft reads weft-export version 1)")]
    Unsupported(String),
    #[error("unexpected `{0}` record")]
    Unexpected(String),
    #[error("the export ends early (no `end` record): was it interrupted? Complete users were imported")]
    Truncated,
    #[error("user {uid}: the file says {expected} records but has {found}")]
    Count { uid: i64, expected: u64, found: u64 },
    #[error("user {uid}: collection id {collection} has no name in `collections`")]
    UnnamedCollection { uid: i64, collection: i32 },
    #[error("{0}")]
    Usage(String),
    #[error("the import stopped reading")]
    Aborted,
    #[error("the target differs from the source ({0} differences)")]
    Differs(u64),
    #[error("{} not in the source: nothing was written for {}", list_uids(.0), if .0.len() == 1 { "it" } else { "them" })]
    Missing(Vec<i64>),
}

impl From<diesel::result::Error> for TransferError {
    fn from(err: diesel::result::Error) -> Self {
        TransferError::Database(err.into())
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal or with --no-progress).
pub struct Progress {
    bar: indicatif::ProgressBar,
}

impl Progress {
    pub fn new(enabled: bool, verb: &str) -> Progress {
        let bar = if enabled { indicatif::ProgressBar::new(0) } else { indicatif::ProgressBar::hidden() };
        let template = format!("{verb} {{bar:30}} {{pos}}/{{len}} users, {{msg}} ({{elapsed}}, eta {{eta}})");
        if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress { bar }
    }

    pub fn set_users(&self, users: u64) {
        self.bar.set_length(users);
    }

    fn skip_users(&self, users: u64) {
        self.bar.set_position(users);
    }

    fn user_done(&self, records: u64) {
        self.bar.inc(1);
        if self.bar.length().is_some_and(|len| self.bar.position() > len) {
            self.bar.set_length(self.bar.position());
        }
        self.bar.set_message(format!("{records} records"));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// A small pool on `url` for a batch tool: two connections, a generous connection timeout.
pub fn pool(url: &str, settings: &Settings) -> Result<DbPool, TransferError> {
    let settings = PoolSettings {
        max_size: 2,
        connection_timeout: Duration::from_millis(settings.shard.connection_timeout_ms.max(10_000)),
        ..startup::pool_settings(settings)
    };
    Ok(DbPool::connect(url, &settings)?)
}

/// `uid 7` or `uids 7, 9`.
fn list_uids(uids: &[i64]) -> String {
    let list: Vec<String> = uids.iter().map(i64::to_string).collect();
    format!("uid{} {}", if uids.len() == 1 { "" } else { "s" }, list.join(", "))
}

pub fn backend_name(url: &str) -> &'static str {
    if url.starts_with("sqlite:") {
        "sqlite"
    } else if is_postgres_url(url) {
        "postgres"
    } else {
        "mysql"
    }
}
