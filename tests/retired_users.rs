//! Retired and replaced users (issue 10, points 4 and 5): the purge of tokenserver rows replaced
//! longer ago than the grace period (tokenserver-api.md §10.6) — their data deleted on their
//! node, by this process's shard or, for a node served by another process, with a signed
//! DELETE; the rows then deleted and their slots given back — with its dry run, its bound, and a
//! pass killed half-way and completed by the next; and FxA's account events (§10.8): an
//! account-deleted Security Event Token retires the user and the scheduled purge deletes the
//! data, a password change locks out older credentials, a token that does not verify is 401.
//!
//! The tokenserver tables are seeded with SQL, as an existing deployment's database holds them.

#[macro_use]
mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fxa_mock::{self, Jwt, TestKey};
use common::net::{free_port, silent_server};
use common::*;
use serde_json::{json, Value};

const DAY_MS: i64 = 86_400_000;
const EMAIL_DOMAIN: &str = "api-accounts.stage.mozaws.net";
const AUDIENCE: &str = "weft-test-webhook-client";
const DELETE_USER: &str = "https://schemas.accounts.firefox.com/event/delete-user";
const PASSWORD_CHANGE: &str = "https://schemas.accounts.firefox.com/event/password-change";

fn now_ms() -> i64 {
    fxa_mock::now_secs() * 1000
}

/// A server whose periodic purge is off (the tests run passes themselves) and whose cache is
/// off, so that data deleted by a `weft purge` process is seen at once over HTTP.
fn server(b: Backend, extra: &[(&str, &str)]) -> TestServer {
    let mut env = vec![("WEFT_TOKENSERVER_RETIRED_PURGE_ENABLED", "false"), ("WEFT_CACHE_MEMORY_BYTES", "0")];
    env.extend_from_slice(extra);
    TestServer::start(b, &env)
}

/// `weft purge --kind retired <args>` on `server`'s configuration, as an operator runs it on the
/// server's host.
fn purge_command(server: &TestServer, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    for (name, _) in std::env::vars() {
        if name.starts_with("WEFT_") {
            cmd.env_remove(name);
        }
    }
    cmd.args(["purge", "--kind", "retired"])
        .args(args)
        .env("WEFT_DATA_DIR", server.data_dir())
        .env("WEFT_DATABASE_URL", server.database_url())
        .env("WEFT_PUBLIC_URL", PUBLIC_URL)
        .env("WEFT_MASTER_SECRET", &server.master_secret)
        .env("WEFT_CACHE_MEMORY_BYTES", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs the purge to its end: (success, stdout + stderr).
fn purge(server: &TestServer, args: &[&str]) -> (bool, String) {
    let out = purge_command(server, &[], args).output().expect("run weft purge");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[track_caller]
fn purge_ok(server: &TestServer, args: &[&str]) -> String {
    let (ok, text) = purge(server, args);
    assert!(ok, "weft purge {args:?} failed: {text}");
    text
}

/// Inserts a `users` row for a fresh account on `node` (by URL; an unknown URL leaves a dangling
/// node id, as after `remove_node`), replaced at `replaced_at` (`None`: live), and returns its uid.
fn seed_user(server: &TestServer, node: &str, generation: i64, replaced_at: Option<i64>) -> u64 {
    let email = format!("{:032x}@{EMAIL_DOMAIN}", rand::random::<u128>());
    let replaced = replaced_at.map_or("NULL".to_string(), |t| t.to_string());
    server.execute_sql(&format!(
        "INSERT INTO users (service, email, generation, client_state, created_at, replaced_at, nodeid, keys_changed_at) \
         VALUES ((SELECT id FROM services WHERE service = 'sync-1.5'), '{email}', {generation}, 'aaaa', \
                 {}, {replaced}, COALESCE((SELECT id FROM nodes WHERE node = '{node}'), 999999), 1234)",
        now_ms() - 3 * DAY_MS
    ));
    server.query_sql(&format!("SELECT uid FROM users WHERE email = '{email}'")).parse().expect("uid")
}

fn seed_node(server: &TestServer, node: &str) {
    server.execute_sql(&format!(
        "INSERT INTO nodes (service, node, available, current_load, capacity, downed, backoff) \
         VALUES ((SELECT id FROM services WHERE service = 'sync-1.5'), '{node}', 10, 10, 100, 0, 0)"
    ));
}

fn row_exists(server: &TestServer, uid: u64) -> bool {
    server.query_sql(&format!("SELECT COUNT(*) FROM users WHERE uid = {uid}")) == "1"
}

/// (available, current_load) of a node.
fn slots(server: &TestServer, node: &str) -> (i64, i64) {
    let row = server.query_sql(&format!("SELECT available, current_load FROM nodes WHERE node = '{node}'"));
    let (a, l) = row.split_once('\t').unwrap_or_else(|| panic!("node row {row:?}"));
    (a.parse().expect("available"), l.parse().expect("current_load"))
}

/// A storage user `uid` on `node`, its requests sent to `server` (token signed with its secret).
fn storage_user(server: &TestServer, uid: u64, node: &str) -> User {
    User::with_token(server, &TokenSpec { uid, node: node.to_string(), ..TokenSpec::new(server) })
}

/// Stores records for the user and checks they are there.
fn with_data(user: &User) -> &User {
    seed(user, "bookmarks");
    assert_eq!(user.get_json("/info/collection_counts")["bookmarks"], json!(3));
    user
}

fn has_data(user: &User) -> bool {
    user.get_json("/info/collections").as_object().is_some_and(|c| !c.is_empty())
}

/// A Security Event Token as FxA signs them, for `fxa_uid`, with `events`.
fn event_token(key: TestKey, audience: &str, fxa_uid: &str, events: Value) -> String {
    let claims = json!({
        "iss": fxa_mock::ISSUER,
        "aud": audience,
        "sub": fxa_uid,
        "iat": fxa_mock::now_secs(),
        "jti": format!("{:032x}", rand::random::<u128>()),
        "events": events,
    });
    Jwt { key, typ: Some("secevent+jwt".into()), claims }.sign()
}

fn post_event(server: &TestServer, authorization: Option<&str>) -> Resp {
    let mut req = client::http().post(format!("{}/1.0/webhooks/fxa/events", server.base_url));
    if let Some(value) = authorization {
        req = req.header("Authorization", value);
    }
    let resp = req.send().expect("POST events");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().unwrap_or_default();
    Resp { status, headers, body, what: "POST /1.0/webhooks/fxa/events".into() }
}

/// A token request for `fxa_uid` reporting `generation`, key id 1234-aaaa.
fn token_request(server: &TestServer, fxa_uid: &str, generation: i64) -> Resp {
    let bearer = Jwt::new(TestKey::Primary, fxa_uid, Some(generation)).sign();
    let resp = client::http()
        .get(format!("{}/1.0/sync/1.5", server.base_url))
        .header("Authorization", format!("Bearer {bearer}"))
        .header("X-KeyID", "0000000001234-qqo")
        .send()
        .expect("token request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().unwrap_or_default();
    Resp { status, headers, body, what: "GET /1.0/sync/1.5".into() }
}

/// The storage user a token response is for, its requests sent to `server`.
fn user_of(server: &TestServer, token: &Value) -> User {
    User {
        uid: token["uid"].as_u64().expect("uid"),
        creds: Credentials {
            id: token["id"].as_str().expect("id").into(),
            key: token["key"].as_str().expect("key").into(),
        },
        base_url: server.base_url.clone(),
        port: server.port,
    }
}

fn metrics_url(server: &TestServer) -> String {
    server
        .log_tail()
        .lines()
        .find_map(|l| l.strip_prefix("weft: metrics on ").map(str::to_string))
        .unwrap_or_else(|| panic!("no `weft: metrics on …` line:\n{}", server.log_tail()))
}

/// The value of the sample `name{labels}` (exact label text), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok()).unwrap_or(0.0)
}

backend_tests! {
    /// Rows replaced past the grace period (a replaced user, a retired one, one whose node was
    /// removed) are purged: data deleted, row deleted, slots released; rows within the grace
    /// period and live rows are kept with their data; the dry run changes nothing; a second
    /// pass finds nothing to do; `--max-users` bounds a pass.
    fn retired_users_past_the_grace_period_are_purged(b: Backend) {
        let s = server(b, &[]);
        let old = seed_user(&s, PUBLIC_URL, 1234, Some(now_ms() - 2 * DAY_MS));
        let retired = seed_user(&s, PUBLIC_URL, i64::MAX, Some(now_ms() - 2 * DAY_MS));
        let nodeless = seed_user(&s, "https://removed.example.com", 1234, Some(now_ms() - 2 * DAY_MS));
        let recent = seed_user(&s, PUBLIC_URL, 1234, Some(now_ms() - 3_600_000));
        let live = seed_user(&s, PUBLIC_URL, 1234, None);
        let users: Vec<User> = [old, retired, recent, live].iter().map(|&uid| storage_user(&s, uid, PUBLIC_URL)).collect();
        for user in &users {
            with_data(user);
        }
        let before = slots(&s, PUBLIC_URL);

        let out = purge_ok(&s, &["--dry-run"]);
        assert!(out.contains(&format!("uid {old} on {PUBLIC_URL}: would delete its data")), "{out}");
        assert!(out.contains("dry run: 3 replaced user(s) past the grace period") && out.contains("nothing changed"), "{out}");
        assert!(!out.contains(&format!("uid {recent} ")) && !out.contains(&format!("uid {live} ")), "{out}");
        for uid in [old, retired, nodeless, recent, live] {
            assert!(row_exists(&s, uid), "dry run kept row {uid}");
        }
        assert!(users.iter().all(has_data), "dry run kept every user's data");
        assert_eq!(slots(&s, PUBLIC_URL), before);

        let out = purge_ok(&s, &["--max-users", "1"]);
        assert!(out.contains(&format!("uid {old} on {PUBLIC_URL}: purged (data deleted on this host's node")), "{out}");
        assert!(out.contains("stopped at --max-users"), "{out}");
        assert!(!row_exists(&s, old) && row_exists(&s, retired), "one user per pass");

        let out = purge_ok(&s, &[]);
        assert!(out.contains("purged 1 replaced user(s) and 1 whose node no longer exists"), "{out}");
        for uid in [old, retired, nodeless] {
            assert!(!row_exists(&s, uid), "row {uid} deleted");
        }
        assert!(row_exists(&s, recent) && row_exists(&s, live), "rows within the grace period kept");
        assert!(!has_data(&users[0]) && !has_data(&users[1]), "data of purged users gone");
        assert!(has_data(&users[2]) && has_data(&users[3]), "data of kept users still there");
        assert_eq!(slots(&s, PUBLIC_URL), (before.0 + 2, before.1 - 2), "a slot released per purged user");

        let out = purge_ok(&s, &[]);
        assert!(out.contains("purged 0 replaced user(s) and 0 whose node"), "second pass: {out}");
        let out = purge_ok(&s, &["--grace-period", "30m"]);
        assert!(out.contains("purged 1 replaced user(s)") && !row_exists(&s, recent), "{out}");
        assert!(row_exists(&s, live) && has_data(&users[3]), "a live user is never purged");
    }

    /// A pass killed (SIGKILL) while it waits on a node that never answers leaves the users it
    /// finished purged and the rest untouched; the next pass completes them, and the row whose
    /// node cannot be reached stays, reported, for a later pass.
    fn a_pass_killed_half_way_is_completed_by_the_next(b: Backend) {
        let s = server(b, &[]);
        let hanging = format!("http://127.0.0.1:{}", silent_server());
        seed_node(&s, &hanging);
        let replaced = Some(now_ms() - 2 * DAY_MS);
        // uid order is the pass's order: three local users, the hanging node's, three more.
        let first: Vec<u64> = (0..3).map(|_| seed_user(&s, PUBLIC_URL, 1234, replaced)).collect();
        let stuck = seed_user(&s, &hanging, 1234, replaced);
        let rest: Vec<u64> = (0..3).map(|_| seed_user(&s, PUBLIC_URL, 1234, replaced)).collect();
        let users: Vec<User> = first.iter().chain(&rest).map(|&uid| storage_user(&s, uid, PUBLIC_URL)).collect();
        for user in &users {
            with_data(user);
        }

        let mut child: Child = purge_command(&s, &[("WEFT_TOKENSERVER_RETIRED_PURGE_REQUEST_TIMEOUT_SECONDS", "120")], &[])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn weft purge");
        let deadline = Instant::now() + Duration::from_secs(60);
        while first.iter().any(|&uid| row_exists(&s, uid)) {
            assert!(Instant::now() < deadline, "the first users were not purged within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        // Give it time to reach the hanging node, then kill it there.
        std::thread::sleep(Duration::from_millis(500));
        child.kill().expect("SIGKILL weft purge");
        child.wait().expect("reap");
        assert!(first.iter().all(|&uid| !row_exists(&s, uid)) && !users[..3].iter().any(has_data));
        assert!(row_exists(&s, stuck) && rest.iter().all(|&uid| row_exists(&s, uid)), "the rest untouched");
        assert!(users[3..].iter().all(has_data), "the rest's data untouched");

        let out = purge_command(&s, &[("WEFT_TOKENSERVER_RETIRED_PURGE_REQUEST_TIMEOUT_SECONDS", "1")], &[])
            .output()
            .expect("run weft purge");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "a user that could not be purged is an error exit: {text}");
        assert!(text.contains(&format!("uid {stuck} on {hanging}: failed, waits for the next pass")), "{text}");
        assert!(text.contains("purged 3 replaced user(s)"), "{text}");
        assert!(rest.iter().all(|&uid| !row_exists(&s, uid)) && !users.iter().any(has_data), "completed");
        assert!(row_exists(&s, stuck), "the unreachable node's user waits");
        let out = purge_ok(&s, &["--node", PUBLIC_URL]);
        assert!(out.contains("0 examined of 0"), "--node limits the pass to one node: {out}");
    }

    /// A user on a node served by another process: the purge signs `DELETE /1.5/{uid}` with a
    /// token from the node's secret; that server deletes the data.
    fn a_node_served_by_another_process_gets_a_signed_delete(b: Backend) {
        let s = server(b, &[]);
        let port = free_port();
        let node = format!("http://127.0.0.1:{port}");
        let listen = format!("127.0.0.1:{port}");
        let other = server(
            b,
            &[("WEFT_LISTEN", &listen), ("WEFT_PUBLIC_URL", &node), ("WEFT_TOKENSERVER_ENABLED", "false")],
        );
        seed_node(&s, &node);
        let uid = seed_user(&s, &node, 1234, Some(now_ms() - 2 * DAY_MS));
        let user = storage_user(&other, uid, &node);
        with_data(&user);

        let out = purge_ok(&s, &[]);
        assert!(out.contains(&format!("uid {uid} on {node}: purged (data deleted by the node's server")), "{out}");
        assert!(!has_data(&user), "the other process deleted the data");
        assert!(!row_exists(&s, uid), "row deleted after the data");
        assert!(other.log_tail().contains("DELETE"), "the other server logged the DELETE:\n{}", other.log_tail());
    }

    /// An account-deleted event signed with FxA's key retires the user (no token any more) and
    /// the scheduled purge (grace 3 s, every second) deletes the data and the rows; a password
    /// change refuses tokens of the old generation and accepts the new one; tokens that do not
    /// verify (unknown key, wrong audience, none) are refused with the spec's 401.
    fn account_events_retire_and_bump_generation(b: Backend) {
        let s = server(
            b,
            &[
                ("WEFT_TOKENSERVER_RETIRED_PURGE_ENABLED", "true"),
                ("WEFT_TOKENSERVER_RETIRED_PURGE_INTERVAL_SECONDS", "1"),
                // Long enough for the token request right after the event to see the retired row.
                ("WEFT_TOKENSERVER_RETIRED_PURGE_GRACE_PERIOD_SECONDS", "3"),
                ("WEFT_TOKENSERVER_ACCOUNT_EVENTS_ENABLED", "true"),
                ("WEFT_TOKENSERVER_ACCOUNT_EVENTS_AUDIENCE", AUDIENCE),
                ("WEFT_TOKENSERVER_FXA_OAUTH_PRIMARY_JWK", &TestKey::Primary.jwk().to_string()),
                ("WEFT_TOKENSERVER_FXA_OAUTH_ISSUER", fxa_mock::ISSUER),
                ("WEFT_FXA_OAUTH_SERVER_URL", "http://127.0.0.1:9"),
                ("WEFT_METRICS_ENABLED", "true"),
                ("WEFT_METRICS_LISTEN", "127.0.0.1:0"),
            ],
        );
        let deleted = format!("{:032x}", rand::random::<u128>());
        let token = token_request(&s, &deleted, 1234).expect(200).json();
        let user = user_of(&s, &token);
        with_data(&user);

        let unauthorized = json!({"status": "invalid-credentials", "errors": [{"location": "body", "name": "", "description": "Unauthorized"}]});
        let forged = event_token(TestKey::Unknown, AUDIENCE, &deleted, json!({DELETE_USER: {}}));
        let r = post_event(&s, Some(&format!("Bearer {forged}"))).expect(401);
        assert_eq!(r.json(), unauthorized, "a token signed with another key");
        let elsewhere = event_token(TestKey::Primary, "another-client", &deleted, json!({DELETE_USER: {}}));
        assert_eq!(post_event(&s, Some(&format!("Bearer {elsewhere}"))).expect(401).json(), unauthorized, "another audience");
        assert_eq!(post_event(&s, None).expect(401).json()["status"], json!("error"), "no token");
        token_request(&s, &deleted, 1234).expect(200);
        assert!(has_data(&user), "refused events change nothing");

        let event = event_token(TestKey::Primary, AUDIENCE, &deleted, json!({DELETE_USER: {}}));
        let r = post_event(&s, Some(&format!("Bearer {event}"))).expect(200);
        assert!(r.body.is_empty(), "200 with an empty body");
        assert_eq!(token_request(&s, &deleted, 1234).expect(401).json()["status"], json!("invalid-generation"));
        let deadline = Instant::now() + Duration::from_secs(30);
        let uid = token["uid"].as_u64().expect("uid");
        while row_exists(&s, uid) {
            assert!(Instant::now() < deadline, "the scheduled purge did not run within 30 s:\n{}", s.log_tail());
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(!has_data(&user), "the deleted account's data is gone");
        let metrics = client::http().get(metrics_url(&s)).send().expect("scrape").text().expect("text");
        assert_eq!(sample(&metrics, "weft_fxa_events_total{event=\"delete_user\"}"), 1.0, "{metrics}");
        assert!(sample(&metrics, "weft_retired_purge_users_total{outcome=\"purged\"}") >= 1.0, "{metrics}");
        assert!(sample(&metrics, "weft_retired_purge_runs_total{outcome=\"success\"}") >= 1.0, "{metrics}");

        let changed = format!("{:032x}", rand::random::<u128>());
        let before = token_request(&s, &changed, 1234).expect(200).json();
        let change = event_token(TestKey::Primary, AUDIENCE, &changed, json!({PASSWORD_CHANGE: {"changeTime": 5000}}));
        post_event(&s, Some(&format!("Bearer {change}"))).expect(200);
        assert_eq!(token_request(&s, &changed, 1234).expect(401).json()["status"], json!("invalid-generation"), "old credentials");
        let after = token_request(&s, &changed, 5000).expect(200).json();
        assert_eq!(after["uid"], before["uid"], "the new generation keeps the user");
        // A late, older event never lowers the generation.
        let late = event_token(TestKey::Primary, AUDIENCE, &changed, json!({PASSWORD_CHANGE: {"changeTime": 2000}}));
        post_event(&s, Some(&format!("Bearer {late}"))).expect(200);
        token_request(&s, &changed, 1999).expect(401);
    }

    /// Without `tokenserver.account_events.enabled` the route does not exist.
    fn account_events_are_off_by_default(b: Backend) {
        let event = event_token(TestKey::Primary, AUDIENCE, "someone", json!({DELETE_USER: {}}));
        post_event(shared(b), Some(&format!("Bearer {event}"))).expect(404);
    }
}
