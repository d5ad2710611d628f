//! Hostile clients and crashes (issue 13), on loopback with bounded counts and times:
//! - unauthenticated PUTs that never finish their body are answered 401 from their headers
//!   (the body is never read);
//! - a client trickling its headers, or its body, is dropped at the deadline while a normal
//!   client keeps being answered at once;
//! - the process killed with SIGKILL in the middle of a write load with batch commits loses
//!   no acknowledged write and starts again cleanly on the same database;
//! - MariaDB stopped and started under a load (a private `mariadbd`, not the shared server):
//!   no 500, 503s carry `Retry-After`, the server recovers by itself and every acknowledged
//!   write is readable afterwards.
//!
//! The memory side of the unfinished bodies is measured by `loadtests/hostile.py`, not here.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::hawk::{self, HawkParams};
use common::*;
use serde_json::{json, Value};

/// Sends `head`, then `trickle` one byte every `every`, until the server closes the connection
/// or `give_up` passes; returns what the server answered and after how long it closed.
fn trickle(port: u16, head: &[u8], trickle: &[u8], every: Duration, give_up: Duration) -> (String, Duration) {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_millis(10))).expect("read timeout");
    let started = Instant::now();
    conn.write_all(head).expect("send the head");
    let mut answer = Vec::new();
    let mut next = trickle.iter().cycle();
    while started.elapsed() < give_up {
        let mut buf = [0u8; 4096];
        match conn.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&answer).into_owned(), started.elapsed()),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return (String::from_utf8_lossy(&answer).into_owned(), started.elapsed()),
        }
        if let Some(byte) = next.next() {
            if conn.write_all(&[*byte]).is_err() {
                return (String::from_utf8_lossy(&answer).into_owned(), started.elapsed());
            }
        }
        std::thread::sleep(every);
    }
    panic!(
        "the server kept the connection open for {give_up:?}; it answered {:?}",
        String::from_utf8_lossy(&answer)
    );
}

/// A signed request head for `user`, as a raw HTTP/1.1 message.
fn signed_head(user: &User, method: &str, rel: &str, extra: &str) -> Vec<u8> {
    let target = user.path(rel);
    let nonce = hawk::random_nonce();
    let params = HawkParams {
        method,
        target: &target,
        host: "127.0.0.1",
        port: user.port,
        ts: hawk::now_secs(),
        nonce: &nonce,
        hash: None,
        ext: None,
    };
    let auth = hawk::authorization(&user.creds.id, &user.creds.key, &params);
    format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: {auth}\r\n{extra}\r\n",
        user.port
    )
    .into_bytes()
}

#[test]
fn unauthenticated_unfinished_bodies_are_refused_from_their_headers() {
    let server = TestServer::start(Backend::Sqlite, &[]);
    let part = vec![b'x'; 64 * 1024];
    let conns: Vec<TcpStream> = (0..300)
        .map(|i| {
            let mut conn = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
            let head = format!(
                "PUT /1.5/{}/storage/bookmarks/a HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
                 Content-Type: application/json\r\nContent-Length: 2621440\r\n\r\n",
                i + 1,
                server.port
            );
            conn.write_all(head.as_bytes()).expect("send the head");
            conn.write_all(&part).expect("send part of the body");
            conn
        })
        .collect();
    // Every one is answered without the rest of its body ever being sent: the server looked
    // at the headers only; and then the server closes the connection, so that the unsent rest
    // of the body cannot hold it. (The server's memory is measured by loadtests/hostile.py.)
    // The bound is for a machine busy with other work (an idle one closes all 300 in a second
    // or two); 30 s left 16 of 300 open at a load average of 15 on 2 cores.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut left_open = 0;
    for mut conn in conns {
        let left = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        conn.set_read_timeout(Some(left())).expect("read timeout");
        let mut answer = [0u8; 12];
        conn.read_exact(&mut answer).expect("an answer within 90 s, from the headers alone");
        assert_eq!(&answer, b"HTTP/1.1 401", "{:?}", String::from_utf8_lossy(&answer));
        let (mut rest, mut head) = ([0u8; 4096], Vec::new());
        loop {
            conn.set_read_timeout(Some(left())).expect("read timeout");
            match conn.read(&mut rest) {
                // Closed (EOF, or a reset because the unread body was discarded).
                Ok(0) => break,
                Err(e)
                    if !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    break
                }
                Ok(n) => {
                    head.extend_from_slice(&rest[..n]);
                    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    assert!(!head.contains("\r\n\r\n") || head.contains("connection: close"), "{head}");
                }
                Err(_) => {
                    left_open += 1;
                    break;
                }
            }
        }
    }
    assert_eq!(left_open, 0, "connections still open 90 s after their 401");
}

#[test]
fn slow_headers_and_slow_bodies_are_dropped_at_their_deadlines_while_others_are_served() {
    let server = TestServer::start(
        Backend::Sqlite,
        &[("WEFT_HTTP_HEADER_TIMEOUT_MS", "1000"), ("WEFT_HTTP_BODY_TIMEOUT_MS", "1500")],
    );
    let user = User::new(&server);
    user.put("/storage/bookmarks/seed", &json!({"payload": "x"})).expect(200);
    let port = server.port;

    let slow_headers = std::thread::spawn(move || {
        let head = format!("GET /__lbheartbeat__ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
        trickle(
            port,
            head.as_bytes(),
            b"X-Slow: yes\r\n",
            Duration::from_millis(100),
            Duration::from_secs(10),
        )
    });
    let slow_body = {
        let head = signed_head(
            &user,
            "PUT",
            "/storage/bookmarks/slow",
            "Content-Type: application/json\r\nContent-Length: 1000\r\n",
        );
        std::thread::spawn(move || {
            trickle(
                port,
                &head,
                br#"{"payload":"xxxxxxxxxxxxxxxx"#,
                Duration::from_millis(100),
                Duration::from_secs(10),
            )
        })
    };

    // Meanwhile a normal client is answered as usual.
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let t = Instant::now();
        user.get("/storage/bookmarks/seed").expect(200);
        slowest = slowest.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(slowest < Duration::from_secs(1), "a normal request took {slowest:?} beside the slow clients");

    let (answer, closed_after) = slow_headers.join().expect("slow headers");
    assert!(closed_after < Duration::from_secs(4), "trickled headers kept for {closed_after:?}");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    let (answer, closed_after) = slow_body.join().expect("slow body");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(closed_after < Duration::from_secs(4), "trickled body kept for {closed_after:?}");
    // The trickled PUT wrote nothing.
    user.get("/storage/bookmarks/slow").expect(404);
}

/// `weft serve` on the database of `server` (same secret and public URL), as a second process.
fn restart_on(server: &TestServer, data_dir: &std::path::Path) -> (Child, u16) {
    let mut cmd = common::server::serve_command(data_dir, server.database_url());
    cmd.env("WEFT_MASTER_SECRET", DEFAULT_SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn weft serve again");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(port) =
                line.strip_prefix("weft: listening on 127.0.0.1:").and_then(|p| p.parse::<u16>().ok())
            {
                let _ = tx.send(port);
            }
        }
    });
    let port = rx.recv_timeout(Duration::from_secs(30)).expect("the restarted server announced its port");
    (child, port)
}

backend_tests! {
    fn sigkill_during_writes_and_batch_commits_loses_no_acknowledged_write(b: Backend) {
        let server = TestServer::start(b, &[]);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let (user, stop) = (User::new(&server), stop.clone());
                std::thread::spawn(move || {
                    // id → payload of every write the server acknowledged.
                    let mut acknowledged = BTreeMap::new();
                    for round in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let records: Vec<Value> = (0..10)
                            .map(|i| json!({"id": format!("w{w}r{round}i{i}"), "payload": format!("p{round}-{i}")}))
                            .collect();
                        let written: Option<Vec<Value>> = if round % 2 == 0 {
                            let r = user.req("POST", "/storage/history").json(&Value::Array(records.clone())).try_send();
                            r.ok().filter(|r| r.status == 200).map(|_| records)
                        } else {
                            let (first, second) = (records[..5].to_vec(), records[5..].to_vec());
                            let staged = user
                                .req("POST", "/storage/history?batch=true")
                                .json(&Value::Array(first))
                                .try_send()
                                .ok()
                                .filter(|r| r.status == 202);
                            staged.and_then(|staged| {
                                let batch = staged.json()["batch"].as_str().map(str::to_owned)?;
                                user.req("POST", &format!("/storage/history?batch={batch}&commit=true"))
                                    .json(&Value::Array(second))
                                    .try_send()
                                    .ok()
                                    .filter(|r| r.status == 200)
                                    .map(|_| records)
                            })
                        };
                        match written {
                            Some(records) => {
                                for r in records {
                                    acknowledged.insert(r["id"].as_str().unwrap().to_owned(), r["payload"].clone());
                                }
                            }
                            // The server is gone (or refused): nothing more is acknowledged.
                            None => break,
                        }
                    }
                    (user, acknowledged)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1500));
        let killed = std::process::Command::new("kill").args(["-KILL", &server.pid().to_string()]).status();
        assert!(killed.map(|s| s.success()).unwrap_or(false), "kill -KILL the server");
        stop.store(true, Ordering::Relaxed);
        let results: Vec<(User, BTreeMap<String, Value>)> =
            writers.into_iter().map(|w| w.join().expect("writer")).collect();
        let total: usize = results.iter().map(|(_, a)| a.len()).sum();
        assert!(total > 0, "no write was acknowledged before the kill");

        let data_dir = tempfile::tempdir().expect("temp dir");
        let (mut restarted, port) = restart_on(&server, data_dir.path());
        for (mut user, acknowledged) in results {
            user.base_url = format!("http://127.0.0.1:{port}");
            user.port = port;
            let stored = user.get_json("/storage/history?full=1");
            let stored: BTreeMap<String, Value> = stored
                .as_array()
                .expect("a list")
                .iter()
                .map(|bso| (bso["id"].as_str().unwrap().to_owned(), bso["payload"].clone()))
                .collect();
            for (id, payload) in &acknowledged {
                assert_eq!(stored.get(id), Some(payload), "acknowledged write {id} lost after SIGKILL");
            }
            // And the restarted server takes writes again.
            user.put("/storage/history/after-restart", &json!({"payload": "ok"})).expect(200);
        }
        let _ = restarted.kill();
        let _ = restarted.wait();
    }
}

/// What one writer saw during the MariaDB restart: statuses by phase, and what was acknowledged.
#[cfg(feature = "mysql")]
#[derive(Default)]
struct RestartTally {
    /// (status, had `Retry-After`) of every answer.
    answers: Vec<(u16, bool)>,
    /// Requests the server never answered (a reset connection, a client timeout).
    unanswered: Vec<String>,
    /// id → payload of every write answered 200.
    acknowledged: BTreeMap<String, Value>,
    /// Writes answered 200 after the database came back.
    acknowledged_after_restart: usize,
}

#[cfg(feature = "mysql")]
#[test]
fn mariadb_stopped_and_started_under_load_gives_no_500_and_loses_nothing() {
    let mut mariadb = match common::mariadb::PrivateMariadb::start() {
        Ok(server) => server,
        Err(reason) => {
            // Only when mariadbd is missing; scripts/test installs mariadb-server.
            eprintln!("SKIPPED mariadb_stopped_and_started_under_load: {reason}");
            return;
        }
    };
    mariadb.target().execute("CREATE DATABASE weft_fault");
    let url = mariadb.target().url("weft_fault");
    // A short wait for a connection, so that requests during the outage are answered 503 soon
    // rather than queueing behind each other.
    let server = TestServer::start_on(
        Backend::Mysql,
        &url,
        &[("WEFT_SHARD_CONNECTION_TIMEOUT_MS", "500"), ("WEFT_LOG", "warn")],
    );
    let restarted = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let (user, restarted, stop) = (User::new(&server), restarted.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut tally = RestartTally::default();
                for round in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let after_restart = restarted.load(Ordering::Relaxed);
                    let records: Vec<Value> = (0..5)
                        .map(|i| json!({"id": format!("w{w}r{round}i{i}"), "payload": format!("p{round}-{i}")}))
                        .collect();
                    let answer = if round % 3 == 2 {
                        user.req("GET", "/storage/history?full=1&limit=20").try_send()
                    } else {
                        user.req("POST", "/storage/history").json(&Value::Array(records.clone())).try_send()
                    };
                    match answer {
                        Ok(r) => {
                            tally.answers.push((r.status, r.header("retry-after").is_some()));
                            if r.status == 200 && round % 3 != 2 {
                                tally.acknowledged_after_restart += usize::from(after_restart);
                                for r in records {
                                    tally.acknowledged.insert(r["id"].as_str().unwrap().to_owned(), r["payload"].clone());
                                }
                            }
                            if r.status == 503 {
                                // As Firefox would: back off a little (not the full Retry-After).
                                std::thread::sleep(Duration::from_millis(200));
                            }
                        }
                        Err(e) => tally.unanswered.push(e),
                    }
                }
                (user, tally)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    mariadb.stop();
    std::thread::sleep(Duration::from_secs(4));
    mariadb.start_again();
    restarted.store(true, Ordering::Relaxed);
    // Recovery: the load goes on until every writer has had a write acknowledged again, within
    // a bound.
    std::thread::sleep(Duration::from_secs(6));
    stop.store(true, Ordering::Relaxed);
    let results: Vec<(User, RestartTally)> = writers.into_iter().map(|w| w.join().expect("writer")).collect();

    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for (_, tally) in &results {
        for (status, _) in &tally.answers {
            *by_status.entry(*status).or_default() += 1;
        }
    }
    // The numbers for the record (issue 13 asks for the 5xx counts).
    eprintln!("MariaDB restart under load: answers by status {by_status:?}");
    for (user, tally) in &results {
        assert!(tally.unanswered.is_empty(), "uid {}: unanswered requests {:?}", user.uid, tally.unanswered);
        for (status, retry_after) in &tally.answers {
            assert!(
                matches!(status, 200 | 503),
                "uid {}: HTTP {status} during the restart (statuses {by_status:?}); log:\n{}",
                user.uid,
                server.log_tail()
            );
            assert!(*status != 503 || *retry_after, "a 503 without Retry-After");
        }
        assert!(
            tally.acknowledged_after_restart > 0,
            "uid {}: no write acknowledged after the restart",
            user.uid
        );
    }
    assert!(by_status.get(&503).copied().unwrap_or(0) > 0, "the outage was not seen: {by_status:?}");
    // Nothing acknowledged was lost.
    for (user, tally) in &results {
        let stored: BTreeMap<String, Value> = user
            .get_json("/storage/history?full=1")
            .as_array()
            .expect("a list")
            .iter()
            .map(|bso| (bso["id"].as_str().unwrap().to_owned(), bso["payload"].clone()))
            .collect();
        for (id, payload) in &tally.acknowledged {
            assert_eq!(stored.get(id), Some(payload), "acknowledged write {id} lost across the restart");
        }
    }
}
