//! `weft export` / `weft import` end to end: data written over signed HTTP on one backend,
//! moved through export files to the others, must come back byte-identical (records and
//! timestamps) and look the same to a client; tokenserver nodes and users move with their
//! uids. (Databases Mozilla's syncstorage-rs left: `reference_import.rs`.)

mod common;

use std::path::Path;
use std::process::Command;

use common::backend::Database;
use common::{Backend, TestServer, TokenSpec, User};
use serde_json::{json, Value};

/// Runs `weft <args>` without the caller's WEFT_* variables; panics with its output on failure.
fn weft(dir: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    for (name, _) in std::env::vars() {
        if name.starts_with("WEFT_") {
            cmd.env_remove(name);
        }
    }
    let out = cmd.env("WEFT_DATA_DIR", dir).args(args).output().expect("run weft");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "weft {args:?} failed:\n{text}");
    text
}

/// The export's records without its header (which names the source and the time).
fn records_of(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("export file");
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert!(lines[0].contains("\"type\":\"header\"") && lines[0].contains("\"version\":1"), "{}", lines[0]);
    assert!(lines.last().is_some_and(|l| l.starts_with("{\"type\":\"end\"")), "no end record");
    lines[1..].to_vec()
}

/// A user of `server` with the same uid as `user`.
fn same_user(server: &TestServer, user: &User) -> User {
    let mut spec = TokenSpec::new(server);
    spec.uid = user.uid;
    User::with_token(server, &spec)
}

/// What a client sees of a user: info/collections (body and X-Last-Modified), counts, and
/// every collection read in full.
fn observe(user: &User) -> Value {
    let info = user.get("/info/collections").expect(200);
    let mut seen = json!({
        "info": info.json(),
        "info_last_modified": info.must_header("X-Last-Modified"),
        "counts": user.get_json("/info/collection_counts"),
    });
    for name in info.json().as_object().expect("info object").keys() {
        let read = user.get(&format!("/storage/{name}?full=1&sort=oldest")).expect(200);
        seen[name.as_str()] =
            json!({"records": read.json(), "last_modified": read.must_header("X-Last-Modified")});
    }
    seen
}

/// Writes varied data: several collections (one with more than an export page of records),
/// sortindexes and none, a ttl, multi-byte payloads, case-distinct ids, and a deleted collection
/// (the tombstone).
fn write_data(user: &User, n: usize) {
    for chunk in 0..n.div_ceil(100) {
        let body: Vec<Value> = (chunk * 100..((chunk + 1) * 100).min(n))
            .map(|i| json!({"id": format!("h{i:05}"), "payload": format!("{{\"ciphertext\":\"h{i}\"}}"), "sortindex": i % 7}))
            .collect();
        user.post("/storage/history", &Value::Array(body)).expect(200);
    }
    user.post(
        "/storage/bookmarks",
        &json!([
            {"id": "abc", "payload": "lower", "sortindex": 3},
            {"id": "ABC", "payload": "upper – ünïcödé ✓"},
            {"id": "x_y-z", "payload": "{\"a\":\"\\\\ \\\" \\n\"}", "sortindex": -5, "ttl": 86400}
        ]),
    )
    .expect(200);
    user.put("/storage/Custom-Coll/one", &json!({"payload": "custom"})).expect(200);
    user.put("/storage/forms/gone", &json!({"payload": "soon deleted"})).expect(200);
    user.delete("/storage/forms").expect(200);
    user.put("/storage/tabs/t1", &json!({"payload": "tab", "sortindex": 1})).expect(200);
}

#[test]
fn round_trip_sqlite_postgres_mariadb_is_byte_identical() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = TestServer::start(Backend::Sqlite, &[]);
    let users: Vec<User> = (0..3).map(|_| User::new(&source)).collect();
    for (i, user) in users.iter().enumerate() {
        write_data(user, if i == 0 { 1234 } else { 20 });
    }
    let before: Vec<Value> = users.iter().map(observe).collect();

    let sqlite_export = dir.path().join("from-sqlite.jsonl");
    weft(
        dir.path(),
        &["export", "--no-progress", "--database", source.database_url(), "-o", path(&sqlite_export)],
    );

    let postgres = Database::create_postgres();
    let _drop_postgres = DropDatabase(postgres.drop_command());
    weft(dir.path(), &["import", "--no-progress", "--database", &postgres.url, "-i", path(&sqlite_export)]);
    let postgres_export = dir.path().join("from-postgres.jsonl");
    weft(dir.path(), &["export", "--no-progress", "--database", &postgres.url, "-o", path(&postgres_export)]);
    let records = records_of(&sqlite_export);
    assert_eq!(
        records.iter().filter(|l| l.starts_with("{\"type\":\"bso\"")).count(),
        1234 + 5 + 2 * (20 + 5)
    );
    assert!(records.iter().any(|l| l.starts_with("{\"type\":\"tombstone\"")));
    assert_eq!(records_of(&postgres_export), records, "SQLite → PostgreSQL changed records");

    let (last_url, last_backend, _drop_last) = last_hop(dir.path(), &postgres_export, &records);
    let target = TestServer::start(last_backend, &[("WEFT_DATABASE_URL", &last_url)]);
    for (user, seen) in users.iter().zip(&before) {
        assert_eq!(&observe(&same_user(&target, user)), seen, "uid {} looks different", user.uid);
    }
    // Importing again changes nothing (idempotent).
    weft(
        dir.path(),
        &[
            "import",
            "--no-progress",
            "--database",
            &postgres.url,
            "-i",
            path(&sqlite_export),
            "--journal",
            path(&dir.path().join("fresh.journal")),
        ],
    );
    let again = dir.path().join("again.jsonl");
    weft(dir.path(), &["export", "--no-progress", "--database", &postgres.url, "-o", path(&again)]);
    assert_eq!(records_of(&again), records);
}

/// PostgreSQL → MariaDB when the build has MySQL; returns the database the final server reads.
#[cfg(feature = "mysql")]
fn last_hop(dir: &Path, postgres_export: &Path, records: &[String]) -> (String, Backend, DropDatabase) {
    let mariadb = Database::create(Backend::Mysql, dir);
    weft(dir, &["import", "--no-progress", "--database", &mariadb.url, "-i", path(postgres_export)]);
    let mariadb_export = dir.join("from-mariadb.jsonl");
    weft(dir, &["export", "--no-progress", "--database", &mariadb.url, "-o", path(&mariadb_export)]);
    assert_eq!(records_of(&mariadb_export), records, "PostgreSQL → MariaDB changed records");
    (mariadb.url.clone(), Backend::Mysql, DropDatabase(mariadb.drop_command()))
}

#[cfg(not(feature = "mysql"))]
fn last_hop(dir: &Path, postgres_export: &Path, records: &[String]) -> (String, Backend, DropDatabase) {
    let file = dir.join("back.db");
    let url = format!("sqlite:{}", file.display());
    weft(dir, &["import", "--no-progress", "--database", &url, "-i", path(postgres_export)]);
    let back = dir.join("from-sqlite-again.jsonl");
    weft(dir, &["export", "--no-progress", "--database", &url, "-o", path(&back)]);
    assert_eq!(records_of(&back), records, "PostgreSQL → SQLite changed records");
    (url, Backend::Sqlite, DropDatabase(None))
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// Drops a test database when the test ends, pass or fail.
struct DropDatabase(Option<String>);

impl Drop for DropDatabase {
    fn drop(&mut self) {
        if let Some(cmd) = &self.0 {
            let _ = Command::new("sh").arg("-c").arg(cmd).status();
        }
    }
}

#[test]
fn an_interrupted_import_resumes_from_its_journal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = TestServer::start(Backend::Sqlite, &[]);
    let users: Vec<User> = (0..3).map(|_| User::new(&source)).collect();
    for user in &users {
        write_data(user, 5);
    }
    let export = dir.path().join("all.jsonl");
    weft(dir.path(), &["export", "--no-progress", "--database", source.database_url(), "-o", path(&export)]);
    // Cut the file inside the second user: the first is imported, the import reports the cut.
    let text = std::fs::read_to_string(&export).expect("export");
    let second_user = text.match_indices("{\"type\":\"user\"").nth(1).expect("second user").0;
    let cut = dir.path().join("cut.jsonl");
    std::fs::write(&cut, &text[..second_user + 200]).expect("write cut file");
    let target = format!("sqlite:{}", dir.path().join("target.db").display());
    let journal = dir.path().join("import.journal");
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .env_clear()
        .env("WEFT_DATA_DIR", dir.path())
        .args([
            "import",
            "--no-progress",
            "--database",
            &target,
            "-i",
            path(&cut),
            "--journal",
            path(&journal),
        ])
        .output()
        .expect("run weft");
    assert!(!out.status.success(), "a cut file must fail the import");
    assert_eq!(std::fs::read_to_string(&journal).expect("journal").lines().count(), 1);
    // The rerun on the complete file skips the first user and completes the others.
    let summary = weft(
        dir.path(),
        &["import", "--no-progress", "--database", &target, "-i", path(&export), "--journal", path(&journal)],
    );
    assert!(
        summary.contains("imported 2 users") && summary.contains("1 users already imported"),
        "{summary}"
    );
    let back = dir.path().join("back.jsonl");
    weft(dir.path(), &["export", "--no-progress", "--database", &target, "-o", path(&back)]);
    assert_eq!(records_of(&back), records_of(&export));
}

/// Runs `weft <args>` with `WEFT_DATABASE_URL` (storage and tokenserver) set to `url`.
fn weft_on(dir: &Path, url: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    for (name, _) in std::env::vars() {
        if name.starts_with("WEFT_") {
            cmd.env_remove(name);
        }
    }
    let out =
        cmd.env("WEFT_DATA_DIR", dir).env("WEFT_DATABASE_URL", url).args(args).output().expect("run weft");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "weft {args:?} failed:\n{text}");
    text
}

#[test]
fn tokenserver_nodes_and_users_move_with_their_uids() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = format!("sqlite:{}", dir.path().join("source.db").display());
    weft_on(dir.path(), &source, &["migrate"]);
    weft_on(dir.path(), &source, &["node", "add", "https://sync-1.example.com", "100", "--available", "50"]);
    weft_on(dir.path(), &source, &["node", "add", "https://sync-2.example.com", "10", "--backoff"]);
    let first = weft_on(dir.path(), &source, &["user", "allocate", "aaaa@api.accounts.firefox.com"]);
    let second = weft_on(
        dir.path(),
        &source,
        &["user", "allocate", "bbbb@api.accounts.firefox.com", "https://sync-2.example.com"],
    );
    let nodes_before = weft_on(dir.path(), &source, &["node", "list"]);

    let export = dir.path().join("with-tokenserver.jsonl");
    let summary =
        weft_on(dir.path(), &source, &["export", "--no-progress", "--tokenserver", "-o", path(&export)]);
    assert!(summary.contains("and 2 tokenserver users"), "{summary}");

    let postgres = Database::create_postgres();
    let _drop = DropDatabase(postgres.drop_command());
    let summary = weft_on(dir.path(), &postgres.url, &["import", "--no-progress", "-i", path(&export)]);
    assert!(summary.contains("tokenserver: 2 nodes, 2 users"), "{summary}");
    // Importing twice changes nothing.
    weft_on(
        dir.path(),
        &postgres.url,
        &["import", "--no-progress", "-i", path(&export), "--journal", path(&dir.path().join("j2"))],
    );
    let nodes_after = weft_on(dir.path(), &postgres.url, &["node", "list"]);
    let columns = |text: &str| -> Vec<String> {
        // Node ids may differ between databases; everything else must not.
        text.lines().map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")).collect()
    };
    assert_eq!(columns(&nodes_after), columns(&nodes_before));
    // The same accounts answer with the same uids, and new users get fresh uids above them.
    for (email, before) in
        [("aaaa@api.accounts.firefox.com", &first), ("bbbb@api.accounts.firefox.com", &second)]
    {
        let again = weft_on(dir.path(), &postgres.url, &["user", "allocate", email]);
        assert_eq!(&again, before, "{email}");
    }
    let fresh = weft_on(dir.path(), &postgres.url, &["user", "allocate", "cccc@api.accounts.firefox.com"]);
    assert_ne!(fresh, first);
    assert!(!fresh.contains("error"), "{fresh}");
}
