//! Raw limit mode (`--raw DATABASE_URL`): the scenario's database work done directly through the
//! schema crate, without HTTP, Hawk or actors, so an HTTP result can be read as a fraction of
//! what the database itself does on this machine. Each HTTP request of a scenario maps to the
//! transaction the storage node runs for it (actors/src/shard): a POST is one write transaction
//! with the collection row lock, one read of the existing rows, one multi-row upsert and the
//! collection timestamp update; batch creation, appends and commits use the batch tables the same
//! way; reads take the collection's read lock and run the same `find_bsos`. SQLite writers are
//! queued on one mutex as the server queues them. Worker threads stand in for client tasks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weft_schema::models::{NewBso, StagedBso};
use weft_schema::pool::{Backend, Tx};
use weft_schema::queries::storage::{self, BsoFilter, Lock, Order};
use weft_schema::{DbError, DbPool, PoolSettings, SyncTimestamp};

use crate::cli::{Options, Scenario};
use crate::ledger::{Ledger, StoredRows, VerifyOutcome};
use crate::payload::{Bso, PayloadPool};
use crate::report::{cpu_seconds, Outcome};
use crate::scenarios::launch::{launch_id, share, LAUNCH_COLLECTIONS};
// The sync mix is the HTTP scenario's, so both modes do the same work.
use crate::scenarios::sync::{CLIENTS, HISTORY, MAX_NEW_VISITS, META_REFRESH, QUIET_SYNCS, TABS, TABS_TTL_S};
use crate::scenarios::write::WRITE_COLLECTIONS;
use crate::stats::{Budget, Stats};

/// Every collection a scenario touches, registered once before the run.
const COLLECTIONS: [&str; 8] =
    ["history", "bookmarks", "forms", "passwords", "tabs", "clients", "meta", "crypto"];
/// The server's "never expires" offset (actors/src/shard/rules.rs).
const NEVER_EXPIRES_MS: i64 = 2_100_000_000_000;
/// The server's deadlock retries (actors/src/shard/actor.rs).
const DEADLOCK_ATTEMPTS: u32 = 5;
const SEED_COMMITS: usize = 4;

struct RawUser {
    uid: u64,
    /// `newer` bounds (ms) of the seeded history, read scenario.
    markers: Vec<i64>,
}

struct Db {
    pool: DbPool,
    ids: HashMap<&'static str, i32>,
    sqlite_writer: Mutex<()>,
}

/// Why a raw operation did not complete.
enum Halt {
    Budget,
    Failed,
}

struct Worker<'a> {
    db: &'a Db,
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

fn open(url: &str, settings: &PoolSettings) -> Result<Db, String> {
    let pool = DbPool::connect(url, settings).map_err(|e| format!("--raw: {e}"))?;
    pool.run_migrations().map_err(|e| format!("--raw: {e}"))?;
    let mut conn = pool.get().map_err(|e| format!("--raw: {e}"))?;
    let ids = conn
        .write_transaction(|tx| {
            COLLECTIONS
                .iter()
                .map(|name| Ok((*name, storage::create_collection(tx, name)?)))
                .collect::<Result<HashMap<_, _>, DbError>>()
        })
        .map_err(|e| format!("--raw: registering collections: {e}"))?;
    Ok(Db { pool, ids, sqlite_writer: Mutex::new(()) })
}

/// Runs `concurrency` blocking workers; setup visits each user once, the measured phase draws
/// users until the budget is spent.
async fn workers(
    opts: &Arc<Options>,
    db: &Arc<Db>,
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

/// The ms write timestamp after a collection last modified at `current`.
fn write_time(current: i64) -> i64 {
    let now = SyncTimestamp::now().as_millis();
    if now > current {
        now
    } else {
        current + 10
    }
}

impl Worker<'_> {
    /// Runs `op` in a (read or write) transaction as one measured operation.
    fn op<T>(
        &mut self,
        kind: &'static str,
        write: bool,
        op: impl Fn(&mut Tx<'_>) -> Result<T, DbError>,
    ) -> Result<T, Halt> {
        if !self.budget.take() {
            return Err(Halt::Budget);
        }
        let start = Instant::now();
        let _writer = (write && self.db.pool.backend() == Backend::Sqlite)
            .then(|| self.db.sqlite_writer.lock().unwrap_or_else(|e| e.into_inner()));
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            let result = self.db.pool.get().and_then(|mut conn| {
                if write {
                    conn.write_transaction(|tx| op(tx))
                } else {
                    conn.read_transaction(|tx| op(tx))
                }
            });
            match result {
                Err(e) if e.is_retryable() && attempt < DEADLOCK_ATTEMPTS => {
                    std::thread::sleep(Duration::from_millis(5 * u64::from(attempt)));
                }
                other => break other,
            }
        };
        self.stats.record(kind, start.elapsed(), None);
        result.map_err(|e| {
            self.stats.error(kind, e.to_string());
            Halt::Failed
        })
    }

    fn id(&self, collection: &str) -> i32 {
        self.db.ids.get(collection).copied().unwrap_or_default()
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
        // As the server: one statement gives the collection and storage timestamps.
        self.op("raw info/collections", false, |tx| Ok(storage::user_collections(tx, uid as i64)?))
            .map(|_| ())
    }

    fn get_item(&mut self, uid: u64, collection: &'static str, id: &str) -> Result<(), Halt> {
        let cid = self.id(collection);
        self.op("raw GET meta/global, crypto/keys", false, |tx| {
            Ok(storage::get_bso(tx, uid as i64, cid, id, SyncTimestamp::now().as_millis())?)
        })
        .map(|_| ())
    }

    /// A collection read as `GET storage/<collection>?full=1&newer=…&limit=…` runs it.
    fn find(
        &mut self,
        uid: u64,
        collection: &'static str,
        newer: Option<i64>,
        limit: i64,
        kind: &'static str,
    ) -> Result<(), Halt> {
        let cid = self.id(collection);
        let rows = self.op(kind, false, |tx| {
            storage::lock_collection(tx, uid as i64, cid, Lock::Read)?;
            let filter = BsoFilter {
                newer,
                order: Some(Order::Newest),
                limit: Some(limit + 1),
                full: true,
                ..BsoFilter::default()
            };
            Ok(storage::find_bsos(tx, uid as i64, cid, &filter, SyncTimestamp::now().as_millis())?)
        })?;
        self.stats.records_read += rows.len().min(limit as usize) as u64;
        Ok(())
    }

    /// A plain POST (= `?batch=true&commit=true`): returns the write time.
    fn post(
        &mut self,
        kind: &'static str,
        uid: u64,
        collection: &'static str,
        records: &[Bso],
    ) -> Result<i64, Halt> {
        let cid = self.id(collection);
        let t = self.op(kind, true, |tx| {
            let (current, _) = storage::lock_or_create_collection(tx, uid as i64, cid)?;
            let t = write_time(current);
            apply(tx, uid as i64, cid, records, t)?;
            storage::set_collection_modified(tx, uid as i64, cid, t)?;
            Ok(t)
        })?;
        self.acknowledge(uid, collection, records, t);
        Ok(t)
    }

    /// A batch upload as `scenarios::upload` sends it: returns the commit time.
    fn upload(&mut self, uid: u64, collection: &'static str, records: &[Bso]) -> Result<i64, Halt> {
        let chunks: Vec<&[Bso]> = records.chunks(self.opts.records_per_post).collect();
        if chunks.len() <= 1 {
            return self.post("raw POST (batch=true&commit=true)", uid, collection, records);
        }
        let cid = self.id(collection);
        let u = uid as i64;
        let batch = self.op("raw POST (batch=true)", true, |tx| {
            storage::lock_collection(tx, u, cid, Lock::Read)?;
            let mut batch = SyncTimestamp::now().as_millis() * 10 + u % 10;
            let mut attempts = 0;
            while !storage::create_batch(tx, batch, u, cid)? {
                attempts += 1;
                if attempts >= 5 {
                    return Err(DbError::Query("batch id collision".into()));
                }
                batch += 1;
            }
            storage::stage_batch_items(tx, batch, u, &staged(chunks[0]))?;
            storage::batch_totals(tx, batch, u)?;
            Ok(batch)
        })?;
        let last = chunks.len() - 1;
        for chunk in &chunks[1..last] {
            self.op("raw POST (batch append)", true, |tx| {
                storage::lock_collection(tx, u, cid, Lock::Read)?;
                storage::lock_batch(tx, batch, u)?;
                storage::stage_batch_items(tx, batch, u, &staged(chunk))?;
                Ok(storage::batch_totals(tx, batch, u)?)
            })?;
        }
        let body = chunks[last];
        let t = self.op("raw POST (batch commit)", true, |tx| {
            let (current, _) = storage::lock_or_create_collection(tx, u, cid)?;
            storage::lock_batch(tx, batch, u)?;
            let mut items: Vec<Bso> = storage::batch_items(tx, batch, u)?
                .into_iter()
                .map(|s| Bso {
                    id: s.id,
                    payload: s.payload.unwrap_or_default(),
                    sortindex: s.sortindex,
                    ttl: s.ttl_offset.map(|t| t.max(0) as u32),
                })
                .collect();
            items.extend(body.iter().cloned());
            storage::delete_batch(tx, batch, u)?;
            let t = write_time(current);
            apply(tx, u, cid, &items, t)?;
            storage::set_collection_modified(tx, u, cid, t)?;
            Ok(t)
        })?;
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

fn staged(records: &[Bso]) -> Vec<StagedBso> {
    records
        .iter()
        .map(|r| StagedBso {
            id: r.id.clone(),
            sortindex: r.sortindex,
            payload: Some(r.payload.clone()),
            ttl_offset: r.ttl.map(|t| i32::try_from(t).unwrap_or(i32::MAX)),
        })
        .collect()
}

/// The shard's `apply_bsos` for items that all carry a payload: one read of the stored rows,
/// one multi-row upsert.
fn apply(tx: &mut Tx<'_>, uid: i64, collection: i32, items: &[Bso], t: i64) -> Result<(), DbError> {
    let ids: Vec<&str> = items.iter().map(|b| b.id.as_str()).collect();
    let live: HashMap<String, _> = storage::existing_bsos(tx, uid, collection, &ids)?
        .into_iter()
        .filter(|row| row.ttl > t)
        .map(|row| (row.id.clone(), row))
        .collect();
    let rows: Vec<NewBso<'_>> = items
        .iter()
        .map(|item| {
            let stored = live.get(&item.id);
            NewBso {
                id: &item.id,
                sortindex: item.sortindex.or(stored.and_then(|r| r.sortindex)),
                payload: &item.payload,
                modified: t,
                ttl: match (item.ttl, stored) {
                    (Some(ttl), _) => t + i64::from(ttl) * 1000,
                    (None, Some(row)) => row.ttl,
                    (None, None) => t + NEVER_EXPIRES_MS,
                },
            }
        })
        .collect();
    storage::upsert_bsos(tx, uid, collection, &rows)?;
    Ok(())
}

/// Reads back every collection of the ledger straight from the database.
fn verify(db: &Db, ledger: &Ledger) -> (Stats, VerifyOutcome) {
    let mut stats = Stats::default();
    let mut outcome = VerifyOutcome::default();
    for (uid, collection) in ledger.collections() {
        let cid = db.ids.get(collection).copied().unwrap_or_default();
        let start = Instant::now();
        let rows = db.pool.get().and_then(|mut conn| {
            conn.read_transaction(|tx| {
                let filter = BsoFilter { full: true, order: Some(Order::Newest), ..BsoFilter::default() };
                Ok::<_, DbError>(storage::find_bsos(
                    tx,
                    uid as i64,
                    cid,
                    &filter,
                    SyncTimestamp::now().as_millis(),
                )?)
            })
        });
        stats.record("raw verify: read collection", start.elapsed(), None);
        let stored: StoredRows = match rows {
            Ok(rows) => rows.into_iter().map(|r| (r.id, r.modified, r.payload)).collect(),
            Err(e) => {
                stats.error("raw verify: read collection", e.to_string());
                Vec::new()
            }
        };
        stats.records_read += stored.len() as u64;
        outcome.add(ledger.check(uid, collection, &stored));
    }
    (stats, outcome)
}
