//! `weft user move UID --to NODE` and `weft node drain NODE --move`: moving users' data
//! between the storage nodes this configuration serves, on the server, so that no client
//! uploads anything again (the engine and its guarantees: `weft_actors::user_move`). The drain
//! moves many users at once, a few in parallel (half the source db node's shard threads by
//! default, so its clients keep the rest), paced by `--rate`, with a progress bar on a terminal
//! and a log line every few seconds otherwise, and ends with the totals: users moved, bytes,
//! failures, time held per user.

use std::io::IsTerminal;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::Args;
use weft_actors::user_move::{move_user, MoveOutcome, MoveSettings, NodeDb};
use weft_schema::models::tokenserver::NodeFields;
use weft_schema::queries::tokenserver as ts;
use weft_schema::queries::user_move::{self as q, HELD, INCOMING};
use weft_schema::{DbError, DbPool};

use crate::commands::serve::startup;
use crate::commands::tokenserver_db::{node_url, AdminError};
use crate::config::Settings;

/// Users listed per statement while draining.
const PAGE: i64 = 500;
/// A token minted from a tokenserver read that began just before a switch committed is issued
/// a moment after it: the source refuses the moved user this much longer than the lifetime.
const TOKEN_ISSUE_MARGIN: Duration = Duration::from_secs(10);
/// A log line this often without a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

#[derive(Args)]
pub struct MoveArgs {
    /// The user's uid in the tokenserver (the number in its storage URLs).
    uid: i64,
    /// The node to move it to (configured here, and registered with the tokenserver).
    #[arg(long)]
    to: String,
}

/// `weft node drain NODE --move …`'s options.
#[derive(Args, Default)]
pub struct DrainMoveArgs {
    /// Move each user's data to another node now (no client uploads again), instead of marking
    /// the users replaced (each Firefox then uploads its data to a new node).
    #[arg(long = "move")]
    pub move_data: bool,
    /// Nodes to move the users to (repeatable; default: every other node of the tokenserver
    /// configured here that is neither downed nor backed off).
    #[arg(long, requires = "move_data")]
    pub to: Vec<String>,
    /// At most this many users started per second (default: no pacing).
    #[arg(long, requires = "move_data")]
    pub rate: Option<f64>,
    /// Users moved at once (default: half the source db node's shard threads, at least 1).
    #[arg(long, requires = "move_data")]
    pub parallel: Option<usize>,
    /// No progress bar.
    #[arg(long, requires = "move_data")]
    pub no_progress: bool,
}

impl From<diesel::result::Error> for AdminError {
    fn from(err: diesel::result::Error) -> Self {
        AdminError::from(DbError::from(err))
    }
}

/// The configured nodes' pools, by canonical URL (aliases too), and the tokenserver's.
struct Fleet {
    tokenserver: DbPool,
    nodes: Vec<(Vec<String>, DbPool, usize)>,
    settings: MoveSettings,
}

impl Fleet {
    fn open(settings: &Settings) -> Result<Fleet, AdminError> {
        let (plans, _) = startup::plan_nodes(settings)?;
        let pools = startup::open_pools(settings, &plans, settings.run_migrations)?;
        let nodes = plans
            .into_iter()
            .zip(pools)
            .map(|(plan, pool)| {
                let mut names = vec![plan.url];
                names.extend(plan.aliases);
                (names, pool, plan.tuning.threads)
            })
            .collect();
        Ok(Fleet {
            tokenserver: startup::tokenserver_pool(settings, settings.run_migrations)?,
            nodes,
            // An expired token still opens info/collections for the grace period: until then
            // the source must keep answering 401, so that the client learns its new node.
            settings: MoveSettings {
                token_lifetime: Duration::from_secs(
                    settings.tokenserver.token_duration_seconds + settings.auth.expired_token_grace_seconds,
                ) + TOKEN_ISSUE_MARGIN,
            },
        })
    }

    fn node<'a>(&'a self, url: &'a str) -> Result<NodeDb<'a>, AdminError> {
        self.nodes
            .iter()
            .find(|(names, _, _)| names.iter().any(|n| n == url))
            .map(|(_, pool, _)| NodeDb { url, pool })
            .ok_or_else(|| {
                AdminError::Invalid(format!(
                    "{url} is not a node of this configuration: the move needs its database (a [[nodes]] entry)"
                ))
            })
    }

    fn threads(&self, url: &str) -> usize {
        self.nodes.iter().find(|(names, _, _)| names.iter().any(|n| n == url)).map_or(2, |(_, _, t)| *t)
    }

    fn service(&self) -> Result<i32, AdminError> {
        let mut conn = self.tokenserver.get()?;
        conn.single_statement(|tx| ts::service_id(tx, ts::SYNC_SERVICE))?
            .ok_or_else(|| AdminError::Invalid("the tokenserver database has no sync-1.5 service".into()))
    }
}

pub fn run(settings: &Settings, args: MoveArgs) -> Result<(), AdminError> {
    let fleet = Fleet::open(settings)?;
    let target = node_url(&args.to)?;
    let service = fleet.service()?;
    let user =
        fleet.tokenserver.get()?.single_statement(|tx| q::user_by_uid(tx, service, args.uid))?.ok_or_else(
            || AdminError::Invalid(format!("no user with uid {} in the tokenserver", args.uid)),
        )?;
    // Switched already (an interrupted run): the source is where the target's copy came from.
    let source = match user.node.clone() {
        Some(node) if node == target => {
            match fleet.node(&target)?.pool.get()?.single_statement(|tx| q::marker(tx, args.uid))? {
                Some(m) if m.state == INCOMING => m.peer,
                _ => node,
            }
        }
        Some(node) => node,
        None => return Err(AdminError::Invalid(format!("user {} has no node", args.uid))),
    };
    match move_user(&fleet.tokenserver, fleet.node(&source)?, fleet.node(&target)?, args.uid, fleet.settings)? {
        MoveOutcome::AlreadyThere => println!("user {} is on {target} already: nothing to do", args.uid),
        MoveOutcome::Moved { bsos, bytes, held } => println!(
            "moved user {} from {source} to {target}: {bsos} records, {bytes} bytes; writes held {} ms. \
             {source} answers it 401 for the next {} s (token lifetime and grace), then the deleter removes its copy there",
            args.uid,
            held.as_millis(),
            fleet.settings.token_lifetime.as_secs()
        ),
    }
    Ok(())
}

/// Totals of a drain.
#[derive(Default)]
struct Totals {
    moved: u64,
    already: u64,
    failed: u64,
    bsos: u64,
    bytes: u64,
    held_ms: Vec<u64>,
}

pub fn run_drain_move(settings: &Settings, source: &str, args: DrainMoveArgs) -> Result<(), AdminError> {
    let fleet = Fleet::open(settings)?;
    let service = fleet.service()?;
    let source_db = fleet.node(source)?;
    // No new users on the source from now on; its users are moved below.
    let source_id = {
        let mut conn = fleet.tokenserver.get()?;
        conn.write_transaction(|tx| -> Result<i64, AdminError> {
            let node = ts::node_by_url(tx, service, source)?.ok_or_else(|| {
                AdminError::Invalid(format!("{source} is not one of the tokenserver's nodes"))
            })?;
            ts::update_node(tx, node.id, &NodeFields { backoff: Some(1), ..NodeFields::default() })?;
            Ok(node.id)
        })?
    };
    let targets: Vec<String> = if args.to.is_empty() {
        let mut conn = fleet.tokenserver.get()?;
        conn.single_statement(|tx| ts::list_nodes(tx, service))?
            .into_iter()
            .filter(|n| n.node != source && n.downed == 0 && n.backoff == 0 && fleet.node(&n.node).is_ok())
            .map(|n| n.node)
            .collect()
    } else {
        args.to.iter().map(|t| node_url(t)).collect::<Result<_, _>>()?
    };
    if targets.is_empty() {
        return Err(AdminError::Invalid(
            "no node to move the users to: give --to NODE, or add a node that is neither downed nor backed off".into(),
        ));
    }
    for target in &targets {
        fleet.node(target)?;
        if target == source {
            return Err(AdminError::Invalid(format!("{source} cannot be its own target")));
        }
    }

    // The work: first the moves an earlier run left unfinished (held on the source, or copied
    // and switched but not released), each to its own target; then every live user of the node.
    let mut work: Vec<(i64, Option<String>)> = Vec::new();
    {
        let mut conn = source_db.pool.get()?;
        let mut after = 0;
        loop {
            let held = conn.single_statement(|tx| q::users_in_state(tx, HELD, after, PAGE))?;
            let Some(&last) = held.last() else { break };
            for uid in held {
                let peer = conn.single_statement(|tx| q::marker(tx, uid))?.map(|m| m.peer);
                work.push((uid, peer));
            }
            after = last;
        }
    }
    for target in &targets {
        let mut conn = fleet.node(target)?.pool.get()?;
        let mut after = 0;
        loop {
            let incoming = conn.single_statement(|tx| q::users_in_state(tx, INCOMING, after, PAGE))?;
            let Some(&last) = incoming.last() else { break };
            for uid in incoming {
                if conn.single_statement(|tx| q::marker(tx, uid))?.is_some_and(|m| m.peer == source) {
                    work.push((uid, Some(target.clone())));
                }
            }
            after = last;
        }
    }
    let unfinished: std::collections::HashSet<i64> = work.iter().map(|(uid, _)| *uid).collect();
    {
        let mut conn = fleet.tokenserver.get()?;
        let mut after = 0;
        loop {
            let users =
                conn.single_statement(|tx| q::live_users_on_node(tx, service, source_id, after, PAGE))?;
            let Some(&last) = users.last() else { break };
            work.extend(users.into_iter().filter(|u| !unfinished.contains(u)).map(|u| (u, None)));
            after = last;
        }
    }

    let parallel = args.parallel.unwrap_or_else(|| (fleet.threads(source) / 2).max(1)).max(1);
    let terminal = !args.no_progress && std::io::stderr().is_terminal();
    let bar = if terminal {
        indicatif::ProgressBar::new(work.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "move {bar:30} {pos}/{len} users, {msg} ({elapsed}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    eprintln!(
        "weft: draining {source} by moving {} user(s) to {} ({parallel} at once{})",
        work.len(),
        targets.join(", "),
        args.rate.map_or(String::new(), |r| format!(", at most {r} per second"))
    );
    let started = Instant::now();
    let queue = Mutex::new(work.into_iter().enumerate());
    let totals = Mutex::new(Totals::default());
    let pace = Mutex::new(Instant::now());
    let last_log = Mutex::new(Instant::now());
    let interval = args.rate.filter(|r| *r > 0.0).map(|r| Duration::from_secs_f64(1.0 / r));
    std::thread::scope(|scope| {
        for _ in 0..parallel {
            scope.spawn(|| loop {
                let Some((n, (uid, target))) = queue.lock().unwrap_or_else(PoisonError::into_inner).next()
                else {
                    return;
                };
                if let Some(interval) = interval {
                    let wait = {
                        let mut next = pace.lock().unwrap_or_else(PoisonError::into_inner);
                        let now = Instant::now();
                        let slot = (*next).max(now);
                        *next = slot + interval;
                        slot - now
                    };
                    std::thread::sleep(wait);
                }
                let target = target.unwrap_or_else(|| targets[n % targets.len()].clone());
                let result = fleet
                    .node(&target)
                    .and_then(|t| Ok(move_user(&fleet.tokenserver, source_db, t, uid, fleet.settings)?));
                let mut totals = totals.lock().unwrap_or_else(PoisonError::into_inner);
                match result {
                    Ok(MoveOutcome::Moved { bsos, bytes, held }) => {
                        totals.moved += 1;
                        totals.bsos += bsos;
                        totals.bytes += bytes;
                        totals.held_ms.push(held.as_millis() as u64);
                    }
                    Ok(MoveOutcome::AlreadyThere) => totals.already += 1,
                    Err(err) => {
                        totals.failed += 1;
                        bar.suspend(|| eprintln!("weft: user {uid}: not moved: {err}"));
                    }
                }
                bar.inc(1);
                bar.set_message(format!(
                    "{} moved, {} failed, {} bytes",
                    totals.moved, totals.failed, totals.bytes
                ));
                let mut last = last_log.lock().unwrap_or_else(PoisonError::into_inner);
                if !terminal && last.elapsed() >= LOG_EVERY {
                    *last = Instant::now();
                    eprintln!(
                        "weft: drain {source}: {} moved, {} failed, {} bytes, {:.1} s",
                        totals.moved,
                        totals.failed,
                        totals.bytes,
                        started.elapsed().as_secs_f64()
                    );
                }
            });
        }
    });
    bar.finish_and_clear();
    let mut totals = totals.into_inner().unwrap_or_else(PoisonError::into_inner);
    totals.held_ms.sort_unstable();
    let seconds = started.elapsed().as_secs_f64();
    let held = |q: f64| {
        totals.held_ms.get(((totals.held_ms.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0)
    };
    println!(
        "drained node {source} by moving users: {} moved ({:.1} users/s), {} already moved, {} failed; \
         {} records, {} bytes; writes held per user: median {} ms, p99 {} ms, longest {} ms; {seconds:.1} s",
        totals.moved,
        totals.moved as f64 / seconds.max(0.001),
        totals.already,
        totals.failed,
        totals.bsos,
        totals.bytes,
        held(0.5),
        held(0.99),
        totals.held_ms.last().copied().unwrap_or(0),
    );
    if totals.failed > 0 {
        return Err(AdminError::Invalid(format!(
            "{} user(s) not moved (see above): run the same command again to finish",
            totals.failed
        )));
    }
    println!(
        "{source} answers the moved users 401 for the next {} s (token lifetime and grace); then the deleter removes \
         their data there. Next: `weft node remove {source}`, then delete it from every webhead's configuration \
         and `weft reload` them",
        fleet.settings.token_lifetime.as_secs()
    );
    Ok(())
}
