//! Backpressure of a shard actor (issue: "each shard's queue is bounded"): when more requests
//! wait for one db node than `shard.queue_limit` allows, the extra ones are answered at once
//! with `503`, body `0` and `Retry-After` (the configured `shard.retry_after_seconds`) — never a
//! 500, never a hang — and every request that was admitted and acknowledged is stored.

#[macro_use]
mod common;

use std::sync::{Arc, Barrier};

use common::*;
use serde_json::{json, Value};

const CLIENTS: usize = 32;
const RECORDS: usize = 100;

backend_tests! {
    fn a_full_shard_queue_sheds_with_503_and_keeps_every_acknowledged_write(b: Backend) {
        let server = Arc::new(TestServer::start(
            b,
            &[
                ("WEFT_SHARD_THREADS", "1"),
                ("WEFT_SHARD_POOL_SIZE", "1"),
                ("WEFT_SHARD_QUEUE_LIMIT", "2"),
                ("WEFT_SHARD_RETRY_AFTER_SECONDS", "7"),
            ],
        ));
        let start = Arc::new(Barrier::new(CLIENTS));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (server, start) = (server.clone(), start.clone());
                std::thread::spawn(move || {
                    let user = User::new(&server);
                    let records: Vec<Value> = (0..RECORDS)
                        .map(|i| json!({"id": format!("r{i:03}"), "payload": "x".repeat(2000)}))
                        .collect();
                    start.wait();
                    let r = user.post("/storage/history", &Value::Array(records));
                    (user, r)
                })
            })
            .collect();
        // Reads only after every upload has finished: while the queue is full they would be shed too.
        let results: Vec<(User, Resp)> = clients.into_iter().map(|c| c.join().expect("client thread")).collect();
        let mut shed = 0;
        for (user, r) in results {
            match r.status {
                200 => {
                    assert_eq!(r.json()["success"].as_array().map(Vec::len), Some(RECORDS));
                    let stored = user.get_json("/storage/history");
                    assert_eq!(stored.as_array().map(Vec::len), Some(RECORDS), "acknowledged write lost");
                }
                503 => {
                    shed += 1;
                    assert_eq!(r.body.trim(), "0");
                    assert_eq!(r.must_header("Retry-After"), "7");
                    assert!(r.header("X-Weave-Timestamp").is_some());
                    // A shed request wrote nothing.
                    assert_eq!(user.get_json("/info/collections"), json!({}));
                }
                other => panic!("unexpected status {other}: {}", r.body),
            }
        }
        assert!(shed > 0, "{CLIENTS} simultaneous uploads on a queue of 2 shed nothing");
        assert!(shed < CLIENTS, "every request was shed");
    }
}
