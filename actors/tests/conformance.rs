//! The storage engine's conformance suite: every operation of `weft_actors::storage` run directly on every
//! backend (no HTTP, no actors), each test on a fresh database. It pins the storage rules —
//! timestamps, preconditions, paging and offsets, sort orders, expiry, the batch lifecycle and
//! its limits, quota bookkeeping, concurrent writers — so that a new backend (or a cache in
//! front of the engine) is checked against exactly what the HTTP suite expects of the server.
//! The HTTP suite (tests/ at the workspace root) stays for the protocol itself.
//!
//! A backend joins by adding one line to the `backends:` list at the bottom (plus its `open_*`
//! function that creates a fresh database). MySQL/MariaDB comes from `WEFT_TEST_MYSQL_URL`
//! (default `mysql://root@127.0.0.1:3306`), PostgreSQL from `WEFT_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432`); being unreachable is a failure, never a skip.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use weft_actors::cache::MemoryStore;
use weft_actors::storage::purge::{self, Open as Unhindered, Pace, Pacing, PurgeKind};
use weft_actors::storage::*;
use weft_schema::PoolSettings;

/// The storage settings of most tests: the server's defaults, with small batch totals so that
/// the limits are reachable.
fn config() -> StorageConfig {
    StorageConfig {
        max_read_records: 10_000,
        max_total_records: 20,
        max_total_bytes: 2_000,
        quota_enabled: false,
        quota_enforce: false,
        quota_limit_bytes: 2_097_152_000,
        batch_ttl_ms: 7_200_000,
        max_open_batches: 100,
        max_user_collections: 150,
    }
}

/// A fresh database and the engine over it; dropping it drops the database.
struct TestDb {
    storage: Storage,
    _guard: Guard,
}

enum Guard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    #[cfg(feature = "mysql")]
    Mysql(String),
    Postgres(String),
}

impl Drop for Guard {
    fn drop(&mut self) {
        #[cfg(feature = "mysql")]
        if let Guard::Mysql(name) = self {
            mariadb::execute(&format!("DROP DATABASE IF EXISTS {name}"));
        }
        if let Guard::Postgres(name) = self {
            // WITH (FORCE): the engine's pool may still hold connections.
            pg::execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

fn pool_settings() -> PoolSettings {
    PoolSettings {
        max_size: 8,
        connection_timeout: Duration::from_secs(10),
        sqlite_busy_timeout: Duration::from_secs(10),
        sqlite_synchronous: Default::default(),
    }
}

fn start(url: &str, config: StorageConfig, guard: Guard) -> TestDb {
    let pool = DbPool::connect(url, &pool_settings()).expect("pool");
    pool.run_migrations().expect("migrations");
    TestDb { storage: Storage::new("conformance", pool, config), _guard: guard }
}

/// Every collection the tests write.
const COLLECTIONS: [&str; 6] = ["history", "tabs", "bookmarks", "prefs", "forms", "passwords"];

/// The engine behind an in-process cache holding each user's metadata and, when
/// `write_through`, every collection whole: each test then checks that what the cache answers
/// is what the database would.
fn cached(db: TestDb, write_through: bool) -> TestDb {
    let TestDb { storage, _guard } = db;
    let cache = Cache::new(Arc::new(MemoryStore::new(16 << 20)), "conformance");
    let collections = COLLECTIONS.iter().filter(|_| write_through).map(|c| c.to_string());
    TestDb { storage: storage.with_cache(Some(NodeCache::new(cache, true, collections, []))), _guard }
}

fn open_sqlite_metadata_cache(config: StorageConfig) -> TestDb {
    cached(open_sqlite(config), false)
}

fn open_postgres_metadata_cache(config: StorageConfig) -> TestDb {
    cached(open_postgres(config), false)
}

fn open_sqlite_write_through(config: StorageConfig) -> TestDb {
    cached(open_sqlite(config), true)
}

#[cfg(feature = "mysql")]
fn open_mysql_write_through(config: StorageConfig) -> TestDb {
    cached(open_mysql(config), true)
}

fn open_sqlite(config: StorageConfig) -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("storage.db").display());
    start(&url, config, Guard::Sqlite(dir))
}

#[cfg(feature = "mysql")]
fn open_mysql(config: StorageConfig) -> TestDb {
    let name = mariadb::create_database();
    start(&mariadb::url(&name), config, Guard::Mysql(name))
}

fn open_postgres(config: StorageConfig) -> TestDb {
    let name = pg::create_database();
    start(&pg::url(&name), config, Guard::Postgres(name))
}

mod pg {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection};

    static COUNTER: AtomicUsize = AtomicUsize::new(0);

    fn server() -> String {
        let url = std::env::var("WEFT_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        url.trim_end_matches('/').to_string()
    }

    pub fn url(name: &str) -> String {
        format!("{}/{name}", server())
    }

    /// Runs one statement on the maintenance database (CREATE/DROP DATABASE cannot run in a
    /// transaction, so one statement per call).
    pub fn execute(sql: &str) {
        let url = url("postgres");
        let mut conn = PgConnection::establish(&url).unwrap_or_else(|e| {
            panic!("PostgreSQL at {url} is not usable (start it or set WEFT_TEST_POSTGRES_URL): {e}")
        });
        conn.batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// A new, empty `weft_test_*` database (the name scripts/test cleans up after a crash).
    pub fn create_database() -> String {
        let name =
            format!("weft_test_engine_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        execute(&format!("DROP DATABASE IF EXISTS {name}"));
        execute(&format!("CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'"));
        name
    }

    #[derive(diesel::QueryableByName)]
    struct Terminated {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        terminated: bool,
    }

    /// Ends every session on the database `name` from the server's side; returns how many.
    pub fn terminate_connections(name: &str) -> usize {
        use diesel::RunQueryDsl;
        let mut conn = PgConnection::establish(&url("postgres")).expect("PostgreSQL");
        let ended: Vec<Terminated> = diesel::sql_query(
            "SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE datname = $1",
        )
        .bind::<diesel::sql_types::Text, _>(name)
        .load(&mut conn)
        .expect("pg_stat_activity");
        ended.iter().filter(|t| t.terminated).count()
    }
}

#[cfg(feature = "mysql")]
mod mariadb {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use diesel::connection::SimpleConnection;
    use diesel::{Connection, MysqlConnection};

    static COUNTER: AtomicUsize = AtomicUsize::new(0);

    fn server() -> String {
        let url =
            std::env::var("WEFT_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
        url.trim_end_matches('/').to_string()
    }

    pub fn url(name: &str) -> String {
        format!("{}/{name}", server())
    }

    pub fn execute(sql: &str) {
        let url = server();
        let mut conn = MysqlConnection::establish(&url).unwrap_or_else(|e| {
            panic!("MySQL/MariaDB at {url} is not usable (start it or set WEFT_TEST_MYSQL_URL): {e}")
        });
        conn.batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// A new, empty `weft_test_*` database (the name scripts/test cleans up after a crash).
    pub fn create_database() -> String {
        let name =
            format!("weft_test_engine_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        execute(&format!("DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}"));
        name
    }

    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }

    /// Closes every connection to the database `name` from the server's side; returns how many.
    pub fn kill_connections(name: &str) -> usize {
        use diesel::RunQueryDsl;
        let mut conn = MysqlConnection::establish(&server()).expect("MariaDB");
        let ids: Vec<Id> = diesel::sql_query(
            "SELECT CAST(id AS SIGNED) AS id FROM information_schema.processlist WHERE db = ?",
        )
        .bind::<diesel::sql_types::Text, _>(name)
        .load(&mut conn)
        .expect("processlist");
        for Id { id } in &ids {
            conn.batch_execute(&format!("KILL {id}")).expect("KILL");
        }
        ids.len()
    }
}

#[path = "conformance/user_move.rs"]
mod user_move;

// ---- helpers ----

const UID: u64 = 42;
const OTHER_UID: u64 = 43;

fn item(id: &str, payload: &str) -> BsoInput {
    BsoInput { id: id.into(), payload: Some(payload.into()), ..BsoInput::default() }
}

fn put(s: &Storage, uid: u64, collection: &str, bso: BsoInput) -> Result<PutResult, StorageError> {
    s.run(&PutBso { uid, collection: collection.into(), bso, precondition: Precondition::None })
}

fn post_op(
    uid: u64,
    collection: &str,
    bsos: Vec<BsoInput>,
    batch: Option<BatchMode>,
    commit: bool,
) -> PostBsos {
    PostBsos { uid, collection: collection.into(), bsos, batch, commit, precondition: Precondition::None }
}

/// A plain POST that must commit; returns its timestamp.
fn post(s: &Storage, uid: u64, collection: &str, bsos: Vec<BsoInput>) -> SyncTimestamp {
    match s.run(&post_op(uid, collection, bsos, None, false)).expect("post").outcome {
        PostOutcome::Committed { modified } => modified,
        other => panic!("not committed: {other:?}"),
    }
}

fn stage(s: &Storage, collection: &str, bsos: Vec<BsoInput>, batch: BatchMode) -> Result<i64, StorageError> {
    match s.run(&post_op(UID, collection, bsos, Some(batch), false))?.outcome {
        PostOutcome::Staged { batch, .. } => Ok(batch),
        other => panic!("not staged: {other:?}"),
    }
}

fn commit(
    s: &Storage,
    collection: &str,
    bsos: Vec<BsoInput>,
    batch: i64,
) -> Result<SyncTimestamp, StorageError> {
    match s.run(&post_op(UID, collection, bsos, Some(BatchMode::Append(batch)), true))?.outcome {
        PostOutcome::Committed { modified } => Ok(modified),
        other => panic!("not committed: {other:?}"),
    }
}

fn get(s: &Storage, uid: u64, collection: &str, id: &str) -> Result<Bso, StorageError> {
    s.run(&GetBso { uid, collection: collection.into(), id: id.into(), precondition: Precondition::None })
}

fn query(s: &Storage, collection: &str, query: BsoQuery) -> Timestamped<BsoPage> {
    s.run(&GetBsos { uid: UID, collection: collection.into(), query, precondition: Precondition::None })
        .expect("get bsos")
}

fn ids(page: &BsoPage) -> Vec<&str> {
    page.items.iter().map(|b| b.id.as_str()).collect()
}

fn full() -> BsoQuery {
    BsoQuery { full: true, ..BsoQuery::default() }
}

fn collections(s: &Storage, uid: u64) -> Timestamped<BTreeMap<String, SyncTimestamp>> {
    s.run(&GetCollections { uid, precondition: Precondition::None }).expect("info/collections")
}

fn counts(s: &Storage) -> BTreeMap<String, u64> {
    s.run(&GetCollectionCounts { uid: UID, precondition: Precondition::None }).expect("counts").value
}

/// Runs every test of `tests:` (a `fn(open)` taking the backend's database opener) on every
/// backend of `backends:`, as `<backend>::<test>`.
macro_rules! conformance {
    (backends: [$($(#[$cfg:meta])* $backend:ident => $open:path),* $(,)?]; tests: $tests:tt) => {
        $(
            $(#[$cfg])*
            mod $backend {
                conformance!(@tests $open; $tests);
            }
        )*
    };
    (@tests $open:path; [$($name:ident),* $(,)?]) => {
        $( #[test] fn $name() { super::$name($open) } )*
    };
}

/// How a test gets a fresh database with the engine over it.
type Open = fn(StorageConfig) -> TestDb;

conformance! {
    backends: [
        sqlite => super::open_sqlite,
        #[cfg(feature = "mysql")] mysql => super::open_mysql,
        postgres => super::open_postgres,
        sqlite_metadata_cache => super::open_sqlite_metadata_cache,
        sqlite_write_through => super::open_sqlite_write_through,
        #[cfg(feature = "mysql")] mysql_write_through => super::open_mysql_write_through,
        postgres_metadata_cache => super::open_postgres_metadata_cache,
    ];
    tests: [
        one_timestamp_per_write,
        deletes_advance_the_storage_timestamp,
        preconditions_refuse_and_change_nothing,
        sort_orders_and_filters,
        paging_visits_every_item_once,
        unlimited_reads_are_capped_with_a_next_offset,
        absent_fields_keep_stored_values,
        deletes_of_items,
        expired_items_are_absent_everywhere,
        batch_lifecycle,
        foreign_unknown_and_expired_batches_are_invalid,
        batch_limits_refuse_and_stage_nothing,
        quota_bookkeeping_and_enforcement,
        collections_per_user_are_bounded,
        concurrent_writers_get_distinct_ordered_timestamps,
        writes_are_newer_than_everything_the_user_has,
        deleted_collections_vanish_at_once_and_are_purged_later,
        writes_after_a_deletion_survive_its_purge,
        storage_deletion_is_deferred,
        expired_items_and_batches_are_purged_in_chunks,
        open_batches_are_bounded,
        staged_bytes_count_toward_quota,
        purges_keep_to_the_rows_per_second_ceiling,
    ]
}

// ---- connections (schema/src/checkout.rs) ----

/// The database closes every connection the engine holds (a restart, a failover, its idle
/// timeout) and the next operations come at once, before the pool's idle check would test the
/// connection: each still succeeds, on a new connection, after one retry.
fn connections_the_database_closed_are_replaced(db: TestDb, close_all: impl Fn() -> usize) {
    let s = &db.storage;
    put(s, UID, "tabs", item("a", "1")).expect("put");
    assert!(close_all() >= 1, "the engine held a connection");
    assert_eq!(get(s, UID, "tabs", "a").expect("a read right after").payload, "1");
    assert!(close_all() >= 1);
    put(s, UID, "tabs", item("b", "2")).expect("a write right after");
    assert_eq!(
        ids(&query(s, "tabs", BsoQuery { sort: Sort::Oldest, ..BsoQuery::default() }).value),
        ["a", "b"]
    );
}

#[cfg(feature = "mysql")]
#[test]
fn connections_the_database_closed_are_replaced_mysql() {
    let name = mariadb::create_database();
    let db = start(&mariadb::url(&name), config(), Guard::Mysql(name.clone()));
    connections_the_database_closed_are_replaced(db, || mariadb::kill_connections(&name));
}

#[test]
fn connections_the_database_closed_are_replaced_postgres() {
    let name = pg::create_database();
    let db = start(&pg::url(&name), config(), Guard::Postgres(name.clone()));
    connections_the_database_closed_are_replaced(db, || pg::terminate_connections(&name));
}

// ---- timestamps (storage-api.md §4) ----

fn one_timestamp_per_write(open: Open) {
    let db = open(config());
    let s = &db.storage;
    let t1 = post(s, UID, "history", vec![item("a", "1"), item("b", "2")]);
    for id in ["a", "b"] {
        assert_eq!(get(s, UID, "history", id).unwrap().modified, t1);
    }
    let info = collections(s, UID);
    assert_eq!((info.last_modified, info.value["history"]), (t1, t1));
    let page = query(s, "history", full());
    assert_eq!(page.last_modified, t1);
    // The next write to the collection is strictly later, even within the same tick.
    let t2 = put(s, UID, "history", item("a", "3")).unwrap().modified;
    assert!(t2 > t1, "{t2} > {t1}");
    assert_eq!(get(s, UID, "history", "b").unwrap().modified, t1, "untouched item keeps its time");
    assert_eq!(collections(s, UID).value["history"], t2);
    // Other users see nothing of it.
    assert!(collections(s, OTHER_UID).value.is_empty());
    assert_eq!(collections(s, OTHER_UID).last_modified, SyncTimestamp::ZERO);
}

fn deletes_advance_the_storage_timestamp(open: Open) {
    let db = open(config());
    let s = &db.storage;
    let t1 = post(s, UID, "history", vec![item("a", "1")]);
    let t2 = post(s, UID, "bookmarks", vec![item("b", "1")]);
    let after = s
        .run(&DeleteCollection {
            uid: UID,
            collection: "bookmarks".into(),
            ids: None,
            precondition: Precondition::None,
        })
        .unwrap();
    assert!(after > t2, "the tombstone moves the storage timestamp: {after} > {t2}");
    let info = collections(s, UID);
    assert_eq!(info.value.keys().collect::<Vec<_>>(), ["history"]);
    assert_eq!((info.value["history"], info.last_modified), (t1, after));
    // Deleting a collection that does not exist changes nothing.
    let missing = s
        .run(&DeleteCollection {
            uid: UID,
            collection: "nothing".into(),
            ids: None,
            precondition: Precondition::None,
        })
        .unwrap();
    assert_eq!(missing, after);
    let gone = s.run(&DeleteStorage { uid: UID, precondition: Precondition::None }).unwrap();
    assert!(gone > after);
    assert!(collections(s, UID).value.is_empty());
    // The next write is later than anything the user saw before the deletion.
    let t3 = post(s, UID, "history", vec![item("a", "2")]);
    assert!(t3 > after && t3 >= gone, "{t3} after {after}, {gone}");
}

/// Rounds of `writes_are_newer_than_everything_the_user_has`: the same-tick case it checks
/// happens in most of them on a fast backend, never in all.
const NEWER_ROUNDS: usize = 200;

/// One user writes two collections back to back, the second write in the same 10 ms tick as
/// the first more often than not: the second write's timestamp is still later than the first
/// (the user's storage timestamp, §4.4 as PROTO phrases it), so each info view asked with
/// `X-If-Modified-Since` = the first write's timestamp answers (something changed after it),
/// and with the second's answers 304. Every kind of write takes both places in turn, deletions
/// included (the tombstone and a storage deletion's pending records count too).
fn writes_are_newer_than_everything_the_user_has(open: Open) {
    let db = open(config());
    let s = &db.storage;
    let info_views = |since: SyncTimestamp| -> Vec<(&str, Result<SyncTimestamp, StorageError>)> {
        let precondition = Precondition::IfModifiedSince(since);
        vec![
            ("collections", s.run(&GetCollections { uid: UID, precondition }).map(|r| r.last_modified)),
            ("quota", s.run(&GetQuota { uid: UID, precondition }).map(|r| r.last_modified)),
            (
                "collection_usage",
                s.run(&GetCollectionUsage { uid: UID, precondition }).map(|r| r.last_modified),
            ),
            (
                "collection_counts",
                s.run(&GetCollectionCounts { uid: UID, precondition }).map(|r| r.last_modified),
            ),
        ]
    };
    let write = |kind: usize, collection: &str, round: usize| -> SyncTimestamp {
        let id = format!("r{round}");
        match kind {
            0 => post(s, UID, collection, vec![item(&id, "x")]),
            1 => put(s, UID, collection, item(&id, "y")).expect("put").modified,
            2 => {
                put(s, UID, collection, item("gone", "z")).expect("put");
                let delete = DeleteBso {
                    uid: UID,
                    collection: collection.into(),
                    id: "gone".into(),
                    precondition: Precondition::None,
                };
                s.run(&delete).expect("delete item")
            }
            _ => {
                put(s, UID, collection, item(&id, "w")).expect("put");
                delete_collection(s, UID, collection)
            }
        }
    };
    let mut same_tick = 0;
    for round in 0..NEWER_ROUNDS {
        if round % 50 == 49 {
            s.run(&DeleteStorage { uid: UID, precondition: Precondition::None }).expect("delete storage");
        }
        let (first, second) = (COLLECTIONS[round % 6], COLLECTIONS[(round + 1) % 6]);
        let t1 = write(round % 4, first, round);
        let t2 = write((round / 4) % 4, second, round);
        assert!(t2 > t1, "round {round}: {second} written at {t2} after {first} at {t1}");
        same_tick += usize::from(t2.as_millis() == t1.as_millis() + 10);
        for (view, reply) in info_views(t1) {
            assert_eq!(reply.unwrap_or_else(|e| panic!("round {round}: info/{view} since {t1}: {e:?}")), t2);
        }
        for (view, reply) in info_views(t2) {
            assert!(
                matches!(reply, Err(StorageError::NotModified(_))),
                "round {round}: info/{view} since {t2}"
            );
        }
    }
    eprintln!("{same_tick} of {NEWER_ROUNDS} second writes took the tick right after the first");
}

// ---- preconditions (§5.4) ----

fn preconditions_refuse_and_change_nothing(open: Open) {
    let db = open(config());
    let s = &db.storage;
    let t1 = put(s, UID, "tabs", item("a", "1")).unwrap().modified;
    let write = |precondition| {
        s.run(&PutBso { uid: UID, collection: "tabs".into(), bso: item("a", "2"), precondition })
    };
    let before = SyncTimestamp::from_millis(t1.as_millis() - 10);
    assert!(
        matches!(write(Precondition::IfUnmodifiedSince(before)), Err(StorageError::PreconditionFailed(ts)) if ts == t1)
    );
    // Create-only: `X-If-Unmodified-Since: 0` on an existing item.
    assert!(matches!(
        write(Precondition::IfUnmodifiedSince(SyncTimestamp::ZERO)),
        Err(StorageError::PreconditionFailed(_))
    ));
    assert_eq!(get(s, UID, "tabs", "a").unwrap().payload, "1");
    let posted = s.run(&PostBsos {
        precondition: Precondition::IfUnmodifiedSince(before),
        ..post_op(UID, "tabs", vec![item("b", "1")], None, false)
    });
    assert!(matches!(posted, Err(StorageError::PreconditionFailed(_))));
    assert!(matches!(get(s, UID, "tabs", "b"), Err(StorageError::NotFound)));
    assert!(write(Precondition::IfUnmodifiedSince(t1)).is_ok());

    let t2 = get(s, UID, "tabs", "a").unwrap().modified;
    let read =
        |precondition| s.run(&GetBso { uid: UID, collection: "tabs".into(), id: "a".into(), precondition });
    assert!(
        matches!(read(Precondition::IfModifiedSince(t2)), Err(StorageError::NotModified(ts)) if ts == t2)
    );
    assert!(read(Precondition::IfModifiedSince(t1)).is_ok());
    let page = s.run(&GetBsos {
        uid: UID,
        collection: "tabs".into(),
        query: full(),
        precondition: Precondition::IfModifiedSince(t2),
    });
    assert!(matches!(page, Err(StorageError::NotModified(_))));
    let info = s.run(&GetCollections { uid: UID, precondition: Precondition::IfModifiedSince(t2) });
    assert!(matches!(info, Err(StorageError::NotModified(_))));
    let delete = s.run(&DeleteStorage { uid: UID, precondition: Precondition::IfUnmodifiedSince(t1) });
    assert!(matches!(delete, Err(StorageError::PreconditionFailed(_))));
    assert_eq!(counts(s)["tabs"], 1);
}

// ---- reads: sort orders, filters, paging (§6.7) ----

fn sort_orders_and_filters(open: Open) {
    let db = open(config());
    let s = &db.storage;
    let t1 = post(
        s,
        UID,
        "bookmarks",
        vec![
            BsoInput { sortindex: Some(5), ..item("a", "1") },
            BsoInput { sortindex: Some(9), ..item("b", "1") },
        ],
    );
    let t2 =
        post(s, UID, "bookmarks", vec![item("c", "1"), BsoInput { sortindex: Some(1), ..item("d", "1") }]);
    let read = |sort| {
        ids(&query(s, "bookmarks", BsoQuery { sort, ..BsoQuery::default() }).value)
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(read(Sort::Newest), ["d", "c", "b", "a"]);
    assert_eq!(read(Sort::Oldest), ["a", "b", "c", "d"]);
    // sortindex descending, items without one last.
    assert_eq!(read(Sort::Index), ["b", "a", "d", "c"]);
    let newer =
        query(s, "bookmarks", BsoQuery { newer: Some(t1), sort: Sort::Oldest, ..BsoQuery::default() });
    assert_eq!(ids(&newer.value), ["c", "d"]);
    let older =
        query(s, "bookmarks", BsoQuery { older: Some(t2), sort: Sort::Oldest, ..BsoQuery::default() });
    assert_eq!(ids(&older.value), ["a", "b"]);
    let some = query(
        s,
        "bookmarks",
        BsoQuery {
            ids: vec!["a".into(), "d".into(), "zz".into()],
            sort: Sort::Oldest,
            ..BsoQuery::default()
        },
    );
    assert_eq!(ids(&some.value), ["a", "d"]);
    // Id-only reads carry no payload; full reads do.
    assert_eq!(query(s, "bookmarks", BsoQuery::default()).value.items[0].payload, "");
    assert_eq!(query(s, "bookmarks", full()).value.items[0].payload, "1");
    // A collection nobody wrote is an empty page at timestamp 0.
    let empty = query(s, "nothing", full());
    assert_eq!(
        (empty.last_modified, empty.value.items.len(), empty.value.next_offset),
        (SyncTimestamp::ZERO, 0, None)
    );
}

fn paging_visits_every_item_once(open: Open) {
    let db = open(config());
    let s = &db.storage;
    // Three writes: items share timestamps, so timestamp offsets must skip within a bound.
    for chunk in 0..3 {
        let items = (0..7).map(|i| item(&format!("{chunk}-{i}"), "x")).collect();
        post(s, UID, "history", items);
    }
    for sort in [Sort::Newest, Sort::Oldest, Sort::Index] {
        let mut seen = Vec::new();
        let mut offset = None;
        let mut pages = 0;
        loop {
            let page =
                query(s, "history", BsoQuery { sort, limit: Some(5), offset, ..BsoQuery::default() }).value;
            assert!(page.items.len() <= 5);
            seen.extend(page.items.iter().map(|b| b.id.clone()));
            pages += 1;
            match page.next_offset {
                Some(next) => {
                    if sort == Sort::Index {
                        assert!(matches!(next, Offset::Rows(_)), "{next:?}");
                    } else {
                        assert!(matches!(next, Offset::Timestamp { .. }), "{next:?}");
                    }
                    offset = Some(next);
                }
                None => break,
            }
        }
        assert_eq!(pages, 5, "{sort:?}");
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!((seen.len(), unique.len()), (21, 21), "{sort:?}: {seen:?}");
    }
    // A limit of 0 reads nothing; the read cap applies to unlimited reads.
    assert!(query(s, "history", BsoQuery { limit: Some(0), ..BsoQuery::default() }).value.items.is_empty());
}

fn unlimited_reads_are_capped_with_a_next_offset(open: Open) {
    let db = open(StorageConfig { max_read_records: 4, ..config() });
    let s = &db.storage;
    post(s, UID, "forms", (0..6).map(|i| item(&format!("f{i}"), "x")).collect());
    let page = query(s, "forms", BsoQuery::default()).value;
    assert_eq!(page.items.len(), 4);
    assert!(page.next_offset.is_some());
    let rest = query(s, "forms", BsoQuery { offset: page.next_offset, ..BsoQuery::default() }).value;
    assert_eq!((rest.items.len(), rest.next_offset), (2, None));
}

// ---- writes: PUT semantics (§6.12) ----

fn absent_fields_keep_stored_values(open: Open) {
    let db = open(config());
    let s = &db.storage;
    let t1 = put(s, UID, "prefs", BsoInput { sortindex: Some(3), ..item("a", "payload") }).unwrap().modified;
    // A sortindex-only update keeps the payload and moves `modified`.
    let t2 = put(s, UID, "prefs", BsoInput { id: "a".into(), sortindex: Some(4), ..BsoInput::default() })
        .unwrap()
        .modified;
    let a = get(s, UID, "prefs", "a").unwrap();
    assert_eq!((a.payload.as_str(), a.sortindex, a.modified), ("payload", Some(4), t2));
    assert!(t2 > t1);
    // A ttl-only update keeps `modified`, but the collection still moves.
    let t3 = put(s, UID, "prefs", BsoInput { id: "a".into(), ttl: Some(3600), ..BsoInput::default() })
        .unwrap()
        .modified;
    assert_eq!(get(s, UID, "prefs", "a").unwrap().modified, t2);
    assert_eq!(collections(s, UID).value["prefs"], t3);
    // A new item without a payload is stored with an empty one.
    put(s, UID, "prefs", BsoInput { id: "b".into(), sortindex: Some(1), ..BsoInput::default() }).unwrap();
    assert_eq!(get(s, UID, "prefs", "b").unwrap().payload, "");
}

fn deletes_of_items(open: Open) {
    let db = open(config());
    let s = &db.storage;
    let t1 = post(s, UID, "passwords", vec![item("a", "1"), item("b", "1"), item("c", "1")]);
    let del = |id: &str| {
        s.run(&DeleteBso {
            uid: UID,
            collection: "passwords".into(),
            id: id.into(),
            precondition: Precondition::None,
        })
    };
    let t2 = del("a").unwrap();
    assert!(t2 > t1);
    assert!(matches!(del("a"), Err(StorageError::NotFound)));
    assert!(matches!(
        s.run(&DeleteBso {
            uid: UID,
            collection: "nothing".into(),
            id: "a".into(),
            precondition: Precondition::None
        }),
        Err(StorageError::NotFound)
    ));
    let t3 = s
        .run(&DeleteCollection {
            uid: UID,
            collection: "passwords".into(),
            ids: Some(vec!["b".into(), "zz".into()]),
            precondition: Precondition::None,
        })
        .unwrap();
    assert!(t3 > t2);
    assert_eq!(ids(&query(s, "passwords", BsoQuery::default()).value), ["c"]);
    assert_eq!(collections(s, UID).value["passwords"], t3);
}

// ---- expiry (§3.2) ----

fn expired_items_are_absent_everywhere(open: Open) {
    let db = open(StorageConfig { quota_enabled: true, ..config() });
    let s = &db.storage;
    post(s, UID, "tabs", vec![BsoInput { ttl: Some(1), ..item("old", "12345") }, item("live", "1")]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(ids(&query(s, "tabs", BsoQuery::default()).value), ["live"]);
    assert!(matches!(get(s, UID, "tabs", "old"), Err(StorageError::NotFound)));
    assert_eq!(counts(s)["tabs"], 1);
    let usage = s.run(&GetCollectionUsage { uid: UID, precondition: Precondition::None }).unwrap().value;
    assert_eq!(usage["tabs"], 1);
    let del = s.run(&DeleteBso {
        uid: UID,
        collection: "tabs".into(),
        id: "old".into(),
        precondition: Precondition::None,
    });
    assert!(matches!(del, Err(StorageError::NotFound)));
    // An expired item counts as absent for preconditions and partial updates: a
    // payload-less PUT creates it anew with an empty payload.
    let create_only = Precondition::IfUnmodifiedSince(SyncTimestamp::ZERO);
    s.run(&PutBso {
        uid: UID,
        collection: "tabs".into(),
        bso: BsoInput { id: "old".into(), ..BsoInput::default() },
        precondition: create_only,
    })
    .unwrap();
    assert_eq!(get(s, UID, "tabs", "old").unwrap().payload, "");
}

// ---- batches (§6.9) ----

fn batch_lifecycle(open: Open) {
    let db = open(config());
    let s = &db.storage;
    let t0 = post(s, UID, "history", vec![item("x", "0")]);
    let batch = stage(s, "history", vec![item("a", "1")], BatchMode::Create).unwrap();
    // Staged items are invisible and the collection keeps its timestamp.
    assert_eq!(ids(&query(s, "history", BsoQuery::default()).value), ["x"]);
    assert_eq!(collections(s, UID).value["history"], t0);
    assert_eq!(
        stage(s, "history", vec![item("b", "2"), item("a", "1b")], BatchMode::Append(batch)).unwrap(),
        batch
    );
    let t = commit(s, "history", vec![item("c", "3")], batch).unwrap();
    assert!(t > t0);
    let page = query(s, "history", BsoQuery { sort: Sort::Oldest, full: true, ..BsoQuery::default() }).value;
    let got: Vec<(&str, &str, SyncTimestamp)> =
        page.items.iter().map(|b| (b.id.as_str(), b.payload.as_str(), b.modified)).collect();
    assert_eq!(got[0], ("x", "0", t0));
    let mut committed = got[1..].to_vec();
    committed.sort();
    assert_eq!(committed, [("a", "1b", t), ("b", "2", t), ("c", "3", t)]);
    // A committed batch is gone.
    assert!(matches!(commit(s, "history", vec![], batch), Err(StorageError::InvalidBatch)));
    assert!(matches!(stage(s, "history", vec![], BatchMode::Append(batch)), Err(StorageError::InvalidBatch)));
}

fn foreign_unknown_and_expired_batches_are_invalid(open: Open) {
    let db = open(StorageConfig { batch_ttl_ms: 300, ..config() });
    let s = &db.storage;
    post(s, UID, "bookmarks", vec![item("seed", "1")]);
    let batch = stage(s, "history", vec![item("a", "1")], BatchMode::Create).unwrap();
    // Another collection's, another user's, an unknown id, a never-written collection.
    assert!(matches!(
        stage(s, "bookmarks", vec![], BatchMode::Append(batch)),
        Err(StorageError::InvalidBatch)
    ));
    let foreign = s.run(&post_op(OTHER_UID, "history", vec![], Some(BatchMode::Append(batch)), true));
    assert!(matches!(foreign, Err(StorageError::InvalidBatch)));
    assert!(matches!(commit(s, "history", vec![], batch + 1), Err(StorageError::InvalidBatch)));
    assert!(matches!(stage(s, "never", vec![], BatchMode::Append(batch)), Err(StorageError::InvalidBatch)));
    std::thread::sleep(Duration::from_millis(400));
    assert!(matches!(commit(s, "history", vec![], batch), Err(StorageError::InvalidBatch)));
    assert!(query(s, "history", BsoQuery::default()).value.items.is_empty());
}

fn batch_limits_refuse_and_stage_nothing(open: Open) {
    let db = open(config());
    let s = &db.storage;
    let many =
        |n: usize, prefix: &str| (0..n).map(|i| item(&format!("{prefix}{i}"), "x")).collect::<Vec<_>>();
    let batch = stage(s, "history", many(15, "a"), BatchMode::Create).unwrap();
    // 15 + 10 > 20 records: refused, and the refused append leaves the 15 staged.
    assert!(matches!(
        stage(s, "history", many(10, "b"), BatchMode::Append(batch)),
        Err(StorageError::BatchLimitExceeded)
    ));
    assert!(matches!(commit(s, "history", many(6, "c"), batch), Err(StorageError::BatchLimitExceeded)));
    commit(s, "history", many(5, "c"), batch).unwrap();
    assert_eq!(counts(s)["history"], 20);
    // Bytes: 2 × 1200 > 2000.
    let big = "y".repeat(1200);
    let batch = stage(s, "forms", vec![item("a", &big)], BatchMode::Create).unwrap();
    assert!(matches!(
        stage(s, "forms", vec![item("b", &big)], BatchMode::Append(batch)),
        Err(StorageError::BatchLimitExceeded)
    ));
    // Re-staging an id replaces it rather than adding to the totals.
    stage(s, "forms", vec![item("a", "small")], BatchMode::Append(batch)).unwrap();
    commit(s, "forms", vec![item("b", &big)], batch).unwrap();
    assert_eq!(get(s, UID, "forms", "a").unwrap().payload, "small");
}

// ---- quota (§11) ----

fn quota_bookkeeping_and_enforcement(open: Open) {
    let db =
        open(StorageConfig { quota_enabled: true, quota_enforce: true, quota_limit_bytes: 1000, ..config() });
    let s = &db.storage;
    let result = put(s, UID, "history", item("a", &"x".repeat(300))).unwrap();
    // Little remains: the write reports it.
    assert_eq!(result.quota_remaining, Some(700));
    post(s, UID, "bookmarks", vec![item("b", &"x".repeat(200)), item("c", "xx")]);
    let quota = s.run(&GetQuota { uid: UID, precondition: Precondition::None }).unwrap().value;
    assert_eq!(quota, 502);
    let usage = s.run(&GetCollectionUsage { uid: UID, precondition: Precondition::None }).unwrap().value;
    assert_eq!((usage["history"], usage["bookmarks"]), (300, 202));
    assert_eq!((counts(s)["history"], counts(s)["bookmarks"]), (1, 2));
    // Usage is checked before a write, so one write may cross the limit; the next is refused.
    put(s, UID, "history", item("d", &"x".repeat(600))).unwrap();
    assert!(matches!(put(s, UID, "history", item("e", "x")), Err(StorageError::QuotaExceeded)));
    let staged = stage(s, "history", vec![item("f", "x")], BatchMode::Create);
    assert!(matches!(staged, Err(StorageError::QuotaExceeded)));
    // Deleting frees it again.
    s.run(&DeleteCollection {
        uid: UID,
        collection: "history".into(),
        ids: Some(vec!["d".into()]),
        precondition: Precondition::None,
    })
    .unwrap();
    put(s, UID, "history", item("e", "x")).unwrap();
    // Another user is unaffected.
    assert!(put(s, OTHER_UID, "history", item("a", "x")).is_ok());
}

// ---- the collections one user holds ----

fn collections_per_user_are_bounded(open: Open) {
    let db = open(StorageConfig { max_user_collections: 3, ..config() });
    let s = &db.storage;
    post(s, UID, "history", vec![item("a", "x")]);
    put(s, UID, "custom-1", item("a", "x")).unwrap();
    // A batch opened in a collection the user lacks holds it: the third.
    let batch = stage(s, "custom-2", vec![item("a", "x")], BatchMode::Create).unwrap();
    // A fourth, by any write, is refused and leaves nothing behind.
    let over = |r: Result<(), StorageError>| matches!(r, Err(StorageError::TooManyCollections));
    assert!(over(put(s, UID, "custom-3", item("a", "x")).map(drop)));
    assert!(over(s.execute(&post_op(UID, "custom-3", vec![item("a", "x")], None, false)).map(drop)));
    assert!(over(stage(s, "custom-3", vec![item("a", "x")], BatchMode::Create).map(drop)));
    let deleted_ids = DeleteCollection {
        uid: UID,
        collection: "custom-3".into(),
        ids: Some(vec!["a".into()]),
        precondition: Precondition::None,
    };
    assert!(over(s.execute(&deleted_ids).map(drop)));
    assert!(!collections(s, UID).value.contains_key("custom-3"));
    // Collections already held keep taking writes; the batch commits into its own.
    put(s, UID, "custom-1", item("b", "x")).unwrap();
    commit(s, "custom-2", vec![], batch).unwrap();
    let held: Vec<String> = collections(s, UID).value.into_keys().collect();
    assert_eq!(held, ["custom-1", "custom-2", "history"]);
    // Deleting one makes room again; other users have their own bound.
    s.execute(&DeleteCollection {
        uid: UID,
        collection: "history".into(),
        ids: None,
        precondition: Precondition::None,
    })
    .unwrap();
    put(s, UID, "custom-3", item("a", "x")).unwrap();
    for name in ["a", "b", "c"] {
        put(s, OTHER_UID, name, item("a", "x")).unwrap();
    }
}

// ---- concurrency (§4.4, the invariants of ARCHITECTURE.md) ----

fn concurrent_writers_get_distinct_ordered_timestamps(open: Open) {
    let db = Arc::new(open(config()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                (0..5)
                    .map(|i| {
                        let bsos = vec![item(&format!("w{w}-{i}"), "x")];
                        post(&db.storage, UID, "history", bsos)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let other = {
        let db = db.clone();
        std::thread::spawn(move || {
            for i in 0..5 {
                post(&db.storage, OTHER_UID, "history", vec![item(&i.to_string(), "x")]);
            }
        })
    };
    let mut times: Vec<SyncTimestamp> = writers.into_iter().flat_map(|w| w.join().expect("writer")).collect();
    other.join().expect("other user");
    let s = &db.storage;
    times.sort();
    let before = times.len();
    times.dedup();
    assert_eq!(times.len(), before, "every write to one collection has its own timestamp");
    assert_eq!(counts(s)["history"], 20);
    assert_eq!(collections(s, UID).value["history"], *times.last().unwrap());
    // Each item carries its write's time: the newest item is the last write's.
    let newest = query(s, "history", BsoQuery { limit: Some(1), ..full() }).value;
    assert_eq!(newest.items[0].modified, *times.last().unwrap());
}

/// The cached backends above really answer from the cache: a change made behind its back
/// (`execute` bypasses the cache) stays unseen until the next write through it.
#[test]
fn write_through_reads_are_served_from_the_cache() {
    let db = open_sqlite_write_through(config());
    let s = &db.storage;
    let t1 = post(s, UID, "tabs", vec![item("a", "1")]);
    assert_eq!(query(s, "tabs", full()).value.items[0].payload, "1");
    s.execute(&PutBso {
        uid: UID,
        collection: "tabs".into(),
        bso: item("a", "2"),
        precondition: Precondition::None,
    })
    .expect("put behind the cache");
    let page = query(s, "tabs", full());
    assert_eq!((page.last_modified, page.value.items[0].payload.as_str()), (t1, "1"));
    assert_eq!(get(s, UID, "tabs", "a").unwrap().payload, "1");
    let t3 = put(s, UID, "tabs", item("b", "3")).unwrap().modified;
    let page = query(s, "tabs", full());
    assert_eq!(page.last_modified, t3);
    assert_eq!(ids(&page.value), ["b", "a"]);
}

/// Cache-only collections: the rules hold (timestamps, preconditions, PUT semantics, deletes),
/// `info/collections` lists them, and nothing reaches the database.
#[test]
fn cache_only_collections_live_in_the_cache_alone() {
    let TestDb { storage, _guard } = open_sqlite(config());
    let cache = Cache::new(Arc::new(MemoryStore::new(16 << 20)), "conformance");
    let s = &storage.with_cache(Some(NodeCache::new(cache, true, [], ["tabs".to_string()])));
    let t1 = post(s, UID, "tabs", vec![item("a", "1"), item("b", "2")]);
    let t0 = post(s, UID, "history", vec![item("h", "x")]);
    let info = collections(s, UID);
    assert_eq!((info.value["tabs"], info.value["history"]), (t1, t0));
    assert_eq!(info.last_modified, t0.max(t1));
    let tabs =
        GetBsos { uid: UID, collection: "tabs".into(), query: full(), precondition: Precondition::None };
    assert!(s.execute(&tabs).unwrap().value.items.is_empty(), "the database holds no tabs");
    let page = query(s, "tabs", full());
    assert_eq!((page.last_modified, ids(&page.value)), (t1, vec!["b", "a"]));
    // PUT semantics: a sortindex-only update keeps the payload.
    let t2 = put(s, UID, "tabs", BsoInput { id: "a".into(), sortindex: Some(3), ..BsoInput::default() })
        .unwrap()
        .modified;
    assert!(t2 > t1);
    let a = get(s, UID, "tabs", "a").unwrap();
    assert_eq!((a.payload.as_str(), a.sortindex, a.modified), ("1", Some(3), t2));
    // Preconditions against the cached timestamps.
    let stale = PutBso {
        uid: UID,
        collection: "tabs".into(),
        bso: item("a", "stale"),
        precondition: Precondition::IfUnmodifiedSince(t1),
    };
    assert!(matches!(s.run(&stale), Err(StorageError::PreconditionFailed(_))));
    let t3 = s
        .run(&DeleteBso {
            uid: UID,
            collection: "tabs".into(),
            id: "b".into(),
            precondition: Precondition::None,
        })
        .unwrap();
    assert_eq!(collections(s, UID).value["tabs"], t3);
    assert_eq!(ids(&query(s, "tabs", full()).value), ["a"]);
    // A batch over several requests would stage in the database: refused.
    assert!(matches!(
        stage(s, "tabs", vec![item("c", "3")], BatchMode::Create),
        Err(StorageError::InvalidBatch)
    ));
    // Deleting everything forgets them too.
    s.run(&DeleteStorage { uid: UID, precondition: Precondition::None }).unwrap();
    assert!(query(s, "tabs", full()).value.items.is_empty());
    assert!(!collections(s, UID).value.contains_key("tabs"));
}

// ---- deferred deletes and purges (the deleter) ----

/// Chunks of `chunk_rows`, no pause, no ceiling, no grace: purges in tests finish at once.
fn pacing(chunk_rows: u64) -> Pacing {
    Pacing { chunk_rows, pause: Duration::ZERO, max_rows_per_second: 0, grace: Duration::ZERO }
}

/// Purges `kind` completely; returns the rows removed.
fn purge_all(s: &Storage, kind: PurgeKind, chunk_rows: u64) -> u64 {
    purge::purge(s, kind, None, &mut Pace::new(pacing(chunk_rows)), &Unhindered, &mut |_| {}).expect("purge")
}

fn purgeable(s: &Storage, kind: PurgeKind) -> u64 {
    purge::purgeable(s, kind, None, Duration::ZERO).expect("count")
}

fn delete_collection(s: &Storage, uid: u64, collection: &str) -> SyncTimestamp {
    s.run(&DeleteCollection {
        uid,
        collection: collection.into(),
        ids: None,
        precondition: Precondition::None,
    })
    .expect("delete collection")
}

fn deleted_collections_vanish_at_once_and_are_purged_later(open: Open) {
    let db = open(StorageConfig { quota_enabled: true, ..config() });
    let s = &db.storage;
    post(s, UID, "history", vec![item("a", "111"), item("b", "222"), item("c", "333")]);
    post(s, UID, "tabs", vec![item("t", "1")]);
    post(s, OTHER_UID, "history", vec![item("a", "other")]);
    let deleted = delete_collection(s, UID, "history");
    // Invisible at once to every read, count, usage figure and precondition.
    assert!(query(s, "history", BsoQuery::default()).value.items.is_empty());
    assert!(matches!(get(s, UID, "history", "a"), Err(StorageError::NotFound)));
    assert_eq!(counts(s).keys().collect::<Vec<_>>(), ["tabs"]);
    let usage = s.run(&GetCollectionUsage { uid: UID, precondition: Precondition::None }).unwrap().value;
    assert_eq!(usage.keys().collect::<Vec<_>>(), ["tabs"]);
    assert_eq!(s.run(&GetQuota { uid: UID, precondition: Precondition::None }).unwrap().value, 1);
    let del = s.run(&DeleteBso {
        uid: UID,
        collection: "history".into(),
        id: "b".into(),
        precondition: Precondition::None,
    });
    assert!(matches!(del, Err(StorageError::NotFound)));
    // A partial update of a deleted item creates it anew ("create only" passes), empty payload.
    let created = s
        .run(&PutBso {
            uid: UID,
            collection: "history".into(),
            bso: BsoInput { id: "a".into(), sortindex: Some(5), ..BsoInput::default() },
            precondition: Precondition::IfUnmodifiedSince(SyncTimestamp::ZERO),
        })
        .unwrap();
    assert!(created.modified > deleted, "a write after the deletion is later than it");
    let a = get(s, UID, "history", "a").unwrap();
    assert_eq!((a.payload.as_str(), a.sortindex), ("", Some(5)));
    assert_eq!(counts(s)["history"], 1);
    // The rows are still stored until the deleter runs: b and c (a was rewritten).
    assert_eq!(purgeable(s, PurgeKind::Deleted), 2);
    assert_eq!(purge::backlog(s, Duration::ZERO).unwrap().pending_deletions, 1);
    assert_eq!(purge_all(s, PurgeKind::Deleted, 1), 2);
    assert_eq!(purgeable(s, PurgeKind::Deleted), 0);
    assert_eq!(purge::backlog(s, Duration::ZERO).unwrap().pending_deletions, 0);
    assert_eq!(ids(&query(s, "history", BsoQuery::default()).value), ["a"]);
    assert_eq!(ids(&query(s, "tabs", BsoQuery::default()).value), ["t"]);
    // Another user's collection of the same name is untouched.
    assert_eq!(get(s, OTHER_UID, "history", "a").unwrap().payload, "other");
}

/// Delete-then-write, 200 times, while another thread purges without pause: every write made
/// after a deletion survives, whichever finishes first.
fn writes_after_a_deletion_survive_its_purge(open: Open) {
    let db = Arc::new(open(config()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let purger = {
        let (db, done) = (db.clone(), done.clone());
        std::thread::spawn(move || {
            let mut removed = 0;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                removed += purge_all(&db.storage, PurgeKind::Deleted, 3);
            }
            removed
        })
    };
    let s = &db.storage;
    for i in 0..200 {
        let collection = if i % 2 == 0 { "history" } else { "bookmarks" };
        post(s, UID, collection, (0..5).map(|n| item(&format!("old{n}"), "old")).collect());
        if i % 10 == 8 {
            s.run(&DeleteStorage { uid: UID, precondition: Precondition::None }).unwrap();
        } else {
            delete_collection(s, UID, collection);
        }
        let t =
            post(s, UID, collection, vec![item("old0", &format!("new{i}")), item(&format!("n{i}"), "new")]);
        let page = query(s, collection, full()).value;
        let mut got: Vec<(String, SyncTimestamp)> =
            page.items.into_iter().map(|b| (b.id, b.modified)).collect();
        got.sort();
        let mut expected = vec![("old0".to_string(), t), (format!("n{i}"), t)];
        expected.sort();
        assert_eq!(got, expected, "iteration {i}");
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let removed = purger.join().expect("purger") + purge_all(s, PurgeKind::Deleted, 3);
    assert!(removed > 0, "the purger ran");
    // Whatever the interleaving, the last write of each collection is all that is left.
    assert_eq!(purgeable(s, PurgeKind::Deleted), 0);
    assert_eq!(get(s, UID, "history", "old0").unwrap().payload, "new198");
    assert_eq!(get(s, UID, "bookmarks", "old0").unwrap().payload, "new199");
    assert_eq!(counts(s).values().sum::<u64>(), 4, "{:?}", counts(s));
}

fn storage_deletion_is_deferred(open: Open) {
    let db = open(StorageConfig { batch_ttl_ms: 300, ..config() });
    let s = &db.storage;
    post(s, UID, "history", vec![item("a", "1"), item("b", "2")]);
    let before = post(s, UID, "bookmarks", vec![item("c", "3")]);
    let batch = stage(s, "history", vec![item("staged", "x")], BatchMode::Create).unwrap();
    let gone = s.run(&DeleteStorage { uid: UID, precondition: Precondition::None }).unwrap();
    assert!(gone > before);
    let info = collections(s, UID);
    assert!(info.value.is_empty());
    assert_eq!(info.last_modified, SyncTimestamp::ZERO);
    assert!(counts(s).is_empty());
    assert!(query(s, "history", BsoQuery::default()).value.items.is_empty());
    // The pending batch went with the user's data.
    assert!(matches!(commit(s, "history", vec![], batch), Err(StorageError::InvalidBatch)));
    // The next write is visible and later than the deletion.
    let t = post(s, UID, "history", vec![item("z", "new")]);
    assert!(t > gone);
    assert_eq!(purgeable(s, PurgeKind::Deleted), 3);
    assert_eq!(purge_all(s, PurgeKind::Deleted, 2), 3);
    std::thread::sleep(Duration::from_millis(400));
    // The staged item of the dropped batch goes with the expired batches.
    assert_eq!(purge_all(s, PurgeKind::Batches, 10), 1);
    assert_eq!(ids(&query(s, "history", BsoQuery::default()).value), ["z"]);
    assert_eq!(counts(s)["history"], 1);
}

fn expired_items_and_batches_are_purged_in_chunks(open: Open) {
    let db = open(StorageConfig { batch_ttl_ms: 300, ..config() });
    let s = &db.storage;
    let short = |id: &str| BsoInput { ttl: Some(1), ..item(id, "x") };
    post(s, UID, "tabs", (0..5).map(|n| short(&format!("e{n}"))).chain([item("live", "1")]).collect());
    post(s, OTHER_UID, "tabs", vec![short("e")]);
    let batch = stage(s, "history", vec![item("a", "1"), item("b", "2")], BatchMode::Create).unwrap();
    let open_batch = {
        std::thread::sleep(Duration::from_millis(1100));
        stage(s, "forms", vec![item("c", "3")], BatchMode::Create).unwrap()
    };
    assert_eq!(purgeable(s, PurgeKind::Ttl), 6);
    // Chunks of 2: five chunks, each its own transaction.
    assert_eq!(purge_all(s, PurgeKind::Ttl, 2), 6);
    assert_eq!(purgeable(s, PurgeKind::Ttl), 0);
    assert_eq!(ids(&query(s, "tabs", BsoQuery::default()).value), ["live"]);
    // The expired batch's 2 items and its record; the open one stays usable.
    assert_eq!(purgeable(s, PurgeKind::Batches), 3);
    assert_eq!(purge_all(s, PurgeKind::Batches, 1), 3);
    assert!(matches!(commit(s, "history", vec![], batch), Err(StorageError::InvalidBatch)));
    commit(s, "forms", vec![], open_batch).unwrap();
    assert_eq!(get(s, UID, "forms", "c").unwrap().payload, "3");
    // Nothing left: a second pass removes nothing.
    assert_eq!(purge_all(s, PurgeKind::Ttl, 2) + purge_all(s, PurgeKind::Batches, 2), 0);
}

fn open_batches_are_bounded(open: Open) {
    let db = open(StorageConfig { max_open_batches: 2, ..config() });
    let s = &db.storage;
    let first = stage(s, "history", vec![item("a", "1")], BatchMode::Create).unwrap();
    stage(s, "bookmarks", vec![], BatchMode::Create).unwrap();
    assert!(matches!(
        stage(s, "history", vec![item("b", "1")], BatchMode::Create),
        Err(StorageError::TooManyOpenBatches)
    ));
    // Appending to an open batch is not opening one; another user has a bound of their own.
    stage(s, "history", vec![item("b", "2")], BatchMode::Append(first)).unwrap();
    assert!(s.run(&post_op(OTHER_UID, "history", vec![], Some(BatchMode::Create), false)).is_ok());
    commit(s, "history", vec![], first).unwrap();
    stage(s, "history", vec![item("c", "1")], BatchMode::Create).unwrap();
}

fn staged_bytes_count_toward_quota(open: Open) {
    let db =
        open(StorageConfig { quota_enabled: true, quota_enforce: true, quota_limit_bytes: 1000, ..config() });
    let s = &db.storage;
    let first = stage(s, "history", vec![item("a", &"x".repeat(600))], BatchMode::Create).unwrap();
    // 600 staged + 500 more ≥ 1000: refused although neither batch alone reaches the quota.
    let second = stage(s, "forms", vec![item("b", &"x".repeat(500))], BatchMode::Create);
    assert!(matches!(second, Err(StorageError::QuotaExceeded)), "{second:?}");
    put(s, UID, "tabs", item("t", &"x".repeat(500))).expect("under quota");
    assert!(matches!(put(s, UID, "tabs", item("u", "x")), Err(StorageError::QuotaExceeded)));
    // Committing moves the bytes from staged to stored: still counted once.
    commit(s, "history", vec![], first).unwrap();
    assert_eq!(s.run(&GetQuota { uid: UID, precondition: Precondition::None }).unwrap().value, 1100);
}

/// The ceiling holds over a pass: 30 rows at 100 rows/s in chunks of 10 cannot end before the
/// second chunk's rows are due (0.2 s). A lower bound only: a loaded machine is only slower.
fn purges_keep_to_the_rows_per_second_ceiling(open: Open) {
    let db = open(config());
    let s = &db.storage;
    post(s, UID, "tabs", (0..30).map(|n| BsoInput { ttl: Some(1), ..item(&format!("e{n}"), "x") }).collect());
    std::thread::sleep(Duration::from_millis(1100));
    let paced = Pacing { max_rows_per_second: 100, ..pacing(10) };
    let started = std::time::Instant::now();
    let mut chunks = vec![];
    let rows =
        purge::purge(s, PurgeKind::Ttl, None, &mut Pace::new(paced), &Unhindered, &mut |n| chunks.push(n))
            .expect("purge");
    assert_eq!(rows, 30);
    assert_eq!(chunks, [10, 10, 10, 0], "bounded chunks, the last finding nothing");
    assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
}

/// Runs every test of `tests:` (a `fn(source, target)`) on every pair of `pairs:`, as
/// `<pair>::<test>`: moves between backends.
macro_rules! between {
    (pairs: [$($(#[$cfg:meta])* $pair:ident => $source:path => $target:path),* $(,)?]; tests: $tests:tt) => {
        $(
            $(#[$cfg])*
            mod $pair {
                between!(@tests $source, $target; $tests);
            }
        )*
    };
    (@tests $source:path, $target:path; [$($name:ident),* $(,)?]) => {
        $( #[test] fn $name() { super::user_move::$name($source, $target) } )*
    };
}

between! {
    pairs: [
        #[cfg(feature = "mysql")] move_sqlite_to_mysql => super::open_sqlite => super::open_mysql,
        #[cfg(feature = "mysql")] move_mysql_to_postgres => super::open_mysql => super::open_postgres,
        move_postgres_to_sqlite => super::open_postgres => super::open_sqlite,
        #[cfg(feature = "mysql")] move_cached_mysql_to_sqlite => super::open_mysql_write_through => super::open_sqlite,
    ];
    tests: [
        a_move_is_exact_and_keeps_the_users_keys,
        a_held_user_is_read_not_written_and_a_rerun_finishes_the_move,
        a_moved_users_copy_is_purged_once_its_tokens_expired,
        writes_racing_a_move_are_refused_or_moved,
    ]
}
