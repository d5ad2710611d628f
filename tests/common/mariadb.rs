//! A MariaDB server of a test's own: `mariadbd` on a free loopback port with its data
//! directory in a temp dir, so that a test can stop and start it without disturbing the shared
//! server the rest of the suite uses. Killed on drop.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::backend::MysqlTarget;

/// Start-up and shutdown each take a few seconds on a busy machine; past this the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct PrivateMariadb {
    pub port: u16,
    mariadbd: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// `mariadbd` on the PATH or where Debian puts it (`/usr/sbin`, often not on a user's PATH).
fn find_mariadbd() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|dir| dir.join("mariadbd")).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path.into_iter().chain([PathBuf::from("/usr/sbin/mariadbd")]).find(|path| path.is_file())
}

impl PrivateMariadb {
    /// A fresh server, or `Err` with the reason when `mariadbd` is not installed (the caller
    /// skips with that reason; scripts/test installs mariadb-server, so CI runs the test).
    pub fn start() -> Result<PrivateMariadb, String> {
        let mariadbd = find_mariadbd().ok_or("mariadbd is not installed")?;
        let dir = tempfile::tempdir().expect("temp dir");
        let install = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .args(["--auth-root-authentication-method=normal", "--user=root", "--skip-test-db"])
            .args(server_options())
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("mariadb-install-db cannot run: {e}"))?;
        assert!(
            install.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&install.stderr)
        );
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = PrivateMariadb { port, mariadbd, dir, child: None };
        server.start_again();
        Ok(server)
    }

    pub fn target(&self) -> MysqlTarget {
        MysqlTarget { user: "root".into(), password: None, host: "127.0.0.1".into(), port: self.port }
    }

    /// Starts the server on its data directory and waits until it accepts connections.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the private MariaDB is already running");
        let data = self.dir.path().join("data");
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("server log");
        let child = Command::new(&self.mariadbd)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", self.dir.path().join("mariadbd.sock").display()))
            .arg(format!("--pid-file={}", self.dir.path().join("mariadbd.pid").display()))
            .args(["--user=root", "--skip-log-bin"])
            .args(server_options())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn mariadbd");
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "the private MariaDB did not start: {}", self.log_tail());
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server as an operator would (SIGTERM, then waits for it to exit).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + READY_TIMEOUT;
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the private MariaDB did not stop within {READY_TIMEOUT:?}");
                }
                thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        text.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

/// Small memory and log files: the server holds one test's few thousand rows.
fn server_options() -> [&'static str; 2] {
    ["--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M"]
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
