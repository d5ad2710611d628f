//! Graceful shutdown (issue 4): under a stream of writes, SIGTERM makes `weft serve` stop
//! accepting, finish what it accepted and exit 0; after a restart on the same database every
//! write that was acknowledged (200) reads back. The server is started here rather than through
//! the shared harness because the test needs its exit status and a second start on the same
//! database.

#[macro_use]
mod common;

use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::backend::Database;
use common::hawk;
use common::*;
use serde_json::{json, Value};

const SECRET: &str = "shutdown-test-secret-of-32-bytes-or-more";
const WRITERS: usize = 4;
/// Writes before the signal, so that requests are surely in flight when it comes.
const WRITES_BEFORE_SIGNAL: usize = 40;
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// shutdown_timeout_seconds is 10 below; the process must be gone well before this.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

struct Process {
    child: Child,
    port: u16,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, database_url: &str, run: usize) -> Process {
    let out = dir.join(format!("stdout-{run}.log"));
    let mut cmd = common::server::serve_command(dir, database_url);
    cmd.env("WEFT_MASTER_SECRET", SECRET)
        .env("WEFT_SHUTDOWN_TIMEOUT_SECONDS", "10")
        .stdin(Stdio::null())
        .stdout(File::create(&out).expect("stdout file"))
        .stderr(File::create(dir.join(format!("stderr-{run}.log"))).expect("stderr file"));
    let child = cmd.spawn().expect("spawn weft serve");
    let mut process = Process { child, port: 0 };
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if let Some(port) = text.lines().find_map(|l| l.strip_prefix("weft: listening on 127.0.0.1:")) {
            process.port = port.trim().parse().expect("port");
            return process;
        }
        assert!(process.child.try_wait().expect("try_wait").is_none(), "weft exited at start:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("weft did not start within {START_TIMEOUT:?}");
}

fn wait_exit(process: &mut Process) -> ExitStatus {
    let deadline = Instant::now() + EXIT_TIMEOUT;
    loop {
        if let Some(status) = process.child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "weft still running {EXIT_TIMEOUT:?} after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A user with a valid token for a server on `port` (the harness's `User::new` needs a
/// `TestServer`).
fn user(uid: u64, port: u16) -> User {
    let spec = TokenSpec {
        uid,
        node: PUBLIC_URL.to_string(),
        expires: hawk::now_secs() + 3600,
        salt: hawk::random_salt(),
        fxa_uid: format!("{:032x}", rand::random::<u128>()),
        fxa_kid: "0000000001234-qqo".to_string(),
        secret: SECRET.to_string(),
        raw_payload: None,
    };
    User { uid, creds: spec.credentials(), base_url: format!("http://127.0.0.1:{port}"), port }
}

backend_tests! {
    fn sigterm_exits_zero_and_loses_no_acknowledged_write(backend: Backend) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Database::create(backend, dir.path());
        let mut server = start(dir.path(), &db.url, 1);
        let uid = random_uid();
        let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (acknowledged, sent, stop) = (acknowledged.clone(), sent.clone(), stop.clone());
                let user = user(uid, server.port);
                std::thread::spawn(move || {
                    for i in 0.. {
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        let id = format!("w{w}-{i}");
                        let body = json!({"payload": format!("payload of {id}")});
                        sent.fetch_add(1, Ordering::AcqRel);
                        // After SIGTERM the connection is refused or closed: the harness
                        // panics on transport errors, which here only ends the stream.
                        match catch_unwind(AssertUnwindSafe(|| user.put(&format!("/storage/tabs/{id}"), &body))) {
                            Ok(resp) if resp.status == 200 => acknowledged.lock().unwrap().push(id),
                            Ok(resp) => assert_eq!(resp.status, 503, "{}: {}", resp.what, resp.body),
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        while sent.load(Ordering::Acquire) < WRITES_BEFORE_SIGNAL {
            std::thread::sleep(Duration::from_millis(5));
        }
        let pid = server.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
        let status = wait_exit(&mut server);
        stop.store(true, Ordering::Release);
        for writer in writers {
            let _ = writer.join();
        }
        assert!(status.success(), "weft serve exited with {status:?} after SIGTERM");
        let acknowledged = acknowledged.lock().unwrap().clone();
        assert!(acknowledged.len() >= WRITES_BEFORE_SIGNAL / 2, "only {} writes acknowledged", acknowledged.len());

        let restarted = start(dir.path(), &db.url, 2);
        let reader = user(uid, restarted.port);
        let stored: Value = reader.get_json("/storage/tabs");
        let stored: Vec<&str> = stored.as_array().expect("id list").iter().filter_map(Value::as_str).collect();
        let lost: Vec<&String> = acknowledged.iter().filter(|id| !stored.contains(&id.as_str())).collect();
        assert!(lost.is_empty(), "{} acknowledged writes lost after SIGTERM: {lost:?}", lost.len());
        drop(restarted);
        if let Some(cmd) = db.drop_command() {
            let _ = Command::new("sh").arg("-c").arg(cmd).status();
        }
    }
}
