//! The node-management commands run as a user would (tokenserver-api.md §10): `weft node
//! add|update|remove|unassign|list` and `weft user allocate` against a fresh SQLite or MariaDB
//! database, checking their output, their exit status, and node assignment — the least-loaded
//! choice with its tie-breakers, capacity release and exhaustion (§7).

#[macro_use]
mod common;

use common::backend::Database;
use common::*;

/// A fresh database and the `weft` admin commands run against it.
struct Admin {
    db: Database,
    dir: tempfile::TempDir,
}

impl Admin {
    fn new(b: Backend) -> Admin {
        let dir = tempfile::tempdir().expect("temp dir");
        Admin { db: Database::create(b, dir.path()), dir }
    }

    /// Runs `weft <args>`; returns (exit success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_weft"));
        for (name, _) in std::env::vars() {
            if name.starts_with("WEFT_") {
                cmd.env_remove(name);
            }
        }
        let out = cmd
            .args(args)
            .env("WEFT_DATABASE_URL", &self.db.url)
            .env("WEFT_DATA_DIR", self.dir.path())
            .output()
            .expect("run weft");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs a command that must succeed; returns its stdout.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let (success, stdout, stderr) = self.run(args);
        assert!(success, "weft {args:?} failed: {stdout}{stderr}");
        stdout
    }

    /// Runs a command that must fail; returns its stderr.
    #[track_caller]
    fn fails(&self, args: &[&str]) -> String {
        let (success, stdout, stderr) = self.run(args);
        assert!(!success, "weft {args:?} should fail: {stdout}");
        assert!(stderr.starts_with("weft: error: "), "weft {args:?}: {stderr}");
        stderr
    }

    /// `node list` parsed: node URL → (capacity, load, available, downed, backoff).
    fn nodes(&self) -> Vec<(String, [i64; 5])> {
        let out = self.ok(&["node", "list"]);
        out.lines()
            .skip(1)
            .map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                assert_eq!(cols.len(), 7, "node list line {line:?}");
                let n = |i: usize| cols[i].parse::<i64>().expect("number");
                (cols[1].to_string(), [n(2), n(3), n(4), n(5), n(6)])
            })
            .collect()
    }

    #[track_caller]
    fn node(&self, url: &str) -> [i64; 5] {
        self.nodes()
            .into_iter()
            .find(|(u, _)| u == url)
            .unwrap_or_else(|| panic!("no node {url} in {:?}", self.nodes()))
            .1
    }

    /// `user allocate` for a new user; returns the node it was put on.
    #[track_caller]
    fn allocate(&self, email: &str) -> String {
        let out = self.ok(&["user", "allocate", email]);
        out.trim().rsplit(' ').next().expect("node in output").to_string()
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        if let Some(cmd) = self.db.drop_command() {
            let _ = std::process::Command::new("sh").arg("-c").arg(cmd).status();
        }
    }
}

const A: &str = "https://a.sync.example";
const B: &str = "https://b.sync.example";
const C: &str = "https://c.sync.example";

backend_tests! {
    fn node_lifecycle(b: Backend) {
        let admin = Admin::new(b);
        assert_eq!(admin.ok(&["node", "list"]).trim(), "no nodes");
        let out = admin.ok(&["node", "add", "HTTPS://A.sync.example:443/", "1000"]);
        assert!(out.starts_with(&format!("added node {A}")), "{out}");
        // available defaults to ceil(10 % of capacity); load 0; flags clear.
        assert_eq!(admin.node(A), [1000, 0, 100, 0, 0]);
        let err = admin.fails(&["node", "add", A, "5"]);
        assert!(err.contains("already exists"), "{err}");
        admin.ok(&["node", "add", B, "7", "--available", "3", "--current-load", "2", "--backoff"]);
        assert_eq!(admin.node(B), [7, 2, 3, 0, 1]);

        admin.ok(&["node", "update", A, "--capacity", "2000", "--downed"]);
        assert_eq!(admin.node(A), [2000, 0, 100, 1, 0]);
        admin.ok(&["node", "update", A, "--downed", "0", "--available", "5"]);
        assert_eq!(admin.node(A), [2000, 0, 5, 0, 0]);
        admin.fails(&["node", "update", A]);
        admin.fails(&["node", "update", "https://nowhere.example", "--capacity", "1"]);
        admin.fails(&["node", "add", "ftp://a.example", "10"]);
        admin.fails(&["node", "add", C, "0"]);

        // unassign keeps the node; remove deletes it.
        let out = admin.ok(&["user", "allocate", "someone@example.com", A]);
        assert!(out.contains(A), "{out}");
        let out = admin.ok(&["node", "unassign", A]);
        assert!(out.contains("1 user record(s)"), "{out}");
        assert_eq!(admin.nodes().len(), 2);
        let out = admin.ok(&["node", "remove", B]);
        assert!(out.starts_with(&format!("removed node {B}")), "{out}");
        assert!(admin.nodes().iter().all(|(u, _)| u != B));
        let err = admin.fails(&["node", "remove", B]);
        assert!(err.contains("no node"), "{err}");
    }

    fn least_loaded_node_with_tie_breakers(b: Backend) {
        let admin = Admin::new(b);
        // §7.1: empty A (available 100, added first), B (available 1), C (available 5).
        admin.ok(&["node", "add", A, "100", "--available", "100"]);
        admin.ok(&["node", "add", B, "100", "--available", "1"]);
        admin.ok(&["node", "add", C, "100", "--available", "5"]);
        assert_eq!(admin.allocate("u1@x"), A);
        // §7.2: one new user takes one slot.
        assert_eq!(admin.node(A), [100, 1, 99, 0, 0]);
        // Empty nodes first (larger available wins), then by load ratio, then available.
        assert_eq!(admin.allocate("u2@x"), C);
        assert_eq!(admin.allocate("u3@x"), B);
        assert_eq!(admin.allocate("u4@x"), A);
        assert_eq!(admin.allocate("u5@x"), C);
        assert_eq!(admin.node(B), [100, 1, 0, 0, 0]);
        // Downed and backoff nodes get no new users.
        admin.ok(&["node", "update", A, "--backoff"]);
        admin.ok(&["node", "update", C, "--downed"]);
        assert_eq!(admin.allocate("u6@x"), B, "B gets released capacity");
        // An existing user keeps the node; with a node argument it moves (new record).
        assert_eq!(admin.allocate("u1@x"), A);
        let out = admin.ok(&["user", "allocate", "u1@x", B]);
        assert!(out.contains(B), "{out}");
        assert_eq!(admin.allocate("u1@x"), B);
    }

    fn capacity_release_and_exhaustion(b: Backend) {
        let admin = Admin::new(b);
        // The §7.1 example: no node has slots; release min(10 %, room) where allowed.
        let nodes = [
            ("https://n1.example", "100", "99", &[][..]),
            ("https://n2.example", "100", "90", &[][..]),
            ("https://n3.example", "81", "80", &[][..]),
            ("https://n4.example", "71", "70", &["--backoff"][..]),
            ("https://n5.example", "61", "60", &["--downed"][..]),
        ];
        for (url, capacity, load, flags) in nodes {
            let mut args = vec!["node", "add", url, capacity, "--available", "0", "--current-load", load];
            args.extend_from_slice(flags);
            admin.ok(&args);
        }
        assert_eq!(admin.allocate("first@x"), "https://n2.example");
        let available: Vec<i64> = admin.nodes().iter().map(|(_, n)| n[2]).collect();
        assert_eq!(available, vec![1, 9, 1, 1, 0]);

        // A small node: each allocation past the released slots releases more, until full.
        let small = Admin::new(b);
        small.ok(&["node", "add", A, "3"]);
        assert_eq!(small.node(A), [3, 0, 1, 0, 0]);
        for i in 0..3 {
            assert_eq!(small.allocate(&format!("user{i}@x")), A);
        }
        assert_eq!(small.node(A), [3, 3, 0, 0, 0]);
        let err = small.fails(&["user", "allocate", "one-too-many@x"]);
        assert!(err.contains("no node available"), "{err}");
    }
}
