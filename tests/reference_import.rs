//! `weft import --from-reference` on databases as Mozilla's syncstorage-rs leaves them
//! (reference-databases.md): sources built from the reference's own DDL (`fixtures/reference/`,
//! never Weft's migrations) and filled with rows shaped as the reference writes them — 10-ms
//! timestamps, absolute expiries, a tombstone, NULL and stale counters, a custom collection,
//! pre-touch rows under an open batch, an expired record, a replaced tokenserver row — on
//! PostgreSQL and on a latin1 MariaDB, with storage and tokenserver in one database or in two.
//! Each is imported into SQLite, MariaDB and PostgreSQL and read back through Weft's own
//! tokenserver and signed storage requests: the same uid, node and key state in the token,
//! byte-identical payloads, identical timestamps. The source is checked unchanged afterwards.
//! Also: Weft refuses, in one line, to serve the reference's PostgreSQL tables in place, and a
//! uid the source does not hold is reported while the target keeps what it had.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use common::backend::{Database, PostgresTarget};
use common::fxa_mock::{self, Jwt, TestKey};
use common::*;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/reference");
/// REF's default `fxa_email_domain`, which Weft's tokenserver defaults to as well.
const EMAIL_DOMAIN: &str = "api-accounts.stage.mozaws.net";
/// REF's default ttl: 2 100 000 000 s.
const DEFAULT_TTL_MS: i64 = 2_100_000_000_000;
const HISTORY_RECORDS: usize = 1_234;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Postgres,
    Mariadb,
}

/// Storage and tokenserver tables in one source database, or in two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    One,
    Two,
}

#[derive(Debug, Clone)]
struct Bso {
    id: String,
    sortindex: Option<i32>,
    payload: String,
    modified: i64,
    /// Absolute expiry, ms.
    expiry: i64,
}

#[derive(Debug, Clone)]
struct Collection {
    id: i32,
    name: &'static str,
    modified: i64,
    /// `count`, `total_bytes` as the reference left them (NULL or stale).
    counters: (Option<i64>, Option<i64>),
    /// Live records (imported) and expired ones (not).
    bsos: Vec<Bso>,
    expired: Vec<Bso>,
}

#[derive(Debug, Clone)]
struct StorageUser {
    uid: i64,
    collections: Vec<Collection>,
    tombstone: Option<i64>,
    /// Collection ids of batches opened and never committed (PostgreSQL: pre-touch rows).
    open_batches: Vec<i32>,
}

#[derive(Debug, Clone)]
struct Account {
    uid: i64,
    fxa_uid: String,
    generation: i64,
    client_state: &'static str,
    created_at: i64,
    replaced_at: Option<i64>,
    node_id: i64,
    keys_changed_at: Option<i64>,
}

struct Node {
    id: i64,
    url: &'static str,
    available: i32,
    current_load: i32,
    capacity: i32,
    downed: i32,
    backoff: i32,
}

/// What the reference's databases hold.
struct Data {
    now: i64,
    users: Vec<StorageUser>,
    nodes: Vec<Node>,
    accounts: Vec<Account>,
}

/// The user with two tokenserver rows (the older one replaced) and most of the storage.
const MAIN_UID: i64 = 41;
const SECOND_UID: i64 = 42;
/// Only pre-touch rows / an open batch: not a user the reference shows.
const PRE_TOUCH_UID: i64 = 43;
const REPLACED_UID: i64 = 40;

fn bso(id: &str, sortindex: Option<i32>, payload: &str, modified: i64) -> Bso {
    Bso { id: id.into(), sortindex, payload: payload.into(), modified, expiry: modified + DEFAULT_TTL_MS }
}

fn data() -> Data {
    // A recent time on the reference's 10-ms grid.
    let now = hawk::now_secs() * 1000;
    let t = now - 3_600_000;
    let history: Vec<Bso> = (0..HISTORY_RECORDS)
        .map(|i| {
            // Ids whose byte order and linguistic order differ (case, punctuation).
            let prefix = ["a", "B", "c", "_", "-", "Z"][i % 6];
            bso(
                &format!("{prefix}{i:05}"),
                Some((i % 7) as i32),
                &format!("{{\"ciphertext\":\"h{i}\"}}"),
                t - 10_000 - (i as i64) * 10,
            )
        })
        .collect();
    let mut ttl_record = bso("with-ttl", Some(-5), "{\"ciphertext\":\"a \\\" quote\"}", t - 20);
    ttl_record.expiry = ttl_record.modified + 86_400_000;
    let main = StorageUser {
        uid: MAIN_UID,
        collections: vec![
            Collection {
                id: 7,
                name: "bookmarks",
                modified: t,
                counters: (None, None),
                bsos: vec![
                    bso("menu", Some(1_000_000), "{\"ciphertext\":\"caf\u{e9}\"}", t),
                    bso("toolbar", None, "{\"ciphertext\":\"t\",\"IV\":\"x\"}", t - 10),
                    ttl_record,
                ],
                expired: vec![Bso {
                    id: "expired".into(),
                    sortindex: None,
                    payload: "gone".into(),
                    modified: t - 500_000,
                    expiry: now - 60_000,
                }],
            },
            Collection {
                id: 4,
                name: "history",
                modified: t - 10_000,
                counters: (Some(5), Some(17)),
                bsos: history,
                expired: vec![],
            },
            Collection {
                id: 101,
                name: "com.example.custom",
                modified: t - 30_000,
                counters: (Some(1), None),
                bsos: vec![bso("only", None, "custom payload", t - 30_000)],
                expired: vec![],
            },
        ],
        tombstone: Some(t - 2_000_000),
        open_batches: vec![9],
    };
    let second = StorageUser {
        uid: SECOND_UID,
        collections: vec![
            Collection {
                id: 1,
                name: "clients",
                modified: t - 40_000,
                counters: (None, None),
                bsos: vec![bso("fxa-device", None, "{\"ciphertext\":\"client\"}", t - 40_000)],
                expired: vec![],
            },
            Collection {
                id: 5,
                name: "keys",
                modified: t - 50_000,
                counters: (None, None),
                bsos: vec![bso("crypto", None, "{\"ciphertext\":\"keys\"}", t - 50_000)],
                expired: vec![],
            },
        ],
        tombstone: None,
        open_batches: vec![],
    };
    let pre_touch =
        StorageUser { uid: PRE_TOUCH_UID, collections: vec![], tombstone: None, open_batches: vec![4] };
    let fxa_main = format!("{:032x}", 0xa11ce_u128);
    let fxa_second = format!("{:032x}", 0xb0b_u128);
    Data {
        now,
        users: vec![main, second, pre_touch],
        nodes: vec![
            Node {
                id: 5,
                url: PUBLIC_URL,
                available: 7,
                current_load: 3,
                capacity: 100,
                downed: 0,
                backoff: 0,
            },
            Node {
                id: 6,
                url: "https://old-node.example.com",
                available: 0,
                current_load: 9,
                capacity: 10,
                downed: 1,
                backoff: 1,
            },
        ],
        accounts: vec![
            Account {
                uid: REPLACED_UID,
                fxa_uid: fxa_main.clone(),
                generation: 10,
                client_state: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                created_at: t - 9_000_000,
                replaced_at: Some(t - 5_000_000),
                node_id: 6,
                keys_changed_at: Some(10),
            },
            Account {
                uid: MAIN_UID,
                fxa_uid: fxa_main,
                generation: 1_234_000,
                client_state: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                created_at: t - 5_000_000,
                replaced_at: None,
                node_id: 5,
                keys_changed_at: Some(1_200_000),
            },
            Account {
                uid: SECOND_UID,
                fxa_uid: fxa_second,
                generation: 500,
                client_state: "cccccccccccccccccccccccccccccccc",
                created_at: t - 4_000_000,
                replaced_at: None,
                node_id: 5,
                keys_changed_at: Some(500),
            },
        ],
    }
}

/// A string literal: MySQL reads backslashes as escapes, PostgreSQL (standard strings) does not.
fn quote(text: &str, source: Source) -> String {
    let text = text.replace('\'', "''");
    match source {
        Source::Postgres => format!("'{text}'"),
        Source::Mariadb => format!("'{}'", text.replace('\\', "\\\\")),
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("NULL".to_string(), |v| v.to_string())
}

/// A time in milliseconds as a TIMESTAMPTZ literal.
fn tstz(ms: i64) -> String {
    format!("(TIMESTAMPTZ 'epoch' + INTERVAL '1 millisecond' * {ms})")
}

/// The storage rows as the reference writes them, for `source`.
fn storage_sql(source: Source, data: &Data) -> String {
    let mut sql = String::new();
    let pg = source == Source::Postgres;
    let time = |ms: i64| if pg { tstz(ms) } else { ms.to_string() };
    for user in &data.users {
        let uid = user.uid;
        for c in &user.collections {
            if c.id > 100 {
                sql += &if pg {
                    format!(
                        "INSERT INTO collections (name) VALUES ({}) ON CONFLICT DO NOTHING;\n",
                        quote(c.name, source)
                    )
                } else {
                    format!("INSERT IGNORE INTO collections (name) VALUES ({});\n", quote(c.name, source))
                };
            }
            let (count, bytes) = c.counters;
            sql += &if pg {
                format!(
                    "INSERT INTO user_collections (user_id, collection_id, modified, count, total_bytes) \
                     VALUES ({uid}, {}, {}, {}, {});\n",
                    c.id,
                    time(c.modified),
                    opt(count),
                    opt(bytes)
                )
            } else {
                format!(
                    "INSERT INTO user_collections (userid, collection, last_modified, total_bytes, count) \
                     VALUES ({uid}, {}, {}, {}, {});\n",
                    c.id,
                    c.modified,
                    opt(bytes),
                    opt(count)
                )
            };
            for chunk in c.bsos.iter().chain(&c.expired).collect::<Vec<_>>().chunks(200) {
                let rows: Vec<String> = chunk
                    .iter()
                    .map(|b| {
                        format!(
                            "({uid}, {}, {}, {}, {}, {}, {}{})",
                            c.id,
                            quote(&b.id, source),
                            opt(b.sortindex),
                            quote(&b.payload, source),
                            time(b.modified),
                            time(b.expiry),
                            if pg { String::new() } else { ", 0".to_string() }
                        )
                    })
                    .collect();
                sql += &if pg {
                    format!(
                        "INSERT INTO bsos (user_id, collection_id, bso_id, sortindex, payload, modified, expiry) VALUES {};\n",
                        rows.join(", ")
                    )
                } else {
                    format!(
                        "INSERT INTO bso (userid, collection, id, sortindex, payload, modified, ttl, payload_size) VALUES {};\n",
                        rows.join(", ")
                    )
                };
            }
        }
        if let Some(deleted) = user.tombstone {
            sql += &if pg {
                format!("INSERT INTO user_collections (user_id, collection_id, modified) VALUES ({uid}, 0, {});\n", time(deleted))
            } else {
                format!(
                    "INSERT INTO user_collections (userid, collection, last_modified, total_bytes, count) \
                     VALUES ({uid}, 0, {deleted}, 0, 0);\n"
                )
            };
        }
        for (n, &collection) in user.open_batches.iter().enumerate() {
            // A batch opened and never committed. PostgreSQL: opening it created the
            // collection's row at 0001-01-01 (pre-touch); MySQL keeps it apart.
            sql += &if pg {
                let batch = format!("'00000000-0000-4000-8000-{:012}'", uid * 10 + n as i64);
                format!(
                    "INSERT INTO user_collections (user_id, collection_id, modified) \
                       VALUES ({uid}, {collection}, '0001-01-01 00:00:00+00');\n\
                     INSERT INTO batches VALUES ({uid}, {collection}, {batch}, {});\n\
                     INSERT INTO batch_bsos VALUES ({uid}, {collection}, {batch}, 'staged', NULL, 'not committed', 3600);\n",
                    tstz(data.now + 7_200_000)
                )
            } else {
                let batch = data.now + uid % 10;
                format!(
                    "INSERT INTO batch_uploads VALUES ({batch}, {uid}, {collection});\n\
                     INSERT INTO batch_upload_items VALUES ({batch}, {uid}, 'staged', NULL, 'not committed', 13, 3600);\n"
                )
            };
        }
    }
    sql
}

/// The tokenserver rows as the reference writes them (`sync-1.5` looked up by name).
fn tokenserver_sql(source: Source, data: &Data) -> String {
    let mut sql = String::new();
    let service = "(SELECT id FROM services WHERE service = 'sync-1.5')";
    for n in &data.nodes {
        sql += &format!(
            "INSERT INTO nodes (id, service, node, available, current_load, capacity, downed, backoff) \
             VALUES ({}, {service}, {}, {}, {}, {}, {}, {});\n",
            n.id,
            quote(n.url, source),
            n.available,
            n.current_load,
            n.capacity,
            n.downed,
            n.backoff
        );
    }
    for a in &data.accounts {
        sql += &format!(
            "INSERT INTO users (uid, service, email, generation, client_state, created_at, replaced_at, nodeid, keys_changed_at) \
             VALUES ({}, {service}, {}, {}, {}, {}, {}, {}, {});\n",
            a.uid,
            quote(&format!("{}@{EMAIL_DOMAIN}", a.fxa_uid), source),
            a.generation,
            quote(a.client_state, source),
            a.created_at,
            opt(a.replaced_at),
            a.node_id,
            opt(a.keys_changed_at)
        );
    }
    sql
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURES).join(name)).expect("fixture")
}

/// A source database of the reference; dropped at the end of the test.
struct SourceDb {
    url: String,
    name: String,
    source: Source,
    _drop: DropDatabase,
}

impl SourceDb {
    fn create(source: Source) -> SourceDb {
        match source {
            Source::Postgres => {
                // An ICU collation, as a database created with a linguistic locale: the primary
                // key's order is not byte order.
                let target = PostgresTarget::from_env();
                let db = Database::create_postgres();
                let name = db.url.rsplit('/').next().expect("name").to_string();
                let drop = DropDatabase(db.drop_command());
                target.execute(&format!("DROP DATABASE {name}"));
                target.execute(&format!(
                    "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu \
                     ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
                ));
                SourceDb { url: db.url, name, source, _drop: drop }
            }
            Source::Mariadb => {
                let target = common::backend::MysqlTarget::from_env();
                let name = format!("weft_test_ref_{}_{}", std::process::id(), rand::random::<u32>());
                target.execute(&format!("CREATE DATABASE {name} CHARACTER SET latin1"));
                let db =
                    Database { url: target.url(&name), mysql: Some((target, name.clone())), postgres: None };
                SourceDb { url: db.url.clone(), name, source, _drop: DropDatabase(db.drop_command()) }
            }
        }
    }

    /// Runs SQL statements (on standard input: they can be long); panics with the CLI's
    /// message on failure.
    fn run(&self, sql: &str) {
        use std::io::Write;
        let mut cmd = match self.source {
            Source::Postgres => {
                let mut cmd = Command::new("psql");
                cmd.args(PostgresTarget::from_env().psql_args(&self.name));
                cmd
            }
            Source::Mariadb => {
                let mut cmd = Command::new("mariadb");
                cmd.args(common::backend::MysqlTarget::from_env().cli_args())
                    .arg("--default-character-set=utf8mb4")
                    .arg(&self.name);
                cmd
            }
        };
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("database CLI");
        child.stdin.take().expect("stdin").write_all(sql.as_bytes()).expect("write SQL");
        let out = child.wait_with_output().expect("database CLI");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Runs a query; its rows as text.
    fn query(&self, sql: &str) -> String {
        let out = match self.source {
            Source::Postgres => Command::new("psql")
                .args(PostgresTarget::from_env().psql_args(&self.name))
                .args(["-At", "-c", sql])
                .output(),
            Source::Mariadb => Command::new("mariadb")
                .args(common::backend::MysqlTarget::from_env().cli_args())
                .arg(&self.name)
                .args(["-N", "-e", sql])
                .output(),
        }
        .expect("database CLI");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every table's name and a digest of its rows: what "unchanged" means.
    fn fingerprint(&self) -> String {
        let tables = self.query(match self.source {
            Source::Postgres => "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            Source::Mariadb => "SHOW TABLES",
        });
        let tables: Vec<&str> = tables.lines().collect();
        let digest = match self.source {
            Source::Postgres => tables
                .iter()
                .map(|t| format!("SELECT '{t}', md5(COALESCE(string_agg(x::text, ',' ORDER BY x::text), '')) FROM {t} x"))
                .collect::<Vec<_>>()
                .join(" UNION ALL "),
            Source::Mariadb => format!("CHECKSUM TABLE {} EXTENDED", tables.join(", ")),
        };
        format!("{tables:?}\n{}", self.query(&digest))
    }
}

/// The reference's databases for `data`: storage and tokenserver in one database or two.
fn reference(source: Source, layout: Layout, data: &Data) -> (SourceDb, Option<SourceDb>) {
    let (storage_ddl, tokenserver_ddl) = match source {
        Source::Postgres => ("postgres-storage.sql", "postgres-tokenserver.sql"),
        Source::Mariadb => ("mysql-storage.sql", "mysql-tokenserver.sql"),
    };
    let storage = SourceDb::create(source);
    storage.run(&fixture(storage_ddl));
    storage.run(&storage_sql(source, data));
    let tokenserver = match layout {
        Layout::One => {
            storage.run(&fixture(tokenserver_ddl));
            storage.run(&tokenserver_sql(source, data));
            None
        }
        Layout::Two => {
            let db = SourceDb::create(source);
            db.run(&fixture(tokenserver_ddl));
            db.run(&tokenserver_sql(source, data));
            Some(db)
        }
    };
    (storage, tokenserver)
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

/// `weft <args>` without the caller's WEFT_* variables: (success, stdout + stderr).
fn weft(dir: &Path, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    for (name, _) in std::env::vars() {
        if name.starts_with("WEFT_") {
            cmd.env_remove(name);
        }
    }
    let out = cmd.env("WEFT_DATA_DIR", dir).args(args).output().expect("run weft");
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

/// The tokenserver settings of the target server: the suite's JWK (tokens verified locally).
fn tokenserver_env() -> Vec<(String, String)> {
    vec![
        ("WEFT_TOKENSERVER_FXA_OAUTH_PRIMARY_JWK".into(), TestKey::Primary.jwk().to_string()),
        ("WEFT_TOKENSERVER_FXA_OAUTH_ISSUER".into(), fxa_mock::ISSUER.into()),
    ]
}

/// `X-KeyID` for `keys_changed_at` and a hex client state.
fn key_id(keys_changed_at: i64, client_state: &str) -> String {
    let bytes: Vec<u8> = (0..client_state.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&client_state[i..i + 2], 16).expect("hex"))
        .collect();
    format!("{keys_changed_at:013}-{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A token request for `account` as its Firefox sends it (its generation, keys_changed_at and
/// client state, or `generation` instead).
fn token(server: &TestServer, account: &Account, generation: i64) -> Resp {
    let mut headers = HeaderMap::new();
    let bearer = Jwt::new(TestKey::Primary, &account.fxa_uid, Some(generation)).sign();
    headers.insert("Authorization", HeaderValue::from_str(&format!("Bearer {bearer}")).expect("header"));
    let kid = key_id(account.keys_changed_at.expect("keys_changed_at"), account.client_state);
    headers.insert("X-KeyID", HeaderValue::from_str(&kid).expect("header"));
    let resp = client::http()
        .get(format!("{}/1.0/sync/1.5", server.base_url))
        .headers(headers)
        .send()
        .expect("token request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Resp { status, headers, body: resp.text().unwrap_or_default(), what: "GET /1.0/sync/1.5".into() }
}

/// Checks the token of every current account and returns a storage client per uid made from
/// the token the tokenserver issued.
fn check_tokens(server: &TestServer, data: &Data) -> BTreeMap<i64, User> {
    let mut users = BTreeMap::new();
    for account in data.accounts.iter().filter(|a| a.replaced_at.is_none()) {
        let body = token(server, account, account.generation).expect(200).json();
        assert_eq!(body["uid"], json!(account.uid), "{body}");
        assert_eq!(body["api_endpoint"], json!(format!("{PUBLIC_URL}/1.5/{}", account.uid)));
        let id = body["id"].as_str().expect("id");
        let bytes = URL_SAFE.decode(id).expect("token is base64url");
        let payload: Value = serde_json::from_slice(&bytes[..bytes.len() - 32]).expect("token payload");
        assert_eq!(payload["uid"], json!(account.uid));
        assert_eq!(payload["node"], json!(PUBLIC_URL));
        // The key state moved: fxa_kid from keys_changed_at and client_state.
        assert_eq!(
            payload["fxa_kid"],
            json!(key_id(account.keys_changed_at.expect("kca"), account.client_state)),
            "{payload}"
        );
        // The generation moved: one lower is refused as going backwards.
        let older = token(server, account, account.generation - 1);
        assert_eq!(
            (older.status, older.json()["status"].clone()),
            (401, json!("invalid-generation")),
            "{}",
            older.body
        );
        users.insert(
            account.uid,
            User {
                uid: account.uid as u64,
                creds: Credentials { id: id.into(), key: body["key"].as_str().expect("key").into() },
                base_url: server.base_url.clone(),
                port: server.port,
            },
        );
    }
    users
}

/// Reads every field of every user back over HTTP with the tokenserver's tokens.
fn check_storage(users: &BTreeMap<i64, User>, data: &Data) {
    for expected in data.users.iter().filter(|u| !u.collections.is_empty()) {
        let user = &users[&expected.uid];
        let info = user.get("/info/collections").expect(200);
        let newest =
            expected.collections.iter().map(|c| c.modified).chain(expected.tombstone).max().expect("time");
        assert_eq!(info.must_header("X-Last-Modified"), fmt_ts(newest), "uid {}", expected.uid);
        let want_counts: serde_json::Map<String, Value> =
            expected.collections.iter().map(|c| (c.name.to_string(), json!(c.bsos.len()))).collect();
        // Pre-touch rows and open batches are not collections; the tombstone is not either.
        let got: BTreeMap<String, i64> =
            info.json().as_object().expect("object").iter().map(|(k, v)| (k.clone(), json_ts(v))).collect();
        let want: BTreeMap<String, i64> =
            expected.collections.iter().map(|c| (c.name.to_string(), c.modified)).collect();
        assert_eq!(got, want, "uid {} info/collections", expected.uid);
        assert_eq!(
            user.get_json("/info/collection_counts"),
            Value::Object(want_counts),
            "uid {}",
            expected.uid
        );
        for c in &expected.collections {
            let read = user.get(&format!("/storage/{}?full=1&sort=index", c.name)).expect(200);
            assert_eq!(read.must_header("X-Last-Modified"), fmt_ts(c.modified), "{}", c.name);
            let records: Vec<Value> = read.json().as_array().expect("records").clone();
            let by_id: BTreeMap<&str, &Value> =
                records.iter().map(|r| (r["id"].as_str().expect("id"), r)).collect();
            assert_eq!(by_id.len(), c.bsos.len(), "{}: {} records", c.name, records.len());
            for b in &c.bsos {
                let got = by_id.get(b.id.as_str()).unwrap_or_else(|| panic!("{}/{} missing", c.name, b.id));
                assert_eq!(got["payload"].as_str(), Some(b.payload.as_str()), "{}/{}", c.name, b.id);
                assert_eq!(json_ts(&got["modified"]), b.modified, "{}/{}", c.name, b.id);
                assert_eq!(
                    got.get("sortindex").and_then(Value::as_i64),
                    b.sortindex.map(i64::from),
                    "{}/{}",
                    c.name,
                    b.id
                );
            }
            // One record alone, byte for byte as the client reads it.
            let first = &c.bsos[0];
            let one = user.get(&format!("/storage/{}/{}", c.name, first.id)).expect(200);
            assert_eq!(one.json()["payload"].as_str(), Some(first.payload.as_str()));
            assert!(one.body.contains(&serde_json::to_string(&first.payload).expect("json")), "{}", one.body);
        }
    }
}

/// The target's stored expiries, through `weft export` (they are not visible over HTTP).
fn check_expiries(dir: &Path, target: &str, data: &Data) {
    let file = dir.join("target-export.jsonl");
    let (ok, out) =
        weft(dir, &["export", "--no-progress", "--database", target, "-o", file.to_str().expect("path")]);
    assert!(ok, "{out}");
    let mut stored = BTreeMap::new();
    for line in std::fs::read_to_string(&file).expect("export").lines() {
        let r: Value = serde_json::from_str(line).expect("json line");
        if r["type"] == "bso" {
            stored.insert(
                (r["collection"].as_str().expect("c").to_string(), r["id"].as_str().expect("id").to_string()),
                r["ttl"].as_i64().expect("ttl"),
            );
        }
    }
    let mut want = BTreeMap::new();
    for u in &data.users {
        for c in &u.collections {
            for b in &c.bsos {
                want.insert((c.name.to_string(), b.id.clone()), b.expiry);
            }
        }
    }
    assert_eq!(stored, want);
}

/// A fresh target database of `backend`: (URL, what drops it).
fn target_db(backend: Backend, dir: &Path) -> (String, DropDatabase) {
    let db = Database::create(backend, dir);
    (db.url.clone(), DropDatabase(db.drop_command()))
}

fn import_and_check(source: Source, layout: Layout, backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = data();
    let (storage, tokenserver) = reference(source, layout, &data);
    let before = (storage.fingerprint(), tokenserver.as_ref().map(SourceDb::fingerprint));
    let (target, _drop_target) = target_db(backend, dir.path());

    let mut args = vec![
        "import",
        "--no-progress",
        "--database",
        &target,
        "--tokenserver-database",
        &target,
        "--from-reference",
        &storage.url,
    ];
    if let Some(ts) = &tokenserver {
        args.extend(["--from-reference-tokenserver", ts.url.as_str()]);
    }
    let (ok, out) = weft(dir.path(), &args);
    assert!(ok, "{out}");
    let records = 3 + HISTORY_RECORDS + 1 + 2;
    assert!(out.contains(&format!("imported 2 users, {records} records")), "{out}");
    assert!(out.contains("tokenserver: 2 nodes, 3 users"), "{out}");
    // Read only: the source is as the reference left it.
    assert_eq!((storage.fingerprint(), tokenserver.as_ref().map(SourceDb::fingerprint)), before);
    // The check that proves the move.
    args.push("--check");
    let (ok, out) = weft(dir.path(), &args);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("checked 2 users, {records} records and 3 tokenserver users"))
            && out.contains("every collection timestamp, record count and record matches"),
        "{out}"
    );

    let env = tokenserver_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = TestServer::start_on(backend, &target, &env);
    let users = check_tokens(&server, &data);
    check_storage(&users, &data);
    check_expiries(dir.path(), &target, &data);
    // A record changed after the move: the check says where.
    users[&MAIN_UID].put("/storage/history/a00000", &json!({"payload": "changed"})).expect(200);
    drop(server);
    let (ok, out) = weft(dir.path(), &args);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("uid {MAIN_UID} history: source {HISTORY_RECORDS} records, modified")),
        "{out}"
    );
    assert!(out.contains("(1 differences)"), "{out}");
}

backend_tests! {
    fn postgres_reference_one_database(b: Backend) {
        import_and_check(Source::Postgres, Layout::One, b);
    }

    fn latin1_mariadb_reference_two_databases(b: Backend) {
        import_and_check(Source::Mariadb, Layout::Two, b);
    }
}

#[test]
fn postgres_reference_two_databases_into_sqlite() {
    import_and_check(Source::Postgres, Layout::Two, Backend::Sqlite);
}

#[test]
fn latin1_mariadb_reference_one_database_into_postgres() {
    import_and_check(Source::Mariadb, Layout::One, Backend::Postgres);
}

/// Weft started on the reference's PostgreSQL database (storage and tokenserver in one, as the
/// reference's Docker how-to sets it up) says what it found and what to run, in one line, and
/// changes nothing.
#[test]
fn serving_a_reference_postgres_database_is_refused_in_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = data();
    let (storage, _) = reference(Source::Postgres, Layout::One, &data);
    let before = storage.fingerprint();
    let mut cmd = common::server::serve_command(dir.path(), &storage.url);
    cmd.env("WEFT_MASTER_SECRET", DEFAULT_SECRET);
    let started = Instant::now();
    let out = cmd.output().expect("run weft serve");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let line = lines[0];
    assert!(line.starts_with("weft: error: "), "{line}");
    for part in [
        "syncstorage-rs",
        "table bsos",
        "user_collections.user_id",
        "weft import --from-reference",
        "left untouched",
    ] {
        assert!(line.contains(part), "{part:?} not in {line}");
    }
    assert!(!line.contains("migration"), "{line}");
    assert_eq!(storage.fingerprint(), before);
}

/// `--uid` naming a uid the source does not hold (or holds only pre-touch rows of): reported,
/// the exit status says so, and the target keeps what it had for that uid; the other uids of
/// the same command are imported.
#[test]
fn a_uid_absent_from_the_source_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = data();
    let (storage, _) = reference(Source::Postgres, Layout::One, &data);
    let server = TestServer::start(Backend::Sqlite, &[]);
    let target = server.database_url().to_string();
    let mut kept = Vec::new();
    for uid in [PRE_TOUCH_UID, 999_999] {
        let mut spec = TokenSpec::new(&server);
        spec.uid = uid as u64;
        let user = User::with_token(&server, &spec);
        user.put("/storage/bookmarks/mine", &json!({"payload": "already in the target"})).expect(200);
        kept.push((user.clone(), user.get("/info/collections").expect(200).body));
    }
    let (ok, out) = weft(
        dir.path(),
        &[
            "import",
            "--no-progress",
            "--database",
            &target,
            "--from-reference",
            &storage.url,
            "--uid",
            &PRE_TOUCH_UID.to_string(),
            "--uid",
            "999999",
            "--uid",
            &SECOND_UID.to_string(),
        ],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "uids {PRE_TOUCH_UID}, 999999 not in the source: nothing was written for them"
        )),
        "{out}"
    );
    assert!(out.contains("imported 1 users, 2 records"), "{out}");
    for (user, info) in kept {
        assert_eq!(user.get("/info/collections").expect(200).body, info);
        assert_eq!(user.get_json("/storage/bookmarks/mine")["payload"], json!("already in the target"));
    }
    let mut spec = TokenSpec::new(&server);
    spec.uid = SECOND_UID as u64;
    let second = User::with_token(&server, &spec);
    assert_eq!(second.get_json("/storage/keys/crypto")["payload"], json!("{\"ciphertext\":\"keys\"}"));
}
