//! `weft export`: writes users' sync data (one user, a list, or the whole node, and with
//! `--tokenserver` the tokenserver's nodes and users) to a weft-export file
//! (docs/export-format.md), page by page with bounded memory (`crate::transfer::export`);
//! `--resume` continues an interrupted file after its last complete user.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::commands::serve::startup;
use crate::config::Settings;
use crate::transfer::export::{Exported, Exporter, Schema, Selection};
use crate::transfer::format::{JsonLines, Record, RecordReader, Sink};
use crate::transfer::{self, backend_name, Progress, TransferError};

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

pub fn run(settings: &Settings, args: ExportArgs) -> Result<(), TransferError> {
    let url = args.database.clone().unwrap_or_else(|| settings.effective_database_url());
    let pool = transfer::pool(&url, settings)?;
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
            let tokenserver_pool = transfer::pool(&url, settings)?;
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
        startup::redact_url(&url),
        if args.tokenserver { format!(", and {accounts} tokenserver users") } else { String::new() }
    );
    if !totals.missing.is_empty() {
        return Err(TransferError::Missing(totals.missing));
    }
    Ok(())
}
