//! Deferred deletes and the deleter over HTTP, on every backend: a big collection's DELETE
//! answers at once and its rows are physically gone after the deleter ran (counted in the
//! database), delete-then-write races lose nothing, `weft purge` killed with SIGKILL resumes
//! and completes, and the open-batch bound and staged quota give the protocol's answers.

#[macro_use]
mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// The deleter with no grace and no pause, a pass every second.
const PURGING: &[(&str, &str)] = &[
    ("WEFT_PURGE_INTERVAL_SECONDS", "1"),
    ("WEFT_PURGE_PAUSE_MS", "0"),
    ("WEFT_PURGE_GRACE_SECONDS", "0"),
    ("WEFT_PURGE_MAX_ROWS_PER_SECOND", "0"),
    ("WEFT_PURGE_CHUNK_ROWS", "2000"),
];

const BIG: i64 = 100_000;

/// Stores `n` records in the user's `history` (collection id 4) with SQL, as fast as the
/// backend inserts, all at the time of a first record written over HTTP.
fn fill_history(server: &TestServer, user: &User, n: i64) {
    let t =
        user.put("/storage/history/first", &json!({"payload": "x"})).expect(200).ts_header("X-Last-Modified");
    let (uid, ttl) = (user.uid, t + 2_100_000_000_000);
    let sql = match server.backend {
        Backend::Sqlite => format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
             INSERT INTO bso (userid, collection, id, sortindex, payload, modified, ttl, payload_size) \
             SELECT {uid}, 4, 'r' || i, NULL, 'payload', {t}, {ttl}, 7 FROM n"
        ),
        Backend::Mysql => format!(
            "INSERT INTO bso (userid, collection, id, sortindex, payload, modified, ttl, payload_size) \
             SELECT {uid}, 4, CONCAT('r', seq), NULL, 'payload', {t}, {ttl}, 7 FROM seq_1_to_{n}"
        ),
        Backend::Postgres => format!(
            "INSERT INTO bso (userid, collection, id, sortindex, payload, modified, ttl, payload_size) \
             SELECT {uid}, 4, 'r' || i, NULL, 'payload', {t}, {ttl}, 7 FROM generate_series(1, {n}) AS i"
        ),
    };
    server.execute_sql(&sql);
}

fn stored_rows(server: &TestServer, uid: u64) -> i64 {
    server.query_i64(&format!("SELECT COUNT(*) FROM bso WHERE userid = {uid}"))
}

/// Polls until the user has `rows` stored rows; panics after `limit`.
fn wait_for_rows(server: &TestServer, uid: u64, rows: i64, limit: Duration) {
    let started = Instant::now();
    loop {
        let now = stored_rows(server, uid);
        if now == rows {
            return;
        }
        assert!(started.elapsed() < limit, "{now} rows still stored after {limit:?}\n{}", server.log_tail());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median of five small writes (one record PUT to another collection).
fn small_write(user: &User) -> Duration {
    let mut times: Vec<Duration> = (0..5)
        .map(|i| {
            let started = Instant::now();
            user.put(&format!("/storage/tabs/t{i}"), &json!({"payload": "small"})).expect(200);
            started.elapsed()
        })
        .collect();
    times.sort();
    times[2]
}

backend_tests! {
    /// DELETE of a 100,000-record collection costs about a small write; the rows are gone from
    /// the database once the deleter has run. The times are printed (BENCHMARKS.md records
    /// them); the bound asserted is generous, so that a loaded machine does not fail the test.
    fn deleting_a_big_collection_answers_at_once_and_is_purged(b: Backend) {
        let server = TestServer::start(b, PURGING);
        let user = User::new(&server);
        fill_history(&server, &user, BIG);
        assert_eq!(stored_rows(&server, user.uid), BIG + 1);
        let small = small_write(&user);
        let started = Instant::now();
        user.delete("/storage/history").expect(200);
        let delete = started.elapsed();
        println!(
            "{b:?}: DELETE of {BIG} records {:.1} ms, small write {:.1} ms (x{:.1})",
            millis(delete),
            millis(small),
            delete.as_secs_f64() / small.as_secs_f64()
        );
        assert!(delete < small * 20 + Duration::from_millis(500), "{delete:?} vs {small:?}");
        // Gone for the client at once.
        assert_eq!(user.get_json("/storage/history"), json!([]));
        assert!(user.get_json("/info/collection_counts").get("history").is_none());
        // Physically gone after the deleter: only the five small records remain.
        let purging = Instant::now();
        wait_for_rows(&server, user.uid, 5, Duration::from_secs(120));
        println!("{b:?}: the deleter removed {} rows within {:.1} s", BIG + 1, purging.elapsed().as_secs_f64());
        assert_eq!(server.query_i64("SELECT COUNT(*) FROM weft_deleted_collections"), 0);
    }

    /// 200 deletes each followed at once by a write, the deleter running all the while: each
    /// write is visible right away and still there after the deleter is done.
    fn delete_then_write_races_lose_nothing(b: Backend) {
        let mut env = PURGING.to_vec();
        env[0] = ("WEFT_PURGE_INTERVAL_SECONDS", "0");
        let server = TestServer::start(b, &env);
        let user = User::new(&server);
        for i in 0..200 {
            let collection = format!("/storage/race{}", i % 20);
            user.post(&collection, &records("old", 10)).expect(200);
            if i % 20 == 0 {
                user.delete("/storage").expect(200);
            } else {
                user.delete(&collection).expect(200);
            }
            let body = json!([{"id": "old000", "payload": format!("new{i}")}, {"id": format!("n{i}"), "payload": "new"}]);
            user.post(&collection, &body).expect(200);
            let mut got = ids_of(&user.get_json(&collection));
            got.sort();
            assert_eq!(got, [format!("n{i}"), "old000".to_string()], "iteration {i}");
        }
        // Whatever the deleter did meanwhile, it leaves exactly the writes made after the last
        // deletion of each collection: those of iterations 180..199 (180 deleted all storage).
        let started = Instant::now();
        while server.query_i64("SELECT COUNT(*) FROM weft_deleted_collections") > 0 {
            assert!(started.elapsed() < Duration::from_secs(60), "deleter never finished\n{}", server.log_tail());
            std::thread::sleep(Duration::from_millis(100));
        }
        for i in 180..200 {
            let collection = format!("/storage/race{}", i % 20);
            let v = user.get_json(&format!("{collection}?full=1"));
            let mut got: Vec<(String, String)> = v
                .as_array()
                .expect("array")
                .iter()
                .map(|b| (b["id"].as_str().unwrap_or("").to_string(), b["payload"].as_str().unwrap_or("").to_string()))
                .collect();
            got.sort();
            assert_eq!(got, [(format!("n{i}"), "new".to_string()), ("old000".to_string(), format!("new{i}"))]);
        }
        assert_eq!(stored_rows(&server, user.uid), 40);
    }

    /// `weft purge` removes a deleted collection chunk by chunk; killed with SIGKILL half-way,
    /// it loses nothing, and the next run completes, with expired items and batches too.
    fn a_purge_killed_with_sigkill_resumes_and_completes(b: Backend) {
        let env = [("WEFT_PURGE_ENABLED", "false"), ("WEFT_BATCH_TTL_SECONDS", "1")];
        let server = TestServer::start(b, &env);
        let user = User::new(&server);
        fill_history(&server, &user, 20_000);
        user.post("/storage/tabs", &json!([{"id": "short", "payload": "x", "ttl": 1}, {"id": "live", "payload": "y"}]))
            .expect(200);
        create_batch(&user, "forms", &json!([{"id": "staged", "payload": "z"}]));
        user.delete("/storage/history").expect(200);
        std::thread::sleep(Duration::from_millis(1100));
        // Slow on purpose: 500 rows a chunk, at most 4000 rows a second.
        let purge = |extra: &[&str]| {
            let mut cmd = server::weft_command("purge", server.data_dir(), server.database_url());
            cmd.args(extra)
                .env("WEFT_MASTER_SECRET", DEFAULT_SECRET)
                .env("WEFT_BATCH_TTL_SECONDS", "1")
                .env("WEFT_PURGE_GRACE_SECONDS", "0")
                .env("WEFT_PURGE_CHUNK_ROWS", "500")
                .env("WEFT_PURGE_PAUSE_MS", "0")
                .env("WEFT_PURGE_MAX_ROWS_PER_SECOND", "4000")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd
        };
        let dry = purge(&["--dry-run"]).output().expect("weft purge --dry-run");
        let dry_out = String::from_utf8_lossy(&dry.stdout);
        assert!(dry.status.success(), "{dry_out}{}", String::from_utf8_lossy(&dry.stderr));
        assert!(dry_out.contains("deleted: 20001 rows to remove"), "{dry_out}");
        assert!(dry_out.contains("ttl: 1 rows to remove"), "{dry_out}");
        assert!(dry_out.contains("batches: 2 rows to remove"), "{dry_out}");
        assert_eq!(stored_rows(&server, user.uid), 20_003, "a dry run removes nothing");

        let mut child = purge(&["--kind", "deleted"]).spawn().expect("weft purge");
        let started = Instant::now();
        while stored_rows(&server, user.uid) > 15_000 {
            assert!(started.elapsed() < Duration::from_secs(60), "the purge made no progress");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL
        let status = child.wait().expect("wait");
        assert!(!status.success(), "killed before it completed: {status:?}");
        let left = stored_rows(&server, user.uid);
        assert!(left > 2 && left <= 15_000, "{left} rows left");
        assert_eq!(server.query_i64("SELECT COUNT(*) FROM weft_deleted_collections"), 1);

        let out = purge(&["--uid", &user.uid.to_string()]).output().expect("weft purge");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("weft: purge done:"), "{text}");
        // Only the live record is left, and nothing of the deletion or the batch.
        assert_eq!(stored_rows(&server, user.uid), 1);
        assert_eq!(server.query_i64("SELECT COUNT(*) FROM weft_deleted_collections"), 0);
        assert_eq!(server.query_i64("SELECT COUNT(*) FROM batch_upload_items"), 0);
        assert_eq!(server.query_i64("SELECT COUNT(*) FROM batch_uploads"), 0);
        assert_eq!(ids_of(&user.get_json("/storage/tabs")), ["live"]);
        assert_eq!(user.get_json("/storage/history"), json!([]));
    }

    /// A user may hold `batch.max_open_per_user` open batches; one more is 400 `17`. What
    /// open batches stage counts toward the quota.
    fn open_batches_are_bounded_and_staged_bytes_count_toward_quota(b: Backend) {
        let env = [
            ("WEFT_BATCH_MAX_OPEN_PER_USER", "2"),
            ("WEFT_QUOTA_ENABLED", "true"),
            ("WEFT_QUOTA_ENFORCE", "true"),
            ("WEFT_LIMITS_MAX_QUOTA_LIMIT", "3000"),
        ];
        let server = TestServer::start(b, &env);
        let user = User::new(&server);
        let first = create_batch(&user, "history", &json!([{"id": "a", "payload": "x".repeat(1600)}]));
        let second = create_batch(&user, "forms", &json!([]));
        user.post("/storage/tabs?batch=true", &json!([])).expect_error(400, "17");
        // 1600 staged + 1500 ≥ 3000: over quota, although the batch alone is not.
        user.post(&format!("/storage/forms?batch={second}"), &json!([{"id": "b", "payload": "x".repeat(1500)}]))
            .expect_error(403, "14");
        commit_batch(&user, "history", &first, &json!([]));
        create_batch(&user, "tabs", &json!([]));
        assert_eq!(user.get_json("/info/collection_counts")["history"], 1);
    }
}
