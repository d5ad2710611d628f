//! One HTTP run from start to end: mint every user's credentials (or, with `--tokenserver`,
//! leave them to the setup's token request), probe the tokenserver when the scenario needs it,
//! run the setup phase (every user once), the measured phase (tasks drawing users until the
//! budget is spent, with a progress bar; a user told 401 fetches a new token, one told to come
//! back later is left alone until then), and the verify phase (read back every acknowledged
//! write). Returns the merged results for the report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use tokio::sync::Mutex;

use crate::auth::Credentials;
use crate::cli::{Options, Scenario};
use crate::http::{Request, Session, Shared, Stop};
use crate::ledger::{Ledger, StoredRows, VerifyOutcome};
use crate::report::{cpu_seconds, Outcome};
use crate::scenarios::{self, token::TOKEN_PATH, User};
use crate::stats::{Budget, Stats};

/// Tokens outlive the longest allowed run plus setup and verify.
const TOKEN_LIFETIME_S: u64 = 3 * 3600;
/// Page size of the verify read-back.
const VERIFY_PAGE: usize = 1000;
/// Attempts of one collection's read-back when a node answers 401 (new token) or 503 with
/// `Retry-After` (wait) before it counts as unreadable.
const VERIFY_ATTEMPTS: usize = 4;

/// Why a run could not produce a result.
#[derive(Debug)]
pub enum RunError {
    /// The target has no tokenserver (404 on `GET /1.0/sync/1.5`).
    NoTokenserver(String),
    Failed(String),
}

pub async fn run_http(opts: Options) -> Result<Outcome, RunError> {
    let shared = Arc::new(Shared::new(opts).map_err(RunError::Failed)?);
    let opts = &shared.opts;
    if opts.scenario == Scenario::Token || opts.tokenserver {
        probe_tokenserver(&shared).await?;
    }
    let users: Arc<Vec<Mutex<User>>> = Arc::new(
        (0..opts.users)
            .map(|i| {
                let uid = opts.first_uid + i;
                let creds = if opts.tokenserver {
                    // No token until the setup asks the tokenserver for one.
                    Credentials::issued(uid, String::new(), String::new(), None)
                } else {
                    Credentials::mint(&opts.master_secret, &opts.node_url, uid, TOKEN_LIFETIME_S)
                };
                Mutex::new(User::new(uid, creds))
            })
            .collect(),
    );

    // Setup: every user once, in parallel, outside the measurement.
    let setup_started = Instant::now();
    let (setup, setup_ledger) = phase(&shared, &users, Arc::new(Budget::unbounded()), Phase::Setup).await;
    let setup_elapsed = setup_started.elapsed();
    if setup.error_count() > 0 {
        eprintln!("weft-loadtest: setup had {} errors", setup.error_count());
    }

    let budget = Arc::new(Budget::new(opts.bounds.duration, opts.bounds.requests));
    let progress = progress_bar(opts, budget.clone());
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let (main, mut ledger) = phase(&shared, &users, budget, Phase::Measure).await;
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    ledger.merge(setup_ledger);

    let verify = if opts.verify { Some(verify(&shared, &users, ledger).await) } else { None };
    Ok(Outcome { main, elapsed, cpu, setup: Some((setup, setup_elapsed)), verify })
}

/// A GET without credentials: a tokenserver answers 401, a server without one 404.
async fn probe_tokenserver(shared: &Arc<Shared>) -> Result<(), RunError> {
    let mut s = Session::new(shared.clone(), Arc::new(Budget::unbounded()), StdRng::seed_from_u64(0));
    let req = Request::unauthenticated(Method::GET, TOKEN_PATH.to_string());
    match s.send("probe", req).await {
        Ok(reply) if reply.status == 404 => Err(RunError::NoTokenserver(format!(
            "the server at {} has no tokenserver: GET {TOKEN_PATH} answered 404",
            shared.opts.target
        ))),
        Ok(_) => Ok(()),
        Err(_) => Err(RunError::Failed(format!(
            "cannot reach {}: {}",
            shared.opts.target,
            s.stats.errors.keys().next().cloned().unwrap_or_default()
        ))),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Setup,
    Measure,
}

/// Runs `concurrency` tasks over the users. Setup visits every user exactly once; the measured
/// phase draws users (in turn for `launch`, at random otherwise) until the budget is spent.
async fn phase(
    shared: &Arc<Shared>,
    users: &Arc<Vec<Mutex<User>>>,
    budget: Arc<Budget>,
    which: Phase,
) -> (Stats, Ledger) {
    let opts = &shared.opts;
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(opts.concurrency);
    for task in 0..opts.concurrency {
        let (shared, users, budget, next) = (shared.clone(), users.clone(), budget.clone(), next.clone());
        let seed = opts
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(task as u64 + if which == Phase::Setup { 0 } else { 7919 });
        tasks.push(tokio::spawn(async move {
            let scenario = shared.opts.scenario;
            let mut s = Session::new(shared, budget.clone(), StdRng::seed_from_u64(seed));
            let count = users.len() as u64;
            loop {
                let index = match which {
                    Phase::Setup => {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            break;
                        }
                        i
                    }
                    Phase::Measure if !budget.is_open() => break,
                    Phase::Measure if scenario == Scenario::Launch => {
                        next.fetch_add(1, Ordering::Relaxed) % count
                    }
                    Phase::Measure => s.rng.gen_range(0..count),
                };
                let mut user = users[index as usize].lock().await;
                if which == Phase::Measure && user.backing_off() {
                    drop(user);
                    tokio::task::yield_now().await;
                    continue;
                }
                let result = match which {
                    Phase::Setup => scenarios::setup(scenario, &mut s, &mut user).await,
                    Phase::Measure => scenarios::iteration(scenario, &mut s, &mut user).await,
                };
                match result {
                    Err(Stop::Budget) => break,
                    Err(Stop::Unauthorized) => {
                        if scenarios::token::fetch_token(&mut s, &mut user).await == Err(Stop::Budget) {
                            break;
                        }
                    }
                    Err(Stop::Held(retry_after)) => user.not_before = Some(Instant::now() + retry_after),
                    Ok(()) | Err(Stop::Failed) => {}
                }
            }
            (s.stats, s.ledger)
        }));
    }
    let mut stats = Stats::default();
    let mut ledger = Ledger::default();
    for task in tasks {
        match task.await {
            Ok((task_stats, task_ledger)) => {
                stats.merge(task_stats);
                if let Some(l) = task_ledger {
                    ledger.merge(l);
                }
            }
            Err(e) => stats.error("task", format!("client task panicked: {e}")),
        }
    }
    (stats, ledger)
}

/// A bar over the requests bound when there is one, else over the duration.
pub(crate) fn progress_bar(opts: &Options, budget: Arc<Budget>) -> Option<ProgressBar> {
    if !opts.progress {
        return None;
    }
    let started = Instant::now();
    let (len, by_requests) = match (opts.bounds.requests, opts.bounds.duration) {
        (Some(r), _) => (r, true),
        (None, Some(d)) => (d.as_millis() as u64, false),
        (None, None) => return None,
    };
    let bar = ProgressBar::new(len);
    let template = if by_requests {
        "{spinner} {msg} [{bar:40}] {pos}/{len} requests"
    } else {
        "{spinner} {msg} [{bar:40}] {elapsed}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(opts.scenario.name());
    // Refreshed from the budget until the run finishes the bar.
    let updater = bar.clone();
    tokio::spawn(async move {
        while !updater.is_finished() {
            let issued = budget.issued();
            let rate = issued as f64 / started.elapsed().as_secs_f64().max(0.001);
            updater.set_message(format!("{rate:.0} req/s"));
            updater.set_position(if by_requests { issued } else { started.elapsed().as_millis() as u64 });
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    Some(bar)
}

/// Reads back every collection the ledger names (full records, paged) and compares.
async fn verify(
    shared: &Arc<Shared>,
    users: &Arc<Vec<Mutex<User>>>,
    ledger: Ledger,
) -> (Stats, VerifyOutcome) {
    let ledger = Arc::new(ledger);
    let work = Arc::new(ledger.collections());
    let next = Arc::new(AtomicU64::new(0));
    let budget = Arc::new(Budget::unbounded());
    let mut tasks = Vec::new();
    for task in 0..shared.opts.concurrency {
        let (shared, users, ledger, work, next, budget) =
            (shared.clone(), users.clone(), ledger.clone(), work.clone(), next.clone(), budget.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = Session::new(shared, budget, StdRng::seed_from_u64(task as u64));
            let mut outcome = VerifyOutcome::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(&(uid, collection)) = work.get(i) else { break };
                let first_uid = s.shared.opts.first_uid;
                let mut user = users[(uid - first_uid) as usize].lock().await;
                let mut rows = Err(Stop::Failed);
                for _ in 0..VERIFY_ATTEMPTS {
                    rows = read_back(&mut s, &user.creds, collection).await;
                    match rows {
                        Err(Stop::Unauthorized) => {
                            let _ = scenarios::token::fetch_token(&mut s, &mut user).await;
                        }
                        Err(Stop::Held(retry_after)) => tokio::time::sleep(retry_after).await,
                        _ => break,
                    }
                }
                // Unreadable: every acknowledged item of it counts as missing.
                outcome.add(ledger.check(uid, collection, &rows.unwrap_or_default()));
            }
            (s.stats, outcome)
        }));
    }
    let mut stats = Stats::default();
    let mut outcome = VerifyOutcome::default();
    for task in tasks {
        match task.await {
            Ok((st, o)) => {
                stats.merge(st);
                outcome.add(o);
            }
            Err(e) => stats.error("verify", format!("verify task panicked: {e}")),
        }
    }
    (stats, outcome)
}

/// Every live record of one collection, following `X-Weave-Next-Offset`.
async fn read_back(
    s: &mut Session,
    creds: &Credentials,
    collection: &'static str,
) -> Result<StoredRows, Stop> {
    let mut rows = StoredRows::new();
    let mut offset: Option<String> = None;
    loop {
        let mut path = format!("/1.5/{}/storage/{collection}?full=1&limit={VERIFY_PAGE}", creds.uid);
        if let Some(o) = &offset {
            path.push_str(&format!("&offset={o}"));
        }
        let reply = s.call("verify: GET collection?full=1", Request::get(path, creds), &[200]).await?;
        let Some(serde_json::Value::Array(items)) = reply.json() else {
            s.stats.error("verify: GET collection?full=1", "body is not a JSON array".into());
            return Err(Stop::Failed);
        };
        s.stats.records_read += items.len() as u64;
        for item in items {
            let id = item.get("id").and_then(|v| v.as_str()).unwrap_or_default().to_string();
            let modified =
                item.get("modified").and_then(|v| v.as_f64()).map_or(0, |m| (m * 1000.0).round() as i64);
            let payload = item.get("payload").and_then(|v| v.as_str()).unwrap_or_default().to_string();
            rows.push((id, modified, payload));
        }
        match reply.header("X-Weave-Next-Offset") {
            Some(next) => offset = Some(next.to_string()),
            None => return Ok(rows),
        }
    }
}
