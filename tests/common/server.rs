//! Starting and stopping a real `weft serve` process for the tests.
//!
//! Every server gets its own temp dir, a fresh database (see `backend.rs`), port 0 and the public
//! URL `http://weft.test`. Start-up waits (bounded, 30 s) for the `weft: listening on …` line;
//! afterwards stdout and stderr are drained by threads so the pipes never fill, and the tail of
//! both is kept for failure messages. A server is killed on Drop; servers shared through a
//! `static` are never dropped, so each server also has a watchdog shell, blocked reading a pipe
//! held by this process, that kills the server (by pid) and drops its MySQL database as soon as
//! the test process exits.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::backend::{Backend, Database};

pub const PUBLIC_URL: &str = "http://weft.test";
pub const DEFAULT_SECRET: &str = "weft-test-master-secret-of-32-bytes-or-more";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const LOG_TAIL_BYTES: usize = 64 * 1024;
/// The `sqlite3` CLI waits for the server's write lock like the server's own connections do,
/// instead of failing at once with "database is locked" when it meets a write in progress.
const SQLITE3_WAITS: [&str; 2] = ["-cmd", ".timeout 10000"];

pub struct TestServer {
    pub backend: Backend,
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// The secret new users' tokens are signed with (the last of the server's list).
    pub master_secret: String,
    child: Child,
    watchdog: Option<(Child, ChildStdin)>,
    db: Database,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

fn append_log(log: &Mutex<String>, line: &str) {
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    log.push_str(line);
    log.push('\n');
    if log.len() > LOG_TAIL_BYTES {
        let mut cut = log.len() - LOG_TAIL_BYTES / 2;
        while !log.is_char_boundary(cut) {
            cut += 1;
        }
        log.drain(..cut);
    }
}

/// The `weft` binary under test: this build's, or the one `WEFT_TEST_SERVER_BINARY` names (to
/// measure an older build with the same scenarios, e.g. the attack suite's "before" figures).
pub fn weft_binary() -> std::path::PathBuf {
    std::env::var_os("WEFT_TEST_SERVER_BINARY").map_or_else(|| env!("CARGO_BIN_EXE_weft").into(), Into::into)
}

/// `weft serve` on port 0 with the harness's public URL, `data_dir` and database, and no other
/// `WEFT_*` variable: the server refuses unknown ones, and inherited ones would make the run
/// depend on the developer's shell.
pub fn serve_command(data_dir: &std::path::Path, database_url: &str) -> Command {
    weft_command("serve", data_dir, database_url)
}

/// `weft <subcommand>` with the harness's public URL, `data_dir` and database, and no other
/// `WEFT_*` variable (see `serve_command`).
pub fn weft_command(subcommand: &str, data_dir: &std::path::Path, database_url: &str) -> Command {
    let mut cmd = Command::new(weft_binary());
    cmd.arg(subcommand);
    for (name, _) in std::env::vars() {
        if name.starts_with("WEFT_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("WEFT_LISTEN", "127.0.0.1:0")
        .env("WEFT_PUBLIC_URL", PUBLIC_URL)
        .env("WEFT_DATA_DIR", data_dir)
        .env("WEFT_DATABASE_URL", database_url);
    cmd
}

impl TestServer {
    /// A server with the default secret and `extra_env` (`WEFT_*` settings) on top of the
    /// harness's own variables.
    pub fn start(backend: Backend, extra_env: &[(&str, &str)]) -> TestServer {
        Self::launch(backend, extra_env, None, DEFAULT_SECRET, None)
    }

    /// A server configured by a TOML file (e.g. `master_secrets = ["old", "new"]`); no
    /// `WEFT_MASTER_SECRET` is set so the file's list is in force. `signing_secret` is the secret
    /// `User::new` mints tokens with.
    pub fn start_with_config(
        backend: Backend,
        extra_env: &[(&str, &str)],
        config_toml: &str,
        signing_secret: &str,
    ) -> TestServer {
        Self::launch(backend, extra_env, Some(config_toml), signing_secret, None)
    }

    /// A server on a database that someone else created and owns (a test's private MariaDB).
    pub fn start_on(backend: Backend, database_url: &str, extra_env: &[(&str, &str)]) -> TestServer {
        Self::launch(backend, extra_env, None, DEFAULT_SECRET, Some(database_url))
    }

    /// A second webhead on `other`'s database (a fleet shares its databases), with its own
    /// data dir, port and config file; `other` owns (and drops) the database.
    pub fn start_beside(
        other: &TestServer,
        extra_env: &[(&str, &str)],
        config_toml: &str,
        signing_secret: &str,
    ) -> TestServer {
        Self::launch(other.backend, extra_env, Some(config_toml), signing_secret, Some(other.database_url()))
    }

    fn launch(
        backend: Backend,
        extra_env: &[(&str, &str)],
        config_toml: Option<&str>,
        signing_secret: &str,
        shared_database: Option<&str>,
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = match shared_database {
            Some(url) => Database { url: url.to_string(), mysql: None, postgres: None },
            None => Database::create(backend, dir.path()),
        };
        let mut cmd = serve_command(dir.path(), &db.url);
        match config_toml {
            Some(text) => {
                let path = dir.path().join("weft.toml");
                std::fs::write(&path, text).expect("write config file");
                cmd.arg("--config").arg(path);
            }
            None => {
                cmd.env("WEFT_MASTER_SECRET", signing_secret);
            }
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child =
            cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn {}: {e}", env!("CARGO_BIN_EXE_weft")));

        let watchdog = spawn_watchdog(child.id(), db.drop_command());
        let log = Arc::new(Mutex::new(String::new()));

        let stderr = child.stderr.take().expect("piped stderr");
        let err_log = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                append_log(&err_log, String::from_utf8_lossy(&line).trim_end());
                line.clear();
            }
        });

        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<u16>();
        let out_log = Arc::clone(&log);
        std::thread::spawn(move || {
            // Byte lines (not `String`) so that non-UTF-8 output cannot stop the draining.
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            let mut announced = false;
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end();
                append_log(&out_log, text);
                if !announced {
                    if let Some(port) = text
                        .strip_prefix("weft: listening on 127.0.0.1:")
                        .and_then(|p| p.trim().parse::<u16>().ok())
                    {
                        announced = true;
                        let _ = tx.send(port);
                    }
                }
            }
        });

        let port = match rx.recv_timeout(START_TIMEOUT) {
            Ok(port) => port,
            Err(e) => {
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "weft serve ({backend:?}) did not announce `weft: listening on 127.0.0.1:<port>` \
                     within {START_TIMEOUT:?} ({e}; exit status {status:?}). Output:\n{}",
                    log.lock().unwrap_or_else(|e| e.into_inner())
                );
            }
        };

        TestServer {
            backend,
            port,
            base_url: format!("http://127.0.0.1:{port}"),
            master_secret: signing_secret.to_string(),
            child,
            watchdog,
            db,
            log,
            _dir: dir,
        }
    }

    /// The last lines the server printed, for assertion messages.
    pub fn log_tail(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The server's database URL (`sqlite:…`, `mysql://…/weft_test_…` or
    /// `postgres://…/weft_test_…`), for tests that run
    /// admin commands or hold locks on it.
    pub fn database_url(&self) -> &str {
        &self.db.url
    }

    /// The server's `data_dir` (its config file, if any, is `weft.toml` in it).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Runs SQL on the server's database directly, as an operator's tool would (`sqlite3`,
    /// `mariadb` or `psql` CLI); panics with the CLI's message on failure.
    pub fn execute_sql(&self, sql: &str) {
        match (&self.db.mysql, &self.db.postgres) {
            (Some((target, name)), _) => target.execute(&format!("USE {name}; {sql}")),
            (None, Some((target, name))) => {
                let out = Command::new("psql")
                    .args(target.psql_args(name))
                    .arg("-c")
                    .arg(sql)
                    .output()
                    .expect("run the psql CLI");
                assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
            }
            (None, None) => {
                let path = self.db.url.strip_prefix("sqlite:").expect("sqlite URL");
                let out = Command::new("sqlite3")
                    .args(SQLITE3_WAITS)
                    .args([path, sql])
                    .output()
                    .expect("run the sqlite3 CLI");
                assert!(out.status.success(), "sqlite3 {sql}: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
    }

    /// Runs one query on the server's database with the same CLIs and returns its rows, one
    /// line each, columns separated by tabs (`sqlite3` with `-separator`, `mariadb -N -B`,
    /// `psql -t -A`), trimmed.
    pub fn query_sql(&self, sql: &str) -> String {
        let out = match (&self.db.mysql, &self.db.postgres) {
            (Some((target, name)), _) => Command::new("mariadb")
                .args(target.cli_args())
                .args(["-N", "-B", "-e"])
                .arg(format!("USE {name}; {sql}"))
                .output()
                .expect("run the mariadb CLI"),
            (None, Some((target, name))) => Command::new("psql")
                .args(target.psql_args(name))
                .args(["-t", "-A", "-F", "\t", "-c"])
                .arg(sql)
                .output()
                .expect("run the psql CLI"),
            (None, None) => {
                let path = self.db.url.strip_prefix("sqlite:").expect("sqlite URL");
                Command::new("sqlite3")
                    .args(SQLITE3_WAITS)
                    .args(["-separator", "\t", path, sql])
                    .output()
                    .expect("run the sqlite3 CLI")
            }
        };
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs a query returning one integer (a count, say) on the server's database.
    pub fn query_i64(&self, sql: &str) -> i64 {
        let text = self.query_sql(sql);
        text.parse().unwrap_or_else(|_| panic!("{sql}: not an integer: {text:?}"))
    }

    /// The server process's id (only for kill-by-pid in tests that need it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// `sh` waiting on a pipe whose writer is this test process: EOF (the test process exited or
/// dropped the server) makes it kill the server by pid and drop the MySQL database.
fn spawn_watchdog(pid: u32, drop_db: Option<String>) -> Option<(Child, ChildStdin)> {
    let script = format!(
        "read _ignored; kill {pid} 2>/dev/null; {}",
        drop_db.map(|c| format!("sleep 1; {c}")).unwrap_or_else(|| "true".into())
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let stdin = child.stdin.take()?;
    Some((child, stdin))
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // The watchdog goes first (by its own pid) so it can never signal a recycled pid.
        if let Some((mut watchdog, stdin)) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
            drop(stdin);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(cmd) = self.db.drop_command() {
            let _ = Command::new("sh").arg("-c").arg(cmd).status();
        }
    }
}

/// Small limits for tests about size accounting; they satisfy the server's validation
/// (`max_request_bytes >= max_post_bytes + 4096`, payload limit = post limit, totals >= post).
pub const SMALL_LIMITS: &[(&str, &str)] = &[
    ("WEFT_LIMITS_MAX_POST_RECORDS", "5"),
    ("WEFT_LIMITS_MAX_POST_BYTES", "1000"),
    ("WEFT_LIMITS_MAX_RECORD_PAYLOAD_BYTES", "1000"),
    ("WEFT_LIMITS_MAX_REQUEST_BYTES", "5096"),
    ("WEFT_LIMITS_MAX_TOTAL_RECORDS", "12"),
    ("WEFT_LIMITS_MAX_TOTAL_BYTES", "2500"),
];

static SHARED: [OnceLock<TestServer>; 6] =
    [OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new()];

fn backend_index(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 0,
        Backend::Mysql => 1,
        Backend::Postgres => 2,
    }
}

/// The one default-configured server per backend shared by the ordinary tests of a test
/// binary; tests stay independent by using fresh random uids.
pub fn shared(backend: Backend) -> &'static TestServer {
    SHARED[backend_index(backend)].get_or_init(|| TestServer::start(backend, &[]))
}

/// A shared server per backend configured with `SMALL_LIMITS`.
pub fn shared_small(backend: Backend) -> &'static TestServer {
    SHARED[3 + backend_index(backend)].get_or_init(|| TestServer::start(backend, SMALL_LIMITS))
}
