//! Raw limit mode (`--raw DATABASE_URL`): the scenario's database work done directly through the
//! storage engine (`weft_actors::storage`), without HTTP, Hawk or actors, so an HTTP result can be read as
//! a fraction of what the database itself does on this machine. Each HTTP request of a scenario
//! is the very `Operation` the storage node's shard runs for it (`GetCollections`, `GetBsos`,
//! `PostBsos` with or without a batch, `GetBso`) on a `Storage` over the same kind of pool, so
//! both modes share every line of database work: transactions, retries, SQLite's writer queue,
//! write timestamps, merging and expiry. Worker threads stand in for client tasks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weft_actors::storage::{
    BatchMode, BsoInput, BsoQuery, GetBso, GetBsos, GetCollections, Operation, PostBsos, PostOutcome,
    Precondition, Sort, Storage, StorageConfig, StorageError,
};
use weft_schema::{DbPool, PoolSettings, SyncTimestamp};

use crate::cli::{Options, Scenario};
use crate::ledger::{Ledger, StoredRows, VerifyOutcome};
use crate::payload::{Bso, PayloadPool};
use crate::report::{cpu_seconds, Outcome};
use crate::scenarios::launch::{launch_id, share, LAUNCH_COLLECTIONS};
// The sync mix is the HTTP scenario's, so both modes do the same work.
use crate::scenarios::sync::{CLIENTS, HISTORY, MAX_NEW_VISITS, META_REFRESH, QUIET_SYNCS, TABS, TABS_TTL_S};
use crate::scenarios::write::WRITE_COLLECTIONS;
use crate::stats::{Budget, Stats};

const SEED_COMMITS: usize = 4;
/// The `node` label of the engine's metrics (no recorder is installed: they go nowhere).
const RAW_NODE: &str = "raw";

struct RawUser {
    uid: u64,
    /// `newer` bounds (ms) of the seeded history, read scenario.
    markers: Vec<i64>,
}

/// Why a raw operation did not complete.
enum Halt {
    Budget,
    Failed,
}

struct Worker<'a> {
    db: &'a Storage,
    opts: &'a Options,
    pool: &'a PayloadPool,
    budget: &'a Budget,
    stats: Stats,
    ledger: Option<Ledger>,
    rng: StdRng,
}

pub async fn run_raw(opts: Options, url: String) -> Result<Outcome, String> {
    let opts = Arc::new(opts);
    let settings = PoolSettings {
        max_size: opts.concurrency as u32 + 1,
        connection_timeout: Duration::from_secs(30),
        sqlite_busy_timeout: Duration::from_secs(30),
        sqlite_synchronous: Default::default(),
    };
    let db = tokio::task::spawn_blocking(move || open(&url, &settings))
        .await
        .map_err(|e| format!("opening the database panicked: {e}"))??;
    let db = Arc::new(db);
    let users: Arc<Vec<Mutex<RawUser>>> = Arc::new(
        (0..opts.users).map(|i| Mutex::new(RawUser { uid: opts.first_uid + i, markers: vec![] })).collect(),
    );
    let pool = Arc::new(PayloadPool::new(opts.seed));

    let setup_started = Instant::now();
    let (setup, setup_ledger) = workers(&opts, &db, &users, &pool, Arc::new(Budget::unbounded()), true).await;
    let setup_elapsed = setup_started.elapsed();

    let budget = Arc::new(Budget::new(opts.bounds.duration, opts.bounds.requests));
    let progress = crate::run::progress_bar(&opts, budget.clone());
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let (main, mut ledger) = workers(&opts, &db, &users, &pool, budget, false).await;
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    ledger.merge(setup_ledger);
    let verify = if opts.verify {
        let db = db.clone();
        Some(
            tokio::task::spawn_blocking(move || verify(&db, &ledger))
                .await
                .map_err(|e| format!("verify panicked: {e}"))?,
        )
    } else {
        None
    };
    Ok(Outcome { main, elapsed, cpu, setup: Some((setup, setup_elapsed)), verify })
}

fn open(url: &str, settings: &PoolSettings) -> Result<Storage, String> {
    let pool = DbPool::connect(url, settings).map_err(|e| format!("--raw: {e}"))?;
    pool.run_migrations().map_err(|e| format!("--raw: {e}"))?;
    Ok(Storage::new(RAW_NODE, pool, storage_config()))
}

/// The server's default `limits`, `quota` and `batch` settings (src/config/), which the
/// benchmarks run the server with.
fn storage_config() -> StorageConfig {
    StorageConfig {
        max_read_records: 10_000,
        max_total_records: 10_000,
        max_total_bytes: 262_144_000,
        quota_enabled: false,
        quota_enforce: false,
        quota_limit_bytes: 2_097_152_000,
        batch_ttl_ms: 7_200_000,
        max_open_batches: 100,
        max_user_collections: 150,
    }
}

/// Runs `concurrency` blocking workers; setup visits each user once, the measured phase draws
/// users until the budget is spent.
async fn workers(
    opts: &Arc<Options>,
    db: &Arc<Storage>,
    users: &Arc<Vec<Mutex<RawUser>>>,
    pool: &Arc<PayloadPool>,
    budget: Arc<Budget>,
    setup: bool,
) -> (Stats, Ledger) {
    let next = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for task in 0..opts.concurrency {
        let (opts, db, users, pool, budget, next) =
            (opts.clone(), db.clone(), users.clone(), pool.clone(), budget.clone(), next.clone());
        handles.push(tokio::task::spawn_blocking(move || {
            let seed =
                opts.seed.wrapping_mul(1_000_003).wrapping_add(task as u64 + if setup { 0 } else { 7919 });
            let mut w = Worker {
                db: &db,
                opts: &opts,
                pool: &pool,
                budget: &budget,
                stats: Stats::default(),
                ledger: opts.verify.then(Ledger::default),
                rng: StdRng::seed_from_u64(seed),
            };
            let count = users.len() as u64;
            loop {
                let index = if setup {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    i
                } else if !budget.is_open() {
                    break;
                } else if opts.scenario == Scenario::Launch {
                    next.fetch_add(1, Ordering::Relaxed) % count
                } else {
                    w.rng.gen_range(0..count)
                };
                let mut user = users[index as usize].lock().unwrap_or_else(|e| e.into_inner());
                let result = if setup { w.setup(&mut user) } else { w.iteration(&mut user) };
                if let Err(Halt::Budget) = result {
                    break;
                }
            }
            (w.stats, w.ledger)
        }));
    }
    let mut stats = Stats::default();
    let mut ledger = Ledger::default();
    for handle in handles {
        match handle.await {
            Ok((s, l)) => {
                stats.merge(s);
                if let Some(l) = l {
                    ledger.merge(l);
                }
            }
            Err(e) => stats.error("worker", format!("raw worker panicked: {e}")),
        }
    }
    (stats, ledger)
}

impl Worker<'_> {
    /// Runs one storage operation, as the shard would, as one measured operation.
    fn op<Q: Operation>(&mut self, kind: &'static str, op: Q) -> Result<Q::Output, Halt> {
        if !self.budget.take() {
            return Err(Halt::Budget);
        }
        let start = Instant::now();
        let result = self.db.execute(&op);
        self.stats.record(kind, start.elapsed(), None);
        result.map_err(|e| {
            self.stats.error(kind, e.to_string());
            Halt::Failed
        })
    }

    fn setup(&mut self, user: &mut RawUser) -> Result<(), Halt> {
        match self.opts.scenario {
            Scenario::Read => {
                let total = self.opts.records_per_user;
                let per_commit = total.div_ceil(SEED_COMMITS);
                let mut markers = vec![0];
                let mut left = total;
                while left > 0 {
                    let count = per_commit.min(left);
                    left -= count;
                    let records = self.pool.records(&mut self.rng, count, self.opts.payload_bytes);
                    let t = self.upload(user.uid, "history", &records)?;
                    if left > 0 {
                        markers.push(t);
                    }
                }
                user.markers = markers;
                Ok(())
            }
            Scenario::Sync => {
                for (collection, id) in [("meta", "global"), ("crypto", "keys")] {
                    let record = Bso {
                        id: id.into(),
                        payload: self.pool.payload(&mut self.rng, self.opts.payload_bytes),
                        sortindex: None,
                        ttl: None,
                    };
                    self.post("raw setup: PUT meta/global, crypto/keys", user.uid, collection, &[record])?;
                }
                Ok(())
            }
            Scenario::Write | Scenario::Launch | Scenario::Token => Ok(()),
        }
    }

    fn iteration(&mut self, user: &mut RawUser) -> Result<(), Halt> {
        let size = self.opts.payload_bytes;
        match self.opts.scenario {
            Scenario::Write => {
                let collection = WRITE_COLLECTIONS[self.rng.gen_range(0..WRITE_COLLECTIONS.len())];
                let records = self.pool.records(&mut self.rng, self.opts.records_per_post, size);
                self.post("raw POST", user.uid, collection, &records).map(|_| ())
            }
            Scenario::Read => {
                self.info_collections(user.uid)?;
                let newer = if user.markers.is_empty() {
                    0
                } else {
                    user.markers[self.rng.gen_range(0..user.markers.len())]
                };
                self.find(user.uid, "history", Some(newer), 100, "raw GET history?newer&full=1&limit=100")
            }
            Scenario::Launch => {
                for (collection, fraction, prefix) in LAUNCH_COLLECTIONS {
                    let count = share(self.opts.records_per_user, fraction);
                    let records: Vec<Bso> = (0..count)
                        .map(|i| Bso {
                            id: launch_id(prefix, i),
                            payload: self.pool.payload(&mut self.rng, size),
                            sortindex: Some(((i * 7) % 100) as i32),
                            ttl: None,
                        })
                        .collect();
                    self.upload(user.uid, collection, &records)?;
                }
                Ok(())
            }
            Scenario::Sync => self.sync(user.uid),
            Scenario::Token => Ok(()),
        }
    }

    /// The database side of one `sync` iteration (see `scenarios::sync`).
    fn sync(&mut self, uid: u64) -> Result<(), Halt> {
        let size = self.opts.payload_bytes;
        self.info_collections(uid)?;
        if self.rng.gen_bool(QUIET_SYNCS) {
            return Ok(());
        }
        if self.rng.gen_bool(META_REFRESH) {
            for (collection, id) in [("meta", "global"), ("crypto", "keys")] {
                self.get_item(uid, collection, id)?;
            }
        }
        let device = format!("device{:06}", uid % 1_000_000);
        if self.rng.gen_bool(TABS) {
            let record = Bso {
                id: device.clone(),
                payload: self.pool.payload(&mut self.rng, size),
                sortindex: None,
                ttl: Some(TABS_TTL_S),
            };
            self.post("raw PUT tabs", uid, "tabs", &[record])?;
            self.find(uid, "tabs", None, 10_000, "raw GET tabs?full=1")?;
        }
        if self.rng.gen_bool(HISTORY) {
            self.find(
                uid,
                "history",
                Some(SyncTimestamp::now().as_millis()),
                1000,
                "raw GET history?newer&full=1",
            )?;
            let count = self.rng.gen_range(1..=MAX_NEW_VISITS.min(self.opts.records_per_post));
            let records = self.pool.records(&mut self.rng, count, size);
            self.post("raw POST history", uid, "history", &records)?;
        }
        if self.rng.gen_bool(CLIENTS) {
            let record = Bso {
                id: device,
                payload: self.pool.payload(&mut self.rng, size),
                sortindex: None,
                ttl: Some(TABS_TTL_S),
            };
            self.post("raw PUT clients", uid, "clients", &[record])?;
            self.find(uid, "clients", None, 10_000, "raw GET clients?full=1")?;
        }
        Ok(())
    }

    fn info_collections(&mut self, uid: u64) -> Result<(), Halt> {
        self.op("raw info/collections", GetCollections { uid, precondition: Precondition::None }).map(|_| ())
    }

    fn get_item(&mut self, uid: u64, collection: &'static str, id: &str) -> Result<(), Halt> {
        if !self.budget.take() {
            return Err(Halt::Budget);
        }
        let kind = "raw GET meta/global, crypto/keys";
        let op =
            GetBso { uid, collection: collection.into(), id: id.into(), precondition: Precondition::None };
        let start = Instant::now();
        let result = self.db.execute(&op);
        self.stats.record(kind, start.elapsed(), None);
        match result {
            // As over HTTP, a missing item is an answer (404), not a failure.
            Ok(_) | Err(StorageError::NotFound) => Ok(()),
            Err(e) => {
                self.stats.error(kind, e.to_string());
                Err(Halt::Failed)
            }
        }
    }

    /// A collection read as `GET storage/<collection>?full=1&newer=…&limit=…` runs it.
    fn find(
        &mut self,
        uid: u64,
        collection: &'static str,
        newer: Option<i64>,
        limit: u64,
        kind: &'static str,
    ) -> Result<(), Halt> {
        let query = BsoQuery {
            newer: newer.map(SyncTimestamp::from_millis),
            sort: Sort::Newest,
            limit: Some(limit),
            full: true,
            ..BsoQuery::default()
        };
        let op = GetBsos { uid, collection: collection.into(), query, precondition: Precondition::None };
        let page = self.op(kind, op)?;
        self.stats.records_read += page.value.items.len() as u64;
        Ok(())
    }

    /// One POST of `records`: plain (`batch` None, or `Create` with `commit`), or a step of a
    /// batch upload. Returns the outcome.
    fn send_post(
        &mut self,
        kind: &'static str,
        uid: u64,
        collection: &'static str,
        records: &[Bso],
        batch: Option<BatchMode>,
        commit: bool,
    ) -> Result<PostOutcome, Halt> {
        let op = PostBsos {
            uid,
            collection: collection.into(),
            bsos: records.iter().map(input).collect(),
            batch,
            commit,
            precondition: Precondition::None,
        };
        Ok(self.op(kind, op)?.outcome)
    }

    /// A plain POST (= `?batch=true&commit=true`): returns the write time.
    fn post(
        &mut self,
        kind: &'static str,
        uid: u64,
        collection: &'static str,
        records: &[Bso],
    ) -> Result<i64, Halt> {
        let outcome = self.send_post(kind, uid, collection, records, None, false)?;
        let t = committed(kind, outcome, &mut self.stats)?;
        self.acknowledge(uid, collection, records, t);
        Ok(t)
    }

    /// A batch upload as `scenarios::upload` sends it: returns the commit time.
    fn upload(&mut self, uid: u64, collection: &'static str, records: &[Bso]) -> Result<i64, Halt> {
        let chunks: Vec<&[Bso]> = records.chunks(self.opts.records_per_post).collect();
        if chunks.len() <= 1 {
            return self.post("raw POST (batch=true&commit=true)", uid, collection, records);
        }
        let kind = "raw POST (batch=true)";
        let batch = match self.send_post(kind, uid, collection, chunks[0], Some(BatchMode::Create), false)? {
            PostOutcome::Staged { batch, .. } => batch,
            PostOutcome::Committed { .. } => {
                self.stats.error(kind, "a batch was committed at creation".into());
                return Err(Halt::Failed);
            }
        };
        let last = chunks.len() - 1;
        for chunk in &chunks[1..last] {
            let append = Some(BatchMode::Append(batch));
            self.send_post("raw POST (batch append)", uid, collection, chunk, append, false)?;
        }
        let kind = "raw POST (batch commit)";
        let outcome =
            self.send_post(kind, uid, collection, chunks[last], Some(BatchMode::Append(batch)), true)?;
        let t = committed(kind, outcome, &mut self.stats)?;
        self.acknowledge(uid, collection, records, t);
        Ok(t)
    }

    fn acknowledge(&mut self, uid: u64, collection: &'static str, records: &[Bso], t: i64) {
        self.stats.records_written += records.len() as u64;
        if let Some(ledger) = self.ledger.as_mut() {
            for r in records {
                ledger.ack(uid, collection, &r.id, t, &r.payload);
            }
        }
    }
}

fn input(record: &Bso) -> BsoInput {
    BsoInput {
        id: record.id.clone(),
        sortindex: record.sortindex,
        payload: Some(record.payload.clone()),
        ttl: record.ttl,
    }
}

/// The write time of a POST that must have been applied.
fn committed(kind: &'static str, outcome: PostOutcome, stats: &mut Stats) -> Result<i64, Halt> {
    match outcome {
        PostOutcome::Committed { modified } => Ok(modified.as_millis()),
        PostOutcome::Staged { .. } => {
            stats.error(kind, "a commit was only staged".into());
            Err(Halt::Failed)
        }
    }
}

/// Reads back every collection of the ledger through the engine, page by page.
fn verify(db: &Storage, ledger: &Ledger) -> (Stats, VerifyOutcome) {
    let mut stats = Stats::default();
    let mut outcome = VerifyOutcome::default();
    for (uid, collection) in ledger.collections() {
        let mut stored: StoredRows = Vec::new();
        let mut offset = None;
        loop {
            let query = BsoQuery { full: true, offset, ..BsoQuery::default() };
            let op = GetBsos { uid, collection: collection.into(), query, precondition: Precondition::None };
            let start = Instant::now();
            let page = db.execute(&op);
            stats.record("raw verify: read collection", start.elapsed(), None);
            match page {
                Ok(page) => {
                    let page = page.value;
                    stored.extend(page.items.into_iter().map(|b| (b.id, b.modified.as_millis(), b.payload)));
                    match page.next_offset {
                        Some(next) => offset = Some(next),
                        None => break,
                    }
                }
                Err(e) => {
                    stats.error("raw verify: read collection", e.to_string());
                    break;
                }
            }
        }
        stats.records_read += stored.len() as u64;
        outcome.add(ledger.check(uid, collection, &stored));
    }
    (stats, outcome)
}
