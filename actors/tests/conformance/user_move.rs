//! Moving a user between two nodes of different backends (`weft_actors::user_move`), on the
//! engine without HTTP: the copy is exact (collections, items, timestamps, ttl, sortindex, the
//! tombstone), the tokenserver's row keeps uid, generation and keys and names the target, the
//! source refuses the user afterwards (401) and forgets it once its tokens expired, a held
//! user's writes are refused (503) while its reads are served, an interrupted move is finished
//! by running it again, and writes racing a move are either refused or on the target.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use weft_actors::storage::purge::PurgeKind;
use weft_actors::storage::*;
use weft_actors::user_move::{move_user, MoveError, MoveOutcome, MoveSettings, NodeDb};
use weft_schema::models::tokenserver::{NewUser, NodeFields};
use weft_schema::models::MoveMarker;
use weft_schema::queries::tokenserver as ts;
use weft_schema::queries::user_move as q;

use super::{collections, get, item, post, purge_all, Open, TestDb, UID};

const SOURCE: &str = "http://node-1.weft.test";
const TARGET: &str = "http://node-2.weft.test";

/// A tokenserver (SQLite file) with both nodes and user `UID` live on the source.
struct Tokenserver {
    pool: DbPool,
    _dir: tempfile::TempDir,
}

impl Tokenserver {
    fn new() -> Tokenserver {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite:{}", dir.path().join("tokenserver.db").display());
        let pool = DbPool::connect(&url, &super::pool_settings()).expect("pool");
        pool.run_migrations().expect("migrations");
        pool.get()
            .expect("connection")
            .write_transaction(|tx| -> Result<(), diesel::result::Error> {
                let service = ts::service_id(tx, ts::SYNC_SERVICE)?.expect("sync-1.5");
                let fields = |load| NodeFields {
                    capacity: Some(100),
                    available: Some(10),
                    current_load: Some(load),
                    downed: Some(0),
                    backoff: Some(0),
                };
                let source = ts::insert_node(tx, service, SOURCE, &fields(1))?;
                ts::insert_node(tx, service, TARGET, &fields(0))?;
                // uid UID: the storage tests' user.
                weft_schema::queries::transfer::put_account(
                    tx,
                    UID as i64,
                    &NewUser {
                        service,
                        email: "a@api.accounts.firefox.com",
                        generation: 1234,
                        client_state: "aabb",
                        created_at: 1,
                        nodeid: source,
                        keys_changed_at: Some(1200),
                    },
                    None,
                )
            })
            .expect("tokenserver rows");
        Tokenserver { pool, _dir: dir }
    }

    /// (node URL, generation, keys_changed_at, client_state, replaced) of user `UID`.
    fn user(&self) -> (String, i64, Option<i64>, String, bool) {
        let u = self
            .pool
            .get()
            .unwrap()
            .single_statement(|tx| {
                let service = ts::service_id(tx, ts::SYNC_SERVICE)?.unwrap();
                q::user_by_uid(tx, service, UID as i64)
            })
            .unwrap()
            .expect("user row");
        (u.node.unwrap(), u.generation, u.keys_changed_at, u.client_state, u.replaced_at.is_some())
    }

    fn loads(&self) -> Vec<(String, i32)> {
        self.pool
            .get()
            .unwrap()
            .single_statement(|tx| ts::list_nodes(tx, 1))
            .unwrap()
            .into_iter()
            .map(|n| (n.node, n.current_load))
            .collect()
    }
}

fn settings(token_lifetime: Duration) -> MoveSettings {
    MoveSettings { token_lifetime }
}

fn run(
    t: &Tokenserver,
    source: &TestDb,
    target: &TestDb,
    lifetime: Duration,
) -> Result<MoveOutcome, MoveError> {
    move_user(
        &t.pool,
        NodeDb { url: SOURCE, pool: source.storage.pool() },
        NodeDb { url: TARGET, pool: target.storage.pool() },
        UID as i64,
        settings(lifetime),
    )
}

/// Everything a client can read of a user: info/collections with its last-modified, and every
/// collection's items.
type Snapshot = (BTreeMap<String, SyncTimestamp>, SyncTimestamp, Vec<(String, Vec<Bso>)>);

/// Everything a client can read of user `UID`: info/collections and every collection's items
/// with their timestamps and sortindexes.
fn snapshot(s: &Storage) -> Snapshot {
    let info = collections(s, UID);
    let items = info
        .value
        .keys()
        .map(|c| {
            let query = BsoQuery { full: true, sort: Sort::Oldest, ..BsoQuery::default() };
            let page = s
                .run(&GetBsos { uid: UID, collection: c.clone(), query, precondition: Precondition::None })
                .expect("items");
            (c.clone(), page.value.items)
        })
        .collect();
    (info.value, info.last_modified, items)
}

/// A user with several collections, a deleted one, an item with a ttl and a sortindex.
fn fill(s: &Storage) {
    post(
        s,
        UID,
        "bookmarks",
        (0..250).map(|n| item(&format!("b{n:03}"), &format!("bookmark {n}"))).collect(),
    );
    post(s, UID, "history", vec![BsoInput { sortindex: Some(7), ..item("h1", "visit") }]);
    post(s, UID, "tabs", vec![BsoInput { ttl: Some(3600), ..item("t1", "tab") }]);
    post(s, UID, "forms", vec![item("f1", "form")]);
    super::delete_collection(s, UID, "forms");
    post(s, UID, "history", vec![item("h2", "later visit")]);
}

pub fn a_move_is_exact_and_keeps_the_users_keys(source: Open, target: Open) {
    let (a, b) = (source(super::config()), target(super::config()));
    let t = Tokenserver::new();
    fill(&a.storage);
    let before = snapshot(&a.storage);
    let (_, generation, kca, client_state, _) = t.user();
    let outcome = run(&t, &a, &b, Duration::from_secs(3600)).expect("move");
    assert!(matches!(outcome, MoveOutcome::Moved { bsos: 253, .. }), "{outcome:?}");
    assert_eq!(snapshot(&b.storage), before, "the target serves exactly what the source did");
    assert_eq!(t.user(), (TARGET.to_string(), generation, kca, client_state, false));
    assert_eq!(t.loads(), [(SOURCE.to_string(), 0), (TARGET.to_string(), 1)]);
    // The source answers the user 401 now: writes at once (they reach the database), reads a
    // cache could answer within the second its knowledge of moves may lag; the target takes
    // writes.
    assert!(matches!(post_result(&a.storage, "history"), Err(StorageError::UserMoved)));
    if a.storage.cache().is_some() {
        std::thread::sleep(Duration::from_millis(1100));
    }
    assert!(matches!(collections_result(&a.storage), Err(StorageError::UserMoved)));
    assert!(matches!(get(&a.storage, UID, "history", "h1"), Err(StorageError::UserMoved)));
    let t2 = post(&b.storage, UID, "history", vec![item("h3", "on the target")]);
    assert!(t2 > before.1);
    // Other users of the source are untouched.
    post(&a.storage, super::OTHER_UID, "history", vec![item("x", "other user")]);
    // Done is done: a second run changes nothing.
    assert_eq!(run(&t, &a, &b, Duration::from_secs(3600)).unwrap(), MoveOutcome::AlreadyThere);
    assert_eq!(get(&b.storage, UID, "history", "h3").unwrap().payload, "on the target");
}

fn collections_result(s: &Storage) -> Result<Timestamped<BTreeMap<String, SyncTimestamp>>, StorageError> {
    s.run(&GetCollections { uid: UID, precondition: Precondition::None })
}

fn post_result(s: &Storage, collection: &str) -> Result<PostResult, StorageError> {
    s.run(&PostBsos {
        uid: UID,
        collection: collection.into(),
        bsos: vec![item("w", "write")],
        batch: None,
        commit: false,
        precondition: Precondition::None,
    })
}

pub fn a_held_user_is_read_not_written_and_a_rerun_finishes_the_move(source: Open, target: Open) {
    let (a, b) = (source(super::config()), target(super::config()));
    let t = Tokenserver::new();
    fill(&a.storage);
    let before = snapshot(&a.storage);
    // As a run killed after its hold, and after a copy that never committed left... nothing;
    // and an earlier, unrelated copy of the uid on the target (junk the move must replace).
    post(&b.storage, UID, "junk", vec![item("j", "junk")]);
    let held = MoveMarker { state: q::HELD, peer: TARGET.into(), since: 1, purge_after: 0 };
    a.storage.pool().get().unwrap().write_transaction(|tx| q::put_marker(tx, UID as i64, &held)).unwrap();
    assert!(matches!(post_result(&a.storage, "history"), Err(StorageError::UserHeld)));
    assert_eq!(snapshot(&a.storage), before, "a held user is read as it is, and nothing was written");
    // A move to another node than the one it is held for is refused.
    let elsewhere = move_user(
        &t.pool,
        NodeDb { url: SOURCE, pool: a.storage.pool() },
        NodeDb { url: "http://node-3.weft.test", pool: b.storage.pool() },
        UID as i64,
        settings(Duration::ZERO),
    );
    assert!(elsewhere.is_err());
    assert!(matches!(run(&t, &a, &b, Duration::from_secs(3600)), Ok(MoveOutcome::Moved { .. })));
    assert_eq!(snapshot(&b.storage), before);
    assert_eq!(t.user().0, TARGET);
}

pub fn a_moved_users_copy_is_purged_once_its_tokens_expired(source: Open, target: Open) {
    let (a, b) = (source(super::config()), target(super::config()));
    let t = Tokenserver::new();
    fill(&a.storage);
    post(&a.storage, super::OTHER_UID, "history", vec![item("x", "stays")]);
    run(&t, &a, &b, Duration::from_millis(300)).expect("move");
    // Tokens still valid: nothing is forgotten yet.
    assert_eq!(weft_actors::user_move::purge_moved(&a.storage).unwrap(), 0);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(weft_actors::user_move::purge_moved(&a.storage).unwrap(), 1);
    assert!(purge_all(&a.storage, PurgeKind::Deleted, 100) >= 252);
    let left = a.storage.pool().get().unwrap().single_statement(|tx| q::marker(tx, UID as i64)).unwrap();
    assert_eq!(left, None);
    assert!(collections(&a.storage, UID).value.is_empty(), "no rows of the user are left on the source");
    assert_eq!(get(&a.storage, super::OTHER_UID, "history", "x").unwrap().payload, "stays");
    assert_eq!(collections(&b.storage, UID).value.len(), 3);
}

/// Writers keep writing while the user moves: every write acknowledged by either node is on
/// the target afterwards, and no write is acknowledged by the source after the switch.
///
/// Each writer pauses a millisecond between writes, as a client does between requests: four
/// writers in a tight loop on SQLite (one writer at a time, no queue) can starve the hold's
/// transaction past its busy timeout. Whatever the move answers, the writers stop one write
/// after it, and never run past `MAX_WRITES`, so a failed move fails the test instead of
/// hanging it.
pub fn writes_racing_a_move_are_refused_or_moved(source: Open, target: Open) {
    const MAX_WRITES: usize = 20_000;
    let (a, b) = (source(super::config()), target(super::config()));
    let t = Tokenserver::new();
    post(&a.storage, UID, "history", vec![item("first", "0")]);
    let acknowledged = Mutex::new(Vec::new());
    let move_ended = AtomicBool::new(false);
    let outcome = std::thread::scope(|scope| {
        for writer in 0..4 {
            let (a, acknowledged, move_ended) = (&a, &acknowledged, &move_ended);
            scope.spawn(move || {
                for n in 0..MAX_WRITES {
                    let last = move_ended.load(Ordering::Acquire);
                    let id = format!("w{writer}-{n}");
                    // Half the writes create a collection (up to the bound on collections).
                    let collection = match n {
                        n if n % 2 == 0 => "history",
                        n if n < 60 => format!("new{writer}-{n}").leak(),
                        _ => "bookmarks",
                    };
                    let op = PostBsos {
                        uid: UID,
                        collection: collection.to_string(),
                        bsos: vec![item(&id, &id)],
                        batch: None,
                        commit: false,
                        precondition: Precondition::None,
                    };
                    match a.storage.run(&op) {
                        Ok(_) => acknowledged.lock().unwrap().push((collection.to_string(), id)),
                        Err(StorageError::UserHeld | StorageError::Conflict) => {}
                        Err(StorageError::UserMoved) => return,
                        Err(err) => panic!("write: {err}"),
                    }
                    if last {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
        }
        std::thread::sleep(Duration::from_millis(300));
        let outcome = run(&t, &a, &b, Duration::from_secs(3600));
        move_ended.store(true, Ordering::Release);
        outcome
    });
    outcome.expect("move");
    let acknowledged = acknowledged.into_inner().unwrap();
    assert!(acknowledged.len() > 10, "the writers wrote before the move ({})", acknowledged.len());
    for (collection, id) in &acknowledged {
        let found = get(&b.storage, UID, collection, id);
        assert!(found.is_ok(), "acknowledged write {collection}/{id} is not on the target: {found:?}");
    }
}
