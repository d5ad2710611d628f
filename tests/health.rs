//! Health endpoints (ops-model.md §2, issue 4): `/__heartbeat__` reports every node's database
//! and fails (503) while one is unavailable, recovering when it returns; `/__lbheartbeat__`
//! and `/__version__` answer as specified. A database is made unavailable the way it can be on
//! a fresh CI machine, bounded in time: for SQLite, its path turned into a directory (tests run
//! as root, so file permissions would not stop the server); for MariaDB, the node's own user
//! locked and its connections killed.

#[macro_use]
mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

const SECOND_NODE: &str = "http://node-2.weft.test";

fn get(server: &TestServer, path: &str) -> Resp {
    let resp = client::http().get(format!("{}{path}", server.base_url)).send().expect("GET");
    Resp {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.text().unwrap_or_default(),
        what: format!("GET {path}"),
    }
}

/// The heartbeat answers from a result up to 1 s old (issue 13).
fn wait_for_a_fresh_check() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

/// (status, body) of `/__heartbeat__`.
fn heartbeat(server: &TestServer) -> (u16, Value) {
    let resp = get(server, "/__heartbeat__");
    (resp.status, resp.json())
}

#[track_caller]
fn assert_node(body: &Value, node: &str, database: &str) {
    assert_eq!(body["nodes"][node]["database"], database, "node {node} in {body}");
}

/// A config with a second node on `database_url`; short connection waits keep failures quick.
fn two_node_config(database_url: &str) -> String {
    format!(
        "master_secrets = [\"health-secret-of-32-bytes-or-more-000\"]\n\
         [shard]\nconnection_timeout_ms = 500\n\
         [[nodes]]\nurl = \"{SECOND_NODE}\"\ndatabase_url = \"{database_url}\"\n"
    )
}

backend_tests! {
    fn lbheartbeat_and_version_answer(backend: Backend) {
        let server = shared(backend);
        let lb = get(server, "/__lbheartbeat__").expect(200).json();
        assert!(lb["active_connections"].is_u64() && lb["idle_connections"].is_u64(), "{lb}");
        assert!(lb.get("duration_ms").is_none(), "not saturated: {lb}");
        let version = get(server, "/__version__").expect(200).json();
        for key in ["version", "commit", "source", "build"] {
            assert!(version[key].is_string(), "{key} in {version}");
        }
        assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
        let (status, body) = heartbeat(server);
        assert_eq!(status, 200, "{body}");
        assert_eq!((body["status"].as_str(), body["database"].as_str()), (Some("Ok"), Some("Ok")));
        assert_eq!(body["quota"]["size"], 2_097_152_000u64);
        assert_node(&body, PUBLIC_URL, "Ok");
    }

    fn responses_carry_a_request_id(backend: Backend) {
        let server = shared(backend);
        let sent = client::http()
            .get(format!("{}/__lbheartbeat__", server.base_url))
            .header("X-Request-Id", "lb-check-42")
            .send()
            .expect("GET");
        assert_eq!(sent.headers()["x-request-id"], "lb-check-42");
        let generated = get(server, "/__lbheartbeat__").must_header("x-request-id");
        assert!(generated.len() == 32 && generated.bytes().all(|b| b.is_ascii_hexdigit()), "{generated}");
    }
}

#[test]
fn heartbeat_fails_while_a_sqlite_node_cannot_be_opened_and_recovers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("node2.db");
    // A directory where the database file should be: no process, root included, opens it.
    std::fs::create_dir(&path).expect("block the database path");
    let server = TestServer::start_with_config(
        Backend::Sqlite,
        // Nothing to migrate on a database that cannot be opened; the tokenserver (which
        // needs its tables) is not part of this test.
        &[("WEFT_RUN_MIGRATIONS", "false"), ("WEFT_TOKENSERVER_ENABLED", "false")],
        &two_node_config(&format!("sqlite:{}", path.display())),
        "health-secret-of-32-bytes-or-more-000",
    );
    let (status, body) = heartbeat(&server);
    assert_eq!(status, 503, "{body}");
    assert_eq!((body["status"].as_str(), body["database"].as_str()), (Some("Err"), Some("Unknown")));
    assert_node(&body, PUBLIC_URL, "Ok");
    assert_node(&body, SECOND_NODE, "Unknown");
    assert!(body["nodes"][SECOND_NODE]["database_msg"].is_string(), "{body}");
    assert!(!body.to_string().contains(&path.display().to_string()), "no paths in a public body: {body}");

    std::fs::remove_dir(&path).expect("unblock the database path");
    wait_for_a_fresh_check();
    let (status, body) = heartbeat(&server);
    assert_eq!(status, 200, "{body}");
    assert_node(&body, SECOND_NODE, "Ok");
    assert!(Path::new(&path).is_file());
}

/// A MariaDB database and a user of its own for the second node, dropped on Drop.
#[cfg(feature = "mysql")]
struct OwnUserDatabase {
    target: common::backend::MysqlTarget,
    name: String,
}

#[cfg(feature = "mysql")]
impl OwnUserDatabase {
    const HOSTS: [&'static str; 2] = ["127.0.0.1", "localhost"];

    fn create() -> OwnUserDatabase {
        let target = common::backend::MysqlTarget::from_env();
        let name = format!("weft_test_hb_{}", std::process::id());
        let db = OwnUserDatabase { target, name };
        db.drop_all();
        let mut sql = format!("CREATE DATABASE {0};", db.name);
        // Both host forms: 127.0.0.1 matches under skip-name-resolve, localhost otherwise.
        for host in Self::HOSTS {
            sql += &format!(
                "CREATE USER '{0}'@'{host}' IDENTIFIED BY 'hb-pass'; GRANT ALL ON {0}.* TO '{0}'@'{host}';",
                db.name
            );
        }
        db.target.execute(&sql);
        db
    }

    fn url(&self) -> String {
        format!("mysql://{0}:hb-pass@{1}:{2}/{0}", self.name, self.target.host, self.target.port)
    }

    /// Locks the account (no new connections) and kills the open ones.
    fn make_unavailable(&self) {
        let locks: String =
            Self::HOSTS.iter().map(|h| format!("ALTER USER '{}'@'{h}' ACCOUNT LOCK;", self.name)).collect();
        self.target.execute(&locks);
        let out = Command::new("mariadb")
            .args(self.target.cli_args())
            .args(["-N", "-B", "-e"])
            .arg(format!("SELECT id FROM information_schema.processlist WHERE user = '{}'", self.name))
            .output()
            .expect("mariadb CLI");
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            // A connection may end by itself meanwhile; that is as good.
            let _ = Command::new("mariadb")
                .args(self.target.cli_args())
                .arg("-e")
                .arg(format!("KILL {id}"))
                .output();
        }
    }

    fn make_available(&self) {
        let unlocks: String =
            Self::HOSTS.iter().map(|h| format!("ALTER USER '{}'@'{h}' ACCOUNT UNLOCK;", self.name)).collect();
        self.target.execute(&unlocks);
    }

    fn drop_all(&self) {
        let mut sql = format!("DROP DATABASE IF EXISTS {};", self.name);
        for host in Self::HOSTS {
            sql += &format!("DROP USER IF EXISTS '{}'@'{host}';", self.name);
        }
        self.target.execute(&sql);
    }
}

#[cfg(feature = "mysql")]
impl Drop for OwnUserDatabase {
    fn drop(&mut self) {
        self.drop_all();
    }
}

#[cfg(feature = "mysql")]
#[test]
fn heartbeat_fails_while_a_mariadb_node_refuses_and_recovers() {
    let db = OwnUserDatabase::create();
    let server = TestServer::start_with_config(
        Backend::Mysql,
        &[],
        &two_node_config(&db.url()),
        "health-secret-of-32-bytes-or-more-000",
    );
    let (status, body) = heartbeat(&server);
    assert_eq!(status, 200, "{body}");
    assert_node(&body, SECOND_NODE, "Ok");

    db.make_unavailable();
    wait_for_a_fresh_check();
    let (status, body) = heartbeat(&server);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "Err");
    assert_node(&body, PUBLIC_URL, "Ok");
    assert_node(&body, SECOND_NODE, "Unknown");
    assert!(!body.to_string().contains("hb-pass"), "{body}");

    db.make_available();
    wait_for_a_fresh_check();
    let (status, body) = heartbeat(&server);
    assert_eq!(status, 200, "{body}");
    assert_node(&body, SECOND_NODE, "Ok");
}
