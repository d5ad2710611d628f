//! The cache across real webheads (issue 11): `weft serve` processes sharing one MariaDB
//! database and one memcached, real Hawk-signed HTTP. Writers write through one webhead and
//! read `info/collections`, the item and its collection (a write-through one every other
//! round) through another on the very next request, thousands of times and concurrently;
//! every read must show the write just acknowledged (or a later one). The same
//! with memcached killed and restarted in the middle (no 5xx, no stale read), and with the
//! in-process cache for a single process. The scrape proves the cache was actually used.
//! Every write is later than everything its user has (issue 27): two collections written back
//! to back, by one client or by two clients on two webheads, and each `info/*` view asked with
//! `X-If-Modified-Since` = the first write's timestamp answers 200, with and without a cache.
//!
//! memcached: the shared tests use `WEFT_TEST_MEMCACHED` (scripts/test starts one on
//! 127.0.0.1:11211 and exports it); the fault test starts and kills a private one, so that it
//! disturbs nobody. Each test has its own key prefix.

#[macro_use]
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::memcached::PrivateMemcached;
use common::*;
use rand::Rng;
use serde_json::json;

/// Write-then-read rounds per writer thread.
const ROUNDS: usize = 300;
const WRITERS: usize = 6;

fn shared_memcached() -> String {
    std::env::var("WEFT_TEST_MEMCACHED").unwrap_or_else(|_| "127.0.0.1:11211".to_string())
}

fn unique_prefix() -> String {
    format!("weft-test-{:x}", rand::random::<u64>())
}

/// A webhead with metrics on, the cache settings `cache_env`, and (for the second and later
/// ones) the first one's database.
fn webhead(backend: Backend, cache_env: &[(&str, &str)], database_url: Option<&str>) -> (TestServer, String) {
    // A generous memcached timeout: the suite shares a busy machine, and a memcached call that
    // times out makes a write answer 503 by design (tested in weft-cache's own tests); here a
    // slow machine must not pass for a slow memcached.
    let mut env: Vec<(&str, &str)> = vec![
        ("WEFT_METRICS_ENABLED", "true"),
        ("WEFT_METRICS_LISTEN", "127.0.0.1:0"),
        ("WEFT_CACHE_TIMEOUT_MS", "3000"),
    ];
    env.extend_from_slice(cache_env);
    if let Some(url) = database_url {
        env.push(("WEFT_DATABASE_URL", url));
    }
    let server = TestServer::start(backend, &env);
    let metrics = server
        .log_tail()
        .lines()
        .find_map(|l| l.strip_prefix("weft: metrics on ").map(str::to_string))
        .unwrap_or_else(|| panic!("no metrics line:\n{}", server.log_tail()));
    (server, metrics)
}

/// The sum of `weft_cache_requests_total` samples with `outcome`.
fn cache_requests(metrics_url: &str, outcome: &str) -> f64 {
    let text = client::http().get(metrics_url).send().expect("scrape").text().expect("text");
    text.lines()
        .filter(|l| {
            l.starts_with("weft_cache_requests_total{") && l.contains(&format!("outcome=\"{outcome}\""))
        })
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// Sends a request: no 5xx is acceptable, not even while memcached restarts.
fn send(request: impl FnOnce() -> Resp) -> Resp {
    let r = request();
    assert!(r.status < 500, "{}: status {} body {:?}", r.what, r.status, r.body);
    r
}

/// The collections written, alternately: one cached by its timestamp only, one write-through
/// (served whole from the cache).
const COLLECTIONS: [&str; 2] = ["tabs", "clients"];

/// The timestamp (ms) of a response header or a JSON number of seconds.
fn ms(seconds: f64) -> u64 {
    (seconds * 1000.0).round() as u64
}

/// `WRITERS` threads, each with its own user: PUT an item through one webhead, then at once
/// read through another (and sometimes the same) `info/collections`, the item and its
/// collection; each must show the write just acknowledged. Readers of the same users run
/// beside them and must never see a timestamp older than an acknowledged write. Returns the
/// rounds done.
fn write_here_read_there(webheads: &[&TestServer], rounds: usize) -> usize {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let specs: Vec<TokenSpec> = (0..WRITERS).map(|_| TokenSpec::new(webheads[0])).collect();
    let users: Arc<Vec<Vec<User>>> = Arc::new(
        specs.iter().map(|spec| webheads.iter().map(|w| User::with_token(w, spec)).collect()).collect(),
    );
    // Per user and collection: the newest acknowledged timestamp (ms).
    let floors: Arc<Vec<[AtomicU64; 2]>> =
        Arc::new((0..WRITERS).map(|_| [AtomicU64::new(0), AtomicU64::new(0)]).collect());
    let mut threads = vec![];
    for w in 0..WRITERS {
        let (users, floors, done) = (users.clone(), floors.clone(), done.clone());
        threads.push(thread::spawn(move || {
            let mut rng = rand::thread_rng();
            for round in 0..rounds {
                let heads = &users[w];
                let here = rng.gen_range(0..heads.len());
                let there = (here + 1 + rng.gen_range(0..heads.len())) % heads.len();
                let c = round % COLLECTIONS.len();
                let collection = COLLECTIONS[c];
                let payload = format!("writer {w} round {round}");
                let put = send(|| heads[here].put(&format!("/storage/{collection}/t"), &json!({"payload": payload})));
                assert_eq!(put.status, 200, "{:?}", put.body);
                let written = put.ts_header("X-Last-Modified") as u64; // ms
                floors[w][c].fetch_max(written, Ordering::SeqCst);
                let info = send(|| heads[there].get("/info/collections"));
                let seen = ms(info.json()[collection].as_f64().expect("collection listed"));
                assert!(
                    seen >= written,
                    "user {w} round {round}: webhead {there} lists {collection} at {seen} ms after webhead {here} acknowledged {written}"
                );
                let item = send(|| heads[there].get(&format!("/storage/{collection}/t")));
                assert_eq!(item.json()["payload"], payload.as_str(), "user {w} round {round}: {collection}/t");
                let page = send(|| heads[there].get(&format!("/storage/{collection}?full=1")));
                assert!(page.ts_header("X-Last-Modified") as u64 >= written, "user {w} round {round}: {collection}");
                assert_eq!(page.json()[0]["payload"], payload.as_str(), "user {w} round {round}: {collection}");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for w in 0..WRITERS {
        let (users, floors, stop) = (users.clone(), floors.clone(), stop.clone());
        threads.push(thread::spawn(move || {
            let mut rng = rand::thread_rng();
            while !stop.load(Ordering::Relaxed) {
                let heads = &users[w];
                let head = &heads[rng.gen_range(0..heads.len())];
                let c = rng.gen_range(0..COLLECTIONS.len());
                let collection = COLLECTIONS[c];
                let floor = floors[w][c].load(Ordering::SeqCst);
                let info = send(|| head.get("/info/collections"));
                if let Some(ts) = info.json()[collection].as_f64() {
                    assert!(
                        ms(ts) >= floor,
                        "reader of user {w}: {collection} at {} ms after {floor} was acknowledged",
                        ms(ts)
                    );
                }
                let floor = floors[w][c].load(Ordering::SeqCst);
                let page = send(|| head.get(&format!("/storage/{collection}?full=1")));
                let seen = page.ts_header("X-Last-Modified") as u64;
                assert!(
                    seen >= floor,
                    "reader of user {w}: {collection} read at {seen} ms after {floor} was acknowledged"
                );
            }
        }));
    }
    let writers: Vec<_> = threads.drain(..WRITERS).collect();
    for t in writers {
        t.join().expect("a writer failed");
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a reader failed");
    }
    done.load(Ordering::Relaxed) as usize
}

/// Rounds of `info_views_see_every_write`.
const NEWER_ROUNDS: usize = 200;

/// The routes whose resource is the user's storage timestamp (storage-api.md §5.4).
const INFO_VIEWS: [&str; 4] =
    ["/info/collections", "/info/quota", "/info/collection_usage", "/info/collection_counts"];

/// Issue 27, as a client polling `info/*` sees it: one user writes two collections back to
/// back — a POST through `first`, then at once a PUT to another collection through `second`
/// (the same client, or another one on another webhead) — and every info view asked (through
/// either) with `X-If-Modified-Since` = the first write's timestamp must answer 200, since a
/// collection changed after it, and with the second's 304. The collections alternate between
/// ones the cache knows only by timestamp and write-through ones. Returns how many second
/// writes took the tick right after the first (the same-tick case the rounds are about).
fn info_views_see_every_write(first: &User, second: &User, rounds: usize) -> usize {
    const PAIRS: [(&str, &str); 4] =
        [("history", "bookmarks"), ("bookmarks", "clients"), ("clients", "meta"), ("meta", "history")];
    let mut next_tick = 0;
    for round in 0..rounds {
        let (a, b) = PAIRS[round % PAIRS.len()];
        let posted = send(|| {
            first.post(&format!("/storage/{a}"), &json!([{"id": format!("r{round}"), "payload": "x"}]))
        });
        assert_eq!(posted.status, 200, "{:?}", posted.body);
        let put = send(|| second.put(&format!("/storage/{b}/r{round}"), &json!({"payload": "y"})));
        assert_eq!(put.status, 200, "{:?}", put.body);
        let (t1, t2) = (posted.ts_header("X-Last-Modified"), put.ts_header("X-Last-Modified"));
        assert!(t2 > t1, "round {round}: {b} written at {t2} ms, not after {a} at {t1} ms");
        next_tick += usize::from(t2 == t1 + 10);
        let reader = if round % 2 == 0 { first } else { second };
        for view in INFO_VIEWS {
            let r = send(|| reader.req("GET", view).header("X-If-Modified-Since", &fmt_ts(t1)).send());
            assert_eq!(
                r.status, 200,
                "round {round}: {view} since {t1} ms, after {b} was written at {t2} ms"
            );
            assert_eq!(r.ts_header("X-Last-Modified"), t2, "round {round}: {view}");
            let r = send(|| reader.req("GET", view).header("X-If-Modified-Since", &fmt_ts(t2)).send());
            assert_eq!(r.status, 304, "round {round}: {view} since {t2} ms");
        }
    }
    next_tick
}

#[cfg(feature = "mysql")]
#[test]
fn two_webheads_sharing_memcached_never_serve_stale() {
    let prefix = unique_prefix();
    let servers = shared_memcached();
    let env = [("WEFT_CACHE_SERVERS", servers.as_str()), ("WEFT_CACHE_KEY_PREFIX", prefix.as_str())];
    let (a, metrics_a) = webhead(Backend::Mysql, &env, None);
    let (b, metrics_b) = webhead(Backend::Mysql, &env, Some(a.database_url()));
    let rounds = write_here_read_there(&[&a, &b], ROUNDS);
    assert_eq!(rounds, WRITERS * ROUNDS);
    let hits = cache_requests(&metrics_a, "hit") + cache_requests(&metrics_b, "hit");
    assert!(hits > 1000.0, "the cache answered only {hits} reads");
}

/// `tabs` kept only in memcached (`cache.cache_only`): the same guarantees across webheads
/// (the conformance suite checks that the database never sees a tab).
#[cfg(feature = "mysql")]
#[test]
fn cache_only_tabs_shared_by_two_webheads() {
    let prefix = unique_prefix();
    let servers = shared_memcached();
    let env = [
        ("WEFT_CACHE_SERVERS", servers.as_str()),
        ("WEFT_CACHE_KEY_PREFIX", prefix.as_str()),
        ("WEFT_CACHE_CACHE_ONLY", "tabs"),
    ];
    let (a, _) = webhead(Backend::Mysql, &env, None);
    let (b, _) = webhead(Backend::Mysql, &env, Some(a.database_url()));
    let rounds = write_here_read_there(&[&a, &b], ROUNDS / 3);
    assert_eq!(rounds, WRITERS * (ROUNDS / 3));
}

#[cfg(feature = "mysql")]
#[test]
fn memcached_killed_and_restarted_mid_load() {
    let mut memcached = PrivateMemcached::start();
    let prefix = unique_prefix();
    let address = memcached.address();
    let env = [
        ("WEFT_CACHE_SERVERS", address.as_str()),
        ("WEFT_CACHE_KEY_PREFIX", prefix.as_str()),
        ("WEFT_CACHE_RETRY_INTERVAL_MS", "200"),
    ];
    let (a, metrics_a) = webhead(Backend::Mysql, &env, None);
    let (b, _) = webhead(Backend::Mysql, &env, Some(a.database_url()));
    let (a, b) = (Arc::new(a), Arc::new(b));
    let running = Arc::new(AtomicBool::new(true));
    let rounds = Arc::new(AtomicU64::new(0));
    let load = {
        let (running, rounds, a, b) = (running.clone(), rounds.clone(), a.clone(), b.clone());
        thread::spawn(move || {
            while running.load(Ordering::Relaxed) {
                rounds.fetch_add(write_here_read_there(&[&a, &b], 20) as u64, Ordering::SeqCst);
            }
        })
    };
    for _ in 0..2 {
        thread::sleep(Duration::from_millis(2000));
        memcached.kill();
        thread::sleep(Duration::from_millis(1500));
        memcached.restart();
    }
    // At least one whole load of rounds after the last restart, however busy the machine.
    let after_restart = rounds.load(Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while rounds.load(Ordering::SeqCst) <= after_restart && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    running.store(false, Ordering::Relaxed);
    load.join().expect("no 5xx and no stale read while memcached restarted");
    let rounds = rounds.load(Ordering::SeqCst);
    assert!(rounds > after_restart, "no round completed after memcached came back ({rounds} rounds)");
    assert!(cache_requests(&metrics_a, "error") > 0.0, "memcached's absence was noticed");
}

backend_tests! {
    fn one_client_sees_every_write_in_the_info_views_with_the_in_process_cache(b: Backend) {
        let (server, metrics) = webhead(b, &[], None);
        let u = User::new(&server);
        let next_tick = info_views_see_every_write(&u, &u, NEWER_ROUNDS);
        eprintln!("{next_tick} of {NEWER_ROUNDS} second writes took the tick right after the first");
        assert!(cache_requests(&metrics, "hit") > 0.0, "the cache answered");
    }

    fn one_client_sees_every_write_in_the_info_views_without_a_cache(b: Backend) {
        let (server, metrics) = webhead(b, &[("WEFT_CACHE_MEMORY_BYTES", "0")], None);
        let u = User::new(&server);
        let next_tick = info_views_see_every_write(&u, &u, NEWER_ROUNDS);
        eprintln!("{next_tick} of {NEWER_ROUNDS} second writes took the tick right after the first");
        assert_eq!(cache_requests(&metrics, "hit") + cache_requests(&metrics, "miss"), 0.0, "no cache");
    }

    fn two_clients_on_two_webheads_sharing_memcached_see_every_write(b: Backend) {
        let prefix = unique_prefix();
        let servers = shared_memcached();
        let env = [("WEFT_CACHE_SERVERS", servers.as_str()), ("WEFT_CACHE_KEY_PREFIX", prefix.as_str())];
        let (a, metrics_a) = webhead(b, &env, None);
        let (other, metrics_b) = webhead(b, &env, Some(a.database_url()));
        let spec = TokenSpec::new(&a);
        let (here, there) = (User::with_token(&a, &spec), User::with_token(&other, &spec));
        let next_tick = info_views_see_every_write(&here, &there, NEWER_ROUNDS);
        eprintln!("{next_tick} of {NEWER_ROUNDS} second writes took the tick right after the first");
        let hits = cache_requests(&metrics_a, "hit") + cache_requests(&metrics_b, "hit");
        assert!(hits > 0.0, "memcached answered");
    }

    fn one_process_with_the_in_process_cache_never_serves_stale(b: Backend) {
        let (server, metrics) = webhead(b, &[], None);
        let rounds = write_here_read_there(&[&server], ROUNDS);
        assert_eq!(rounds, WRITERS * ROUNDS);
        assert!(cache_requests(&metrics, "hit") > 1000.0);
    }
}
