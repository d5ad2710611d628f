//! `weft export` and `weft import`: moving users' sync data between databases of any backend,
//! through a file in a documented, versioned format (`format`), or directly from a Mozilla
//! syncstorage-rs database (`--from-reference`, `reference.rs`). `export` reads (`export.rs`),
//! `import` writes (`import.rs`); both stream with bounded memory, show progress on a terminal,
//! and can be run again after an interruption (export `--resume`, import's journal).

mod check;
mod export;
mod format;
mod import;
mod reference;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use weft_schema::pool::is_postgres_url;
use weft_schema::{DbError, DbPool, PoolSettings};

use crate::config::Settings;
use export::{Exported, Exporter, Schema, Selection};
use format::{JsonLines, Record, RecordReader, Sink};
use import::{Importer, Journal, TokenserverTarget};
use reference::Reference;

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

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Database to read: sqlite:PATH, postgres://… or mysql://… (default: the configured
    /// storage `database_url`).
    #[arg(long, value_name = "DATABASE_URL")]
    pub database: Option<String>,
    /// Export this user (repeatable). Without --uid or --uids-file: every user of the node.
    #[arg(long = "uid", value_name = "UID")]
    pub uids: Vec<i64>,
    /// Export the users listed in this file, one uid per line.
    #[arg(long, value_name = "FILE")]
    pub uids_file: Option<PathBuf>,
    /// The export file; `-` writes to standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
    /// Continue an interrupted export in --output after its last complete user.
    #[arg(long)]
    pub resume: bool,
    /// Also write the tokenserver's nodes and users (`sync-1.5`) before the storage data.
    #[arg(long)]
    pub tokenserver: bool,
    /// The tokenserver database to read with --tokenserver (default: the configured
    /// `tokenserver.database_url`).
    #[arg(long, value_name = "DATABASE_URL", requires = "tokenserver")]
    pub tokenserver_database: Option<String>,
    /// With --tokenserver: the tokenserver's nodes and users only, no storage data.
    #[arg(long, requires = "tokenserver")]
    pub no_storage: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Database to write: sqlite:PATH, postgres://… or mysql://… (default: the configured
    /// storage `database_url`). Migrations are applied first.
    #[arg(long, value_name = "DATABASE_URL")]
    pub database: Option<String>,
    /// The export file; `-` reads standard input.
    #[arg(long, short, value_name = "FILE", required_unless_present = "from_reference")]
    pub input: Option<PathBuf>,
    /// Read a database Mozilla's syncstorage-rs left (postgres://… or mysql://…) directly
    /// instead of a file, as it is: never migrated, never written. Its tokenserver tables are
    /// imported too when it holds them.
    #[arg(long, value_name = "URL", conflicts_with = "input")]
    pub from_reference: Option<String>,
    /// With --from-reference: the reference's tokenserver database, when it is not the
    /// --from-reference database.
    #[arg(long, value_name = "URL", requires = "from_reference")]
    pub from_reference_tokenserver: Option<String>,
    /// With --from-reference: import this user's storage only (repeatable; default every user,
    /// and the tokenserver's nodes and users). A uid the source does not hold is reported and
    /// nothing is written for it.
    #[arg(long = "uid", value_name = "UID", requires = "from_reference")]
    pub uids: Vec<i64>,
    /// With --from-reference: write nothing; compare every user's collection timestamps,
    /// record counts and records, and the tokenserver's nodes and users, between the reference
    /// and the target (the check that proves a move). Exits 1 on any difference.
    #[arg(long, requires = "from_reference")]
    pub check: bool,
    /// Uids already imported, one per line, appended as users complete; a rerun skips them.
    /// Default: FILE.journal beside --input FILE.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Where the file's tokenserver nodes and users go (default: the configured
    /// `tokenserver.database_url`).
    #[arg(long, value_name = "DATABASE_URL")]
    pub tokenserver_database: Option<String>,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// A progress bar on stderr (hidden when stderr is not a terminal or with --no-progress).
pub struct Progress {
    bar: indicatif::ProgressBar,
}

impl Progress {
    fn new(enabled: bool, verb: &str) -> Progress {
        let bar = if enabled { indicatif::ProgressBar::new(0) } else { indicatif::ProgressBar::hidden() };
        let template = format!("{verb} {{bar:30}} {{pos}}/{{len}} users, {{msg}} ({{elapsed}}, eta {{eta}})");
        if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress { bar }
    }

    fn set_users(&self, users: u64) {
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

fn pool(url: &str, settings: &Settings) -> Result<DbPool, TransferError> {
    let settings = PoolSettings {
        max_size: 2,
        connection_timeout: Duration::from_millis(settings.shard.connection_timeout_ms.max(10_000)),
        ..crate::startup::pool_settings(settings)
    };
    Ok(DbPool::connect(url, &settings)?)
}

/// `uid 7` or `uids 7, 9`.
fn list_uids(uids: &[i64]) -> String {
    let list: Vec<String> = uids.iter().map(i64::to_string).collect();
    format!("uid{} {}", if uids.len() == 1 { "" } else { "s" }, list.join(", "))
}

fn backend_name(url: &str) -> &'static str {
    if url.starts_with("sqlite:") {
        "sqlite"
    } else if is_postgres_url(url) {
        "postgres"
    } else {
        "mysql"
    }
}

fn read_uids(path: &Path) -> Result<Vec<i64>, TransferError> {
    let mut uids = Vec::new();
    for (n, line) in BufReader::new(File::open(path)?).lines().enumerate() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        uids.push(line.parse().map_err(|_| {
            TransferError::Usage(format!("{}:{}: {line:?} is not a uid", path.display(), n + 1))
        })?);
    }
    Ok(uids)
}

/// What an interrupted export file already holds: the byte length up to its last complete
/// user, that user's uid, and the totals so far; `None` when the file is complete.
fn resume_point(path: &Path) -> Result<Option<(u64, Option<i64>, Exported)>, TransferError> {
    let mut reader = RecordReader::new(BufReader::new(File::open(path)?));
    let (mut keep, mut last, mut totals) = (0, None, Exported::default());
    while let Some(record) = reader.next() {
        match record {
            Ok(Record::End { .. }) => return Ok(None),
            Ok(Record::Header { .. }) => keep = reader.bytes_read,
            Ok(Record::UserEnd { uid, bsos }) => {
                keep = reader.bytes_read;
                last = Some(uid);
                totals.users += 1;
                totals.bsos += bsos;
            }
            Ok(_) => {}
            // A line cut by the interruption: everything from the last complete user is redone.
            Err(_) => break,
        }
    }
    Ok(Some((keep, last, totals)))
}

pub fn run_export(settings: &Settings, args: ExportArgs) -> Result<(), TransferError> {
    let url = args.database.clone().unwrap_or_else(|| settings.effective_database_url());
    let pool = pool(&url, settings)?;
    let mut uids = args.uids.clone();
    if let Some(path) = &args.uids_file {
        uids.extend(read_uids(path)?);
    }
    let to_stdout = args.output.as_os_str() == "-";
    if args.resume && to_stdout {
        return Err(TransferError::Usage("--resume needs --output FILE".into()));
    }
    let progress = Progress::new(!args.no_progress, "export");
    let exporter = Exporter {
        pool: &pool,
        schema: Schema::Weft,
        source_name: backend_name(&url).into(),
        progress: &progress,
    };

    let (file, done, after) = match args.resume.then(|| resume_point(&args.output)).transpose()? {
        Some(None) => {
            drop(progress);
            eprintln!("weft: {} is already complete", args.output.display());
            return Ok(());
        }
        Some(Some((keep, last, done))) if keep > 0 => {
            let file = OpenOptions::new().write(true).open(&args.output)?;
            file.set_len(keep)?;
            (Some(file), done, last)
        }
        _ => (None, Exported::default(), None),
    };
    let selection = if args.no_storage {
        Selection::Uids(Vec::new())
    } else if uids.is_empty() {
        Selection::All { after: after.unwrap_or(0) }
    } else {
        let skip = after.and_then(|last| uids.iter().position(|u| *u == last)).map_or(0, |i| i + 1);
        Selection::Uids(uids[skip..].to_vec())
    };
    let out: Box<dyn Write> = match (file, to_stdout) {
        (_, true) => Box::new(std::io::stdout().lock()),
        (Some(mut file), false) => {
            file.seek(SeekFrom::End(0))?;
            Box::new(file)
        }
        (None, false) => Box::new(File::create(&args.output)?),
    };
    let mut sink = JsonLines::new(BufWriter::with_capacity(1 << 20, out));
    let mut accounts = 0;
    if done == Exported::default() && after.is_none() {
        sink.put(exporter.header())?;
        if args.tokenserver {
            let url =
                args.tokenserver_database.clone().unwrap_or_else(|| settings.tokenserver_database_url());
            let tokenserver_pool = self::pool(&url, settings)?;
            accounts = Exporter { pool: &tokenserver_pool, ..exporter.with_progress(&progress) }
                .tokenserver(&mut sink)?;
        }
    }
    let totals = exporter.users(&selection, &mut sink, done)?;
    sink.put(Record::End { users: totals.users, bsos: totals.bsos })?;
    let mut out = sink.finish()?;
    out.flush()?;
    drop(progress);
    eprintln!(
        "weft: exported {} users, {} records from {}{}",
        totals.users,
        totals.bsos,
        crate::startup::redact_url(&url),
        if args.tokenserver { format!(", and {accounts} tokenserver users") } else { String::new() }
    );
    if !totals.missing.is_empty() {
        return Err(TransferError::Missing(totals.missing));
    }
    Ok(())
}

pub fn run_import(settings: &Settings, args: ImportArgs) -> Result<(), TransferError> {
    let url = args.database.clone().unwrap_or_else(|| settings.effective_database_url());
    let target = pool(&url, settings)?;
    if args.check {
        return run_check(settings, &args, &target, &url);
    }
    target.run_migrations()?;
    let journal_path = args.journal.clone().or_else(|| {
        args.input.as_ref().filter(|p| p.as_os_str() != "-").map(|p| {
            let mut name = p.as_os_str().to_owned();
            name.push(".journal");
            PathBuf::from(name)
        })
    });
    let mut journal = match &journal_path {
        Some(path) => Journal::open(path)?,
        None => Journal::none(),
    };
    let progress = Progress::new(!args.no_progress, "import");
    let tokenserver_url =
        args.tokenserver_database.clone().unwrap_or_else(|| settings.tokenserver_database_url());
    let tokenserver = TokenserverTarget::new(Box::new(|| {
        let pool = pool(&tokenserver_url, settings)?;
        pool.run_migrations()?;
        Ok(pool)
    }));
    let mut importer = Importer::new(&target, &progress, tokenserver);

    let mut missing = Vec::new();
    let mut reference_tokenserver = None;
    let totals = if let Some(url) = &args.from_reference {
        let source = Reference::open(url, args.from_reference_tokenserver.as_deref(), settings)?;
        // One user asked for by uid moves its storage only: its tokenserver rows are among
        // every user's, which move in a whole import.
        let with_tokenserver = args.uids.is_empty();
        reference_tokenserver = Some(source.has_tokenserver() && with_tokenserver);
        let selection = if args.uids.is_empty() {
            Selection::All { after: 0 }
        } else {
            Selection::Uids(args.uids.clone())
        };
        // The reference is read on its own thread and handed over through a bounded channel.
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Record>(4096);
        let reader = std::thread::spawn(move || {
            let mut sink = sender;
            source.read(&selection, with_tokenserver, &mut sink)
        });
        progress.set_users(0);
        let result = importer.run(&mut receiver.into_iter().map(Ok), &mut journal);
        match reader.join() {
            Ok(Err(err)) if !matches!(err, TransferError::Aborted) => return Err(err),
            Err(_) => return Err(TransferError::Usage("the reference reader panicked".into())),
            Ok(Ok(read)) => missing = read.missing,
            Ok(Err(_)) => {}
        }
        result?
    } else {
        let input: Box<dyn Read> = match args.input.as_deref() {
            Some(p) if p.as_os_str() != "-" => Box::new(File::open(p)?),
            _ => Box::new(std::io::stdin().lock()),
        };
        let mut records = RecordReader::new(BufReader::with_capacity(1 << 20, input));
        importer.run(&mut records, &mut journal)?
    };
    drop(importer);
    drop(progress);
    eprintln!(
        "weft: imported {} users, {} records into {}{}{}",
        totals.users,
        totals.bsos,
        crate::startup::redact_url(&url),
        if totals.skipped > 0 {
            format!(" ({} users already imported, skipped)", totals.skipped)
        } else {
            String::new()
        },
        if totals.nodes + totals.accounts > 0 {
            format!("; tokenserver: {} nodes, {} users", totals.nodes, totals.accounts)
        } else {
            String::new()
        },
    );
    if reference_tokenserver == Some(false) && args.uids.is_empty() {
        eprintln!(
            "weft: the reference database holds no tokenserver tables: no tokenserver users were \
             imported (name their database with --from-reference-tokenserver URL)"
        );
    }
    if !missing.is_empty() {
        return Err(TransferError::Missing(missing));
    }
    Ok(())
}

/// `weft import --from-reference URL --check`: compares, writes nothing.
fn run_check(
    settings: &Settings,
    args: &ImportArgs,
    target: &DbPool,
    url: &str,
) -> Result<(), TransferError> {
    let reference_url = args.from_reference.as_deref().unwrap_or_default();
    let source = Reference::open(reference_url, args.from_reference_tokenserver.as_deref(), settings)?;
    let tokenserver_url =
        args.tokenserver_database.clone().unwrap_or_else(|| settings.tokenserver_database_url());
    let tokenserver = pool(&tokenserver_url, settings)?;
    let checked = check::check(&source, &args.uids, target, &tokenserver)?;
    for line in &checked.differences {
        eprintln!("weft: differs: {line}");
    }
    let differences = checked.differences.len() as u64 + checked.more_differences;
    if checked.more_differences > 0 {
        eprintln!("weft: … and {} more differences", checked.more_differences);
    }
    eprintln!(
        "weft: checked {} users, {} records{} of {} against {}: {}",
        checked.users,
        checked.bsos,
        if checked.accounts > 0 {
            format!(" and {} tokenserver users", checked.accounts)
        } else {
            String::new()
        },
        crate::startup::redact_url(reference_url),
        crate::startup::redact_url(url),
        if differences == 0 {
            "every collection timestamp, record count and record matches"
        } else {
            "differences above"
        }
    );
    if differences > 0 {
        return Err(TransferError::Differs(differences));
    }
    Ok(())
}
