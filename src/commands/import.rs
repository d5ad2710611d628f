//! `weft import`: writes a weft-export file, or a Mozilla syncstorage-rs database read directly
//! (`--from-reference`), into any backend, one transaction per user
//! (`crate::transfer::import`); a journal of completed uids lets a rerun skip them.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;

use weft_schema::DbPool;

use crate::commands::serve::startup;
use crate::config::Settings;
use crate::transfer::check;
use crate::transfer::export::Selection;
use crate::transfer::format::{Record, RecordReader};
use crate::transfer::import::{Importer, Journal, TokenserverTarget};
use crate::transfer::reference::Reference;
use crate::transfer::{pool, Progress, TransferError};

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

pub fn run(settings: &Settings, args: ImportArgs) -> Result<(), TransferError> {
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
        startup::redact_url(&url),
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
        startup::redact_url(reference_url),
        startup::redact_url(url),
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
