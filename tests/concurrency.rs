//! Concurrency (storage-api.md §4.2, §4.4, §5.5): many writers on one user's collection must be
//! totally ordered — every request ends in 200 or in 503 with Retry-After (retried here), every
//! acknowledged write reads back, every `modified` is unique, and the X-Last-Modified each
//! writer observes only grows; and many users uploading batches at once on a fresh database
//! produce no 5xx and lose nothing.

#[macro_use]
mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const WRITERS: usize = 8;
const POSTS_PER_WRITER: usize = 25;
const MAX_ATTEMPTS: usize = 100;

/// POSTs `body`, retrying 503s (which must carry Retry-After) a bounded number of times.
fn post_until_accepted(u: &User, rel: &str, body: &Value) -> Resp {
    for attempt in 0..MAX_ATTEMPTS {
        let r = u.post(rel, body);
        match r.status {
            503 => {
                let retry: u64 = r.must_header("Retry-After").parse().expect("Retry-After seconds");
                assert!(retry > 0);
                // Honour the hint only symbolically: the test must stay bounded.
                std::thread::sleep(Duration::from_millis(10 + 5 * attempt as u64));
            }
            _ => return r,
        }
    }
    panic!("{rel}: still 503 after {MAX_ATTEMPTS} attempts");
}

backend_tests! {
    fn many_writers_on_one_collection_are_totally_ordered(b: Backend) {
        let u = User::new(shared(b));
        let handles: Vec<_> = (0..WRITERS).map(|w| {
            let u = u.clone();
            std::thread::spawn(move || {
                let mut acked: Vec<(String, i64)> = vec![];
                let mut last_seen = 0;
                for i in 0..POSTS_PER_WRITER {
                    let id = format!("w{w}-{i:02}");
                    let r = post_until_accepted(&u, "/storage/history", &json!([{"id": id, "payload": format!("{w}/{i}")}])).expect(200);
                    let t = r.ts_header("X-Last-Modified");
                    assert_eq!(json_ts(&r.json()["modified"]), t);
                    assert_eq!(r.json()["success"], json!([id]));
                    assert!(t > last_seen, "writer {w}: X-Last-Modified went from {last_seen} to {t}");
                    last_seen = t;
                    acked.push((id, t));
                }
                acked
            })
        }).collect();
        let acked: Vec<(String, i64)> = handles.into_iter().flat_map(|h| h.join().expect("writer thread")).collect();
        assert_eq!(acked.len(), WRITERS * POSTS_PER_WRITER);
        let stamps: HashSet<i64> = acked.iter().map(|(_, t)| *t).collect();
        assert_eq!(stamps.len(), acked.len(), "two writes to one collection shared a timestamp");
        let stored = u.get_json("/storage/history?full=1");
        let stored: Vec<(String, i64)> = stored.as_array().unwrap().iter().map(|i| (i["id"].as_str().unwrap().to_string(), json_ts(&i["modified"]))).collect();
        let mut expected = acked.clone();
        expected.sort();
        let mut got = stored;
        got.sort();
        assert_eq!(got, expected, "every acknowledged write reads back with its timestamp");
        let max = acked.iter().map(|(_, t)| *t).max().unwrap();
        assert_eq!(u.get("/storage/history").ts_header("X-Last-Modified"), max);
    }

    fn fifty_users_batch_uploads_on_a_fresh_database(b: Backend) {
        let server = TestServer::start(b, &[]);
        let started = Instant::now();
        let users: Vec<User> = (0..50).map(|_| User::new(&server)).collect();
        let handles: Vec<_> = users.iter().cloned().map(|u| {
            std::thread::spawn(move || {
                let part = |p: &str, n: usize| -> Value {
                    Value::Array((0..n).map(|i| json!({"id": format!("{p}{i:02}"), "payload": format!("{}-{p}-{i}", u.uid)})).collect())
                };
                let check = |r: Resp, status: u16| -> Resp {
                    assert!(r.status < 500, "{}: {} {:?}", r.what, r.status, r.body);
                    r.expect(status)
                };
                let v = check(u.post("/storage/bookmarks?batch=true", &part("a", 34)), 202).json();
                let id = v["batch"].as_str().expect("batch id").to_string();
                check(u.post(&format!("/storage/bookmarks?batch={id}"), &part("b", 33)), 202);
                check(u.post(&format!("/storage/bookmarks?batch={id}"), &part("c", 33)), 202);
                let r = check(u.post(&format!("/storage/bookmarks?batch={id}&commit=true"), &json!([])), 200);
                r.ts_header("X-Last-Modified")
            })
        }).collect();
        for h in handles {
            h.join().expect("uploader thread");
        }
        for u in &users {
            let items = u.get_json("/storage/bookmarks?full=1");
            let items = items.as_array().unwrap();
            assert_eq!(items.len(), 100, "user {}", u.uid);
            for item in items {
                let id = item["id"].as_str().unwrap();
                let (p, i) = id.split_at(1);
                let i: usize = i.parse().unwrap();
                assert_eq!(item["payload"], format!("{}-{p}-{i}", u.uid));
            }
        }
        assert!(started.elapsed() < Duration::from_secs(300), "took {:?}", started.elapsed());
    }
}
