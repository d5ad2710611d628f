//! The built-in tokenserver over HTTP (tokenserver-api.md): every error row of §11 with its
//! exact status and body and REF's order of checks (§2.5), the worked examples of §6.5, OAuth
//! verification (§3) — local JWTs with the primary and secondary JWK, FxA's published keys,
//! remote verification against the in-repo mock FxA, the verified-token cache, outages — the
//! success response of §4, and a token used end to end with Hawk on the storage node.

#[macro_use]
mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use common::fxa_mock::{self, FxaMock, Jwt, TestKey, SYNC_SCOPE};
use common::*;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};

const METRICS_SECRET: &str = "weft-test-metrics-secret";
const MAX_GENERATION: i64 = i64::MAX;

fn mock() -> &'static FxaMock {
    static MOCK: OnceLock<FxaMock> = OnceLock::new();
    MOCK.get_or_init(FxaMock::start)
}

/// The tokenserver settings every test server gets: the mock FxA, both test JWKs, a short
/// FxA timeout, a known metrics secret.
fn base_env() -> Vec<(String, String)> {
    vec![
        ("WEFT_FXA_OAUTH_SERVER_URL".into(), mock().url.clone()),
        ("WEFT_TOKENSERVER_FXA_OAUTH_PRIMARY_JWK".into(), TestKey::Primary.jwk().to_string()),
        ("WEFT_TOKENSERVER_FXA_OAUTH_SECONDARY_JWK".into(), TestKey::Secondary.jwk().to_string()),
        ("WEFT_TOKENSERVER_FXA_OAUTH_ISSUER".into(), fxa_mock::ISSUER.into()),
        ("WEFT_TOKENSERVER_FXA_OAUTH_REQUEST_TIMEOUT_SECONDS".into(), "1".into()),
        ("WEFT_FXA_METRICS_HASH_SECRET".into(), METRICS_SECRET.into()),
    ]
}

/// A tokenserver with `base_env` plus `extra` (later entries win).
fn start(b: Backend, extra: &[(&str, &str)]) -> TestServer {
    let mut env = base_env();
    env.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestServer::start(b, &env)
}

/// The tokenserver shared by the tests that need no special configuration.
fn ts(b: Backend) -> &'static TestServer {
    static SQLITE: OnceLock<TestServer> = OnceLock::new();
    static MYSQL: OnceLock<TestServer> = OnceLock::new();
    static POSTGRES: OnceLock<TestServer> = OnceLock::new();
    let cell = match b {
        Backend::Sqlite => &SQLITE,
        Backend::Mysql => &MYSQL,
        Backend::Postgres => &POSTGRES,
    };
    cell.get_or_init(|| start(b, &[]))
}

fn new_fxa_uid() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// `X-KeyID` for `keys_changed_at` and a hex client state.
fn kid(keys_changed_at: i64, client_state: &str) -> String {
    let bytes: Vec<u8> = (0..client_state.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&client_state[i..i + 2], 16).expect("hex"))
        .collect();
    format!("{keys_changed_at:013}-{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// `GET path` on the tokenserver with exactly the given headers.
fn get(server: &TestServer, path: &str, headers: &[(&str, &[u8])]) -> Resp {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_bytes(value).expect("header value"),
        );
    }
    let resp = common::client::http()
        .get(format!("{}{path}", server.base_url))
        .headers(map)
        .send()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().unwrap_or_default();
    Resp { status, headers, body, what: format!("GET {path}") }
}

/// A token request with a bearer token and an X-KeyID.
fn request(server: &TestServer, bearer: &str, key_id: &str) -> Resp {
    get(
        server,
        "/1.0/sync/1.5",
        &[("Authorization", format!("Bearer {bearer}").as_bytes()), ("X-KeyID", key_id.as_bytes())],
    )
}

/// A JWT access token (primary key) for `fxa_uid` reporting `generation`.
fn jwt(fxa_uid: &str, generation: Option<i64>) -> String {
    Jwt::new(TestKey::Primary, fxa_uid, generation).sign()
}

#[track_caller]
fn expect_error(r: &Resp, status: u16, kind: &str, location: &str, name: &str, description: &str) {
    assert_eq!(r.status, status, "{}: body {:?}", r.what, r.body);
    assert!(
        r.header("Content-Type").unwrap_or_default().starts_with("application/json"),
        "{}: content type",
        r.what
    );
    assert_eq!(
        r.json(),
        json!({"status": kind, "errors": [{"location": location, "name": name, "description": description}]}),
        "{}",
        r.what
    );
}

#[track_caller]
fn expect_unauthorized(r: &Resp, kind: &str) {
    expect_error(r, 401, kind, "body", "", "Unauthorized");
}

#[track_caller]
fn expect_client_state(r: &Resp, reason: &str) {
    expect_error(
        r,
        401,
        "invalid-client-state",
        "header",
        "X-Client-State",
        &format!("Unacceptable client-state value {reason}"),
    );
}

/// Asserts a 200 and returns the body.
#[track_caller]
fn ok(r: Resp) -> Value {
    r.expect(200).json()
}

/// The JSON payload of a tokenlib token (unverified: the signature is checked by using it).
fn token_payload(token: &str) -> Value {
    let bytes = URL_SAFE.decode(token).expect("token is base64url");
    serde_json::from_slice(&bytes[..bytes.len() - 32]).expect("token payload is JSON")
}

fn metrics_hash(message: &str) -> String {
    common::hawk::hmac_sha256(METRICS_SECRET.as_bytes(), message.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Holds the write lock of the server's `nodes` row for `seconds` in a thread; returns once
/// the lock is held.
fn hold_node_lock(database_url: &str, seconds: u64) -> std::thread::JoinHandle<()> {
    use weft_schema::models::tokenserver::NodeFields;
    use weft_schema::queries::tokenserver as q;
    let settings = weft_schema::PoolSettings {
        max_size: 1,
        connection_timeout: Duration::from_secs(10),
        sqlite_busy_timeout: Duration::from_secs(10),
        sqlite_synchronous: Default::default(),
    };
    let pool = weft_schema::DbPool::connect(database_url, &settings).expect("test pool");
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let mut conn = pool.get().expect("test connection");
        conn.write_transaction(|tx| {
            let service = q::service_id(tx, q::SYNC_SERVICE)?.expect("sync-1.5 service");
            for node in q::list_nodes(tx, service)? {
                q::update_node(
                    tx,
                    node.id,
                    &NodeFields { capacity: Some(node.capacity), ..Default::default() },
                )?;
            }
            let _ = locked_tx.send(());
            std::thread::sleep(Duration::from_secs(seconds));
            Ok::<_, weft_schema::DbError>(())
        })
        .expect("lock transaction");
    });
    locked_rx.recv_timeout(Duration::from_secs(20)).expect("lock taken");
    handle
}

/// Runs `weft <args>` against the server's database; returns (success, stdout + stderr).
fn admin(server: &TestServer, args: &[&str]) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_weft"));
    for (name, _) in std::env::vars() {
        if name.starts_with("WEFT_") {
            cmd.env_remove(name);
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let out = cmd
        .args(args)
        .env("WEFT_DATABASE_URL", server.database_url())
        .env("WEFT_DATA_DIR", dir.path())
        .output()
        .expect("run weft");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

backend_tests! {
    // ---- §2.1 Authorization (step 1) ----

    fn missing_or_garbled_authorization_is_401_error(b: Backend) {
        let s = ts(b);
        expect_unauthorized(&get(s, "/1.0/sync/1.5", &[]), "error");
        expect_unauthorized(&get(s, "/1.0/sync/1.5", &[("Authorization", b"Bearer")]), "error");
        expect_unauthorized(&get(s, "/1.0/sync/1.5", &[("Authorization", b"Bearer caf\xc3\xa9")]), "error");
        // Step 1 comes before the URL (REF order) and before X-KeyID.
        expect_unauthorized(&get(s, "/1.0/nope/9.9", &[]), "error");
        expect_unauthorized(&get(s, "/1.0/sync/1.5", &[("X-KeyID", b"garbage")]), "error");
    }

    fn unsupported_scheme_is_401_unsupported(b: Backend) {
        let s = ts(b);
        let r = get(s, "/1.0/sync/1.5", &[("Authorization", b"BrowserID abc.def")]);
        expect_error(&r, 401, "error", "body", "", "Unsupported");
        let r = get(s, "/1.0/sync/1.5", &[("Authorization", b"Hawk id=\"x\"")]);
        expect_error(&r, 401, "error", "body", "", "Unsupported");
    }

    // ---- §3 OAuth verification (step 2) ----

    fn invalid_oauth_tokens_are_401_invalid_credentials(b: Backend) {
        let s = ts(b);
        let uid = new_fxa_uid();
        let key = kid(1234, "aaaa");
        // Opaque token FxA does not know (400 from verify).
        expect_unauthorized(&request(s, "not-a-token-fxa-knows", &key), "invalid-credentials");
        // Expired JWT (beyond the 60 s leeway).
        let mut expired = Jwt::new(TestKey::Primary, &uid, None);
        expired.claims["exp"] = json!(fxa_mock::now_secs() - 3600);
        expect_unauthorized(&request(s, &expired.sign(), &key), "invalid-credentials");
        // Wrong typ, wrong or missing issuer, missing exp.
        let mut typ = Jwt::new(TestKey::Primary, &uid, None);
        typ.typ = Some("JWT".into());
        expect_unauthorized(&request(s, &typ.sign(), &key), "invalid-credentials");
        let mut no_typ = Jwt::new(TestKey::Primary, &uid, None);
        no_typ.typ = None;
        expect_unauthorized(&request(s, &no_typ.sign(), &key), "invalid-credentials");
        let mut issuer = Jwt::new(TestKey::Primary, &uid, None);
        issuer.claims["iss"] = json!("https://evil.example");
        expect_unauthorized(&request(s, &issuer.sign(), &key), "invalid-credentials");
        // An issuer is configured, so a JWT without `iss` is not accepted either (issue 13).
        let mut no_issuer = Jwt::new(TestKey::Primary, &uid, None);
        no_issuer.claims.as_object_mut().unwrap().remove("iss");
        expect_unauthorized(&request(s, &no_issuer.sign(), &key), "invalid-credentials");
        let mut no_exp = Jwt::new(TestKey::Primary, &uid, None);
        no_exp.claims.as_object_mut().unwrap().remove("exp");
        expect_unauthorized(&request(s, &no_exp.sign(), &key), "invalid-credentials");
        // Wrong scope, locally and remotely.
        let mut scope = Jwt::new(TestKey::Primary, &uid, None);
        scope.claims["scope"] = json!("profile");
        expect_unauthorized(&request(s, &scope.sign(), &key), "invalid-credentials");
        let opaque = format!("opaque-profile-{uid}");
        mock().accept(&opaque, &uid, &["profile"], None);
        expect_unauthorized(&request(s, &opaque, &key), "invalid-credentials");
        // OAuth is checked before X-KeyID (§2.5): a bad token with a bad X-KeyID.
        expect_unauthorized(&request(s, "not-a-token-fxa-knows", "garbage"), "invalid-credentials");
        let r = get(s, "/1.0/sync/1.5", &[("Authorization", b"Bearer not-a-token-fxa-knows")]);
        expect_unauthorized(&r, "invalid-credentials");
    }

    fn jwk_rotation_primary_and_secondary_both_verify(b: Backend) {
        let s = ts(b);
        let uid = new_fxa_uid();
        let key = kid(1234, "aaaa");
        let first = ok(request(s, &Jwt::new(TestKey::Primary, &uid, Some(1234)).sign(), &key));
        // FxA rotated: tokens signed with the next key (configured as secondary) verify too.
        let second = ok(request(s, &Jwt::new(TestKey::Secondary, &uid, Some(1234)).sign(), &key));
        assert_eq!(first["uid"], second["uid"]);
        // A key neither primary nor secondary is a positive rejection: no fallback to the
        // remote verifier, even though it would accept this very token.
        let unknown = Jwt::new(TestKey::Unknown, &uid, Some(1234)).sign();
        mock().accept(&unknown, &uid, &[SYNC_SCOPE], Some(1234));
        expect_unauthorized(&request(s, &unknown, &key), "invalid-credentials");
        assert_eq!(mock().verify_calls(&unknown), 0);
        // A locally verified JWT never reaches the verifier.
        let local = Jwt::new(TestKey::Secondary, &uid, Some(1235)).sign();
        ok(request(s, &local, &key));
        assert_eq!(mock().verify_calls(&local), 0);
    }

    fn scopes_may_be_space_or_comma_separated(b: Backend) {
        let s = ts(b);
        let uid = new_fxa_uid();
        let key = kid(1234, "aaaa");
        let mut spaced = Jwt::new(TestKey::Primary, &uid, None);
        spaced.claims["scope"] = json!(format!("profile {SYNC_SCOPE}"));
        ok(request(s, &spaced.sign(), &key));
        let mut commas = Jwt::new(TestKey::Primary, &uid, None);
        commas.claims["scope"] = json!(format!("profile,{SYNC_SCOPE}"));
        ok(request(s, &commas.sign(), &key));
    }

    fn remote_verification_and_its_cache(b: Backend) {
        let s = ts(b);
        let uid = new_fxa_uid();
        // Opaque tokens (not JWTs) are verified remotely even though JWKs are configured; the
        // token is passed verbatim, spaces and quotes included.
        let token = format!("opaque \"{uid}\" {{token}}");
        mock().accept(&token, &uid, &["profile", SYNC_SCOPE], Some(1234));
        let first = ok(request(s, &token, &kid(1234, "aaaa")));
        assert_eq!(mock().verify_calls(&token), 1);
        // Verified tokens are cached: the retry costs no round trip.
        let again = ok(request(s, &token, &kid(1234, "aaaa")));
        assert_eq!(mock().verify_calls(&token), 1);
        assert_eq!(first["uid"], again["uid"]);
        // The same account through a JWT is the same user.
        let local = ok(request(s, &jwt(&uid, Some(1234)), &kid(1234, "aaaa")));
        assert_eq!(local["uid"], first["uid"]);
    }

    fn remote_generation_is_read_exactly(b: Backend) {
        let s = ts(b);
        let uid = new_fxa_uid();
        ok(request(s, &jwt(&uid, Some(1234)), &kid(1234, "aaaa")));
        // MAX_GENERATION from the verifier retires the account; read through a float it would
        // overflow.
        let retire = format!("opaque-max-{uid}");
        mock().accept(&retire, &uid, &[SYNC_SCOPE], Some(MAX_GENERATION));
        ok(request(s, &retire, &kid(1234, "aaaa")));
        let r = request(s, &jwt(&uid, Some(1235)), &kid(1234, "aaaa"));
        expect_unauthorized(&r, "invalid-generation");
        // `null` generation means "not reported", which is fine once the row exists.
        let null = format!("opaque-null-{uid}");
        mock().accept(&null, &new_fxa_uid(), &[SYNC_SCOPE], None);
        ok(request(s, &null, &kid(1234, "aaaa")));
    }

    fn unreachable_or_failing_verifier_is_503(b: Backend) {
        let s = ts(b);
        let key = kid(1234, "aaaa");
        let unavailable = |r: &Resp| expect_error(r, 503, "error", "body", "", "Resource is not available");
        unavailable(&request(s, fxa_mock::TOKEN_SERVER_ERROR, &key));
        // The mock answers after 4 s; the server gives up after its 1 s timeout.
        let started = Instant::now();
        unavailable(&request(s, fxa_mock::TOKEN_SLOW, &key));
        assert!(started.elapsed() < Duration::from_secs(fxa_mock::SLOW_SECONDS), "no hang");
        // 429 from FxA is an outage, not a verdict on the token.
        let limited = format!("rate-limited-{}", new_fxa_uid());
        mock().answer(&limited, 429, json!({"errno": 114}));
        unavailable(&request(s, &limited, &key));
        // A 200 that is not the verify JSON judged nothing.
        let garbage = format!("garbage-{}", new_fxa_uid());
        mock().answer(&garbage, 200, json!(["not", "an", "object"]));
        unavailable(&request(s, &garbage, &key));
    }

    // ---- §2.2, §2.3 X-KeyID and X-Client-State (step 3), §1 URL (step 4) ----

    fn key_id_errors_in_reference_order(b: Backend) {
        let s = ts(b);
        let token = jwt(&new_fxa_uid(), Some(1234));
        let auth = format!("Bearer {token}");
        let auth = auth.as_bytes();
        let with = |headers: &[(&str, &[u8])]| {
            let mut all: Vec<(&str, &[u8])> = vec![("Authorization", auth)];
            all.extend_from_slice(headers);
            get(s, "/1.0/sync/1.5", &all)
        };
        expect_error(&with(&[]), 401, "invalid-key-id", "header", "", "Missing X-KeyID header");
        // Missing X-KeyID (step 3) comes before a bad URL (step 4).
        let r = get(s, "/1.0/nope/1.5", &[("Authorization", auth)]);
        expect_error(&r, 401, "invalid-key-id", "header", "", "Missing X-KeyID header");
        expect_error(&with(&[("X-KeyID", b"1234-qq\xc3\xa9")]), 401, "invalid-key-id", "header", "", "Invalid X-KeyID header");
        expect_unauthorized(&with(&[("X-KeyID", b"1234")]), "invalid-credentials");
        expect_unauthorized(&with(&[("X-KeyID", b"1234-qqo=")]), "invalid-credentials");
        expect_unauthorized(&with(&[("X-KeyID", b"1234-q+o")]), "invalid-credentials");
        // More than 16 bytes of client state does not fit the VARCHAR(32) column.
        let long = kid(1234, &"ab".repeat(17));
        expect_unauthorized(&with(&[("X-KeyID", long.as_bytes())]), "invalid-credentials");
        // X-Client-State syntax (400) is checked before keys_changed_at, cross-check next.
        let bad_state = |v: &[u8]| with(&[("X-KeyID", b"xyz-qqo"), ("X-Client-State", v)]);
        expect_error(&bad_state(b"not valid!"), 400, "error", "header", "X-Client-State", "Invalid client state value");
        expect_error(&bad_state(&[b'a'; 33]), 400, "error", "header", "X-Client-State", "Invalid client state value");
        expect_unauthorized(&bad_state(b"bbbb"), "invalid-client-state");
        expect_unauthorized(&bad_state(b"aaaa"), "invalid-credentials");
        expect_unauthorized(&with(&[("X-KeyID", b"12x4-qqo")]), "invalid-credentials");
        // A matching X-Client-State is fine.
        ok(with(&[("X-KeyID", b"1234-qqo"), ("X-Client-State", b"aaaa")]));
    }

    fn unsupported_application_or_version_is_404(b: Backend) {
        let s = ts(b);
        let auth = format!("Bearer {}", jwt(&new_fxa_uid(), Some(1234)));
        let headers: [(&str, &[u8]); 2] = [("Authorization", auth.as_bytes()), ("X-KeyID", b"1234-qqo")];
        let r = get(s, "/1.0/bookmarks/1.5", &headers);
        expect_error(&r, 404, "error", "url", "application", "Unsupported application");
        let r = get(s, "/1.0/sync/1.1", &headers);
        expect_error(&r, 404, "error", "url", "1.1", "Unsupported application version");
    }

    // ---- nodes the tokenserver database names but the configuration does not ----

    /// An existing deployment's tables, seeded directly: a node no `[[nodes]]` entry or
    /// secrets list names, and a user assigned to it. Its tokens are signed with the default
    /// secrets (Mozilla's tokenserver signs every node's tokens with its master secret), not a
    /// 500; the user lands on that node; the token verifies with the default secret.
    fn node_absent_from_the_config_signs_with_the_default_secrets(b: Backend) {
        let s = ts(b);
        let node = format!("https://sync-legacy-{}.example.com", random_uid());
        let fxa_uid = new_fxa_uid();
        s.execute_sql(&format!(
            "INSERT INTO nodes (service, node, available, current_load, capacity, downed, backoff) \
             VALUES ((SELECT id FROM services WHERE service = 'sync-1.5'), '{node}', 10, 1, 100, 0, 0); \
             INSERT INTO users (service, email, generation, client_state, created_at, replaced_at, nodeid, keys_changed_at) \
             VALUES ((SELECT id FROM services WHERE service = 'sync-1.5'), '{fxa_uid}@api-accounts.stage.mozaws.net', \
                     1234, 'aaaa', 1600000000000, NULL, (SELECT id FROM nodes WHERE node = '{node}'), 1234);"
        ));
        let body = request(s, &jwt(&fxa_uid, Some(1234)), &kid(1234, "aaaa")).expect(200).json();
        let uid = body["uid"].as_i64().expect("uid");
        assert_eq!(body["api_endpoint"], json!(format!("{node}/1.5/{uid}")));
        let token = body["id"].as_str().expect("id");
        let bytes = URL_SAFE.decode(token).expect("base64url");
        let (payload, signature) = bytes.split_at(bytes.len() - 32);
        let expected = common::hawk::hmac_sha256(&common::hawk::signing_secret(DEFAULT_SECRET), payload);
        assert_eq!(signature, expected, "signed with the default secret");
        let payload = token_payload(token);
        assert_eq!(payload["node"], json!(node));
        assert_eq!(payload["uid"], json!(uid));
        assert!(payload["expires"].as_f64().unwrap_or(0.0) > fxa_mock::now_secs() as f64, "{payload}");
        // What a storage node holding only the default secret derives: the Hawk key it hands out.
        let salt = payload["salt"].as_str().expect("salt");
        assert_eq!(body["key"], json!(common::hawk::derived_key(DEFAULT_SECRET, salt, token)));
    }

    // ---- §4 success, and the token used end to end ----

    fn token_response_and_end_to_end_hawk(b: Backend) {
        let s = ts(b);
        let fxa_uid = new_fxa_uid();
        let r = request(s, &jwt(&fxa_uid, Some(1234)), &kid(1234, "aaaa")).expect(200);
        assert!(r.header("Content-Type").unwrap_or_default().starts_with("application/json"));
        let ts_header: i64 = r.must_header("X-Timestamp").parse().expect("X-Timestamp is seconds");
        assert!((ts_header - fxa_mock::now_secs()).abs() < 60);
        let body = r.json();
        let uid = body["uid"].as_i64().expect("uid");
        assert_eq!(body["api_endpoint"], json!(format!("{PUBLIC_URL}/1.5/{uid}")));
        assert_eq!(body["duration"], json!(3600));
        assert_eq!(body["hashalg"], json!("sha256"));
        let node_type = match b {
            Backend::Sqlite => "sqlite",
            Backend::Mysql => "mysql",
            Backend::Postgres => "postgres",
        };
        assert_eq!(body["node_type"], json!(node_type));
        let hashed = metrics_hash(&fxa_uid);
        assert_eq!(body["hashed_fxa_uid"], json!(hashed));
        let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 8, "{keys:?}");
        let payload = token_payload(body["id"].as_str().unwrap());
        assert_eq!(payload["uid"], json!(uid));
        assert_eq!(payload["node"], json!(PUBLIC_URL));
        assert_eq!(payload["fxa_uid"], json!(fxa_uid));
        assert_eq!(payload["fxa_kid"], json!("0000000001234-qqo"));
        assert_eq!(payload["hashed_fxa_uid"], json!(hashed));
        assert_eq!(payload["hashed_device_id"], json!(metrics_hash(&format!("{hashed}none"))));
        let expires = payload["expires"].as_i64().expect("integer expires");
        assert!((expires - fxa_mock::now_secs() - 3600).abs() < 60);

        // The storage node accepts it: Hawk with id/key from the response.
        let user = User {
            uid: uid as u64,
            creds: Credentials { id: body["id"].as_str().unwrap().into(), key: body["key"].as_str().unwrap().into() },
            base_url: s.base_url.clone(),
            port: s.port,
        };
        user.put("/storage/bookmarks/e2e", &json!({"payload": "from a tokenserver token"})).expect(200);
        assert_eq!(user.get_json("/storage/bookmarks/e2e")["payload"], json!("from a tokenserver token"));
        assert!(user.get_json("/info/collections").get("bookmarks").is_some());

        // Same account, same keys: same uid.
        let again = ok(request(s, &jwt(&fxa_uid, Some(1234)), &kid(1234, "aaaa")));
        assert_eq!(again["uid"], json!(uid));
    }

    fn duration_parameter(b: Backend) {
        let s = ts(b);
        let token = jwt(&new_fxa_uid(), Some(1234));
        let auth = format!("Bearer {token}");
        let headers: [(&str, &[u8]); 2] = [("Authorization", auth.as_bytes()), ("X-KeyID", b"1234-qqo")];
        let duration = |query: &str| {
            let body = ok(get(s, &format!("/1.0/sync/1.5{query}"), &headers));
            let payload = token_payload(body["id"].as_str().unwrap());
            let lifetime = payload["expires"].as_i64().unwrap() - fxa_mock::now_secs();
            (body["duration"].as_i64().unwrap(), lifetime)
        };
        let (d, lifetime) = duration("?duration=60");
        assert_eq!(d, 60);
        assert!((lifetime - 60).abs() < 30);
        assert_eq!(duration("?duration=0").0, 0);
        assert_eq!(duration("?duration=3600").0, 3600);
        assert_eq!(duration("?duration=86400").0, 3600, "never more than configured");
        assert_eq!(duration("?duration=-5").0, 3600);
        assert_eq!(duration("?duration=abc").0, 3600);
        assert_eq!(duration("").0, 3600);
    }

    // ---- §6.5 worked examples ----

    fn example_keys_changed_at_before_generation(b: Backend) {
        let s = ts(b);
        let uid = new_fxa_uid();
        ok(request(s, &jwt(&uid, Some(1232)), &kid(1234, "")));
        expect_unauthorized(&request(s, &jwt(&uid, Some(1235)), &kid(1236, "")), "invalid-keysChangedAt");
        ok(request(s, &jwt(&uid, Some(1233)), &kid(1234, "")));
        ok(request(s, &jwt(&uid, None), &kid(1235, "")));
        ok(request(s, &jwt(&uid, Some(1236)), &kid(1235, "")));
    }

    fn example_stale_client_state(b: Backend) {
        let s = ts(b);
        let uid = new_fxa_uid();
        let aaaa = ok(request(s, &jwt(&uid, Some(1233)), &kid(1233, "aaaa")));
        let bbbb = ok(request(s, &jwt(&uid, Some(1234)), &kid(1234, "bbbb")));
        assert_ne!(aaaa["uid"], bbbb["uid"], "new keys, new uid");
        expect_client_state(&request(s, &jwt(&uid, Some(1236)), &kid(1236, "aaaa")), "stale value");
        assert_eq!(ok(request(s, &jwt(&uid, Some(1234)), &kid(1234, "bbbb")))["uid"], bbbb["uid"]);
        let cccc = ok(request(s, &jwt(&uid, Some(1235)), &kid(1235, "cccc")));
        assert_ne!(cccc["uid"], bbbb["uid"]);
        assert_ne!(cccc["uid"], aaaa["uid"]);
        // An empty client state after a real one is refused.
        expect_client_state(&request(s, &jwt(&uid, Some(1300)), &kid(1300, "")), "empty string");
    }

    fn example_client_state_change_needs_generation_change(b: Backend) {
        let s = ts(b);
        let uid = new_fxa_uid();
        ok(request(s, &jwt(&uid, Some(1234)), &kid(0, "aaaa")));
        let r = request(s, &jwt(&uid, Some(1234)), &kid(1234, "bbbb"));
        expect_client_state(&r, "new value with no generation change");
        let bbbb = ok(request(s, &jwt(&uid, None), &kid(1235, "bbbb")));
        assert_eq!(token_payload(bbbb["id"].as_str().unwrap())["fxa_kid"], json!(kid(1235, "bbbb")));
        // The new row's generation became 1235.
        let r = request(s, &jwt(&uid, Some(1235)), &kid(1235, "cccc"));
        expect_client_state(&r, "new value with no generation change");
        ok(request(s, &jwt(&uid, Some(1236)), &kid(1236, "cccc")));
        // keys_changed_at must move with a new client state too.
        let r = request(s, &jwt(&uid, Some(1300)), &kid(1236, "dddd"));
        expect_client_state(&r, "new value with no keys_changed_at change");
    }

    fn example_generation_not_reported(b: Backend) {
        let s = ts(b);
        let uid = new_fxa_uid();
        ok(request(s, &jwt(&uid, None), &kid(1234, "")));
        // Stored generation stays 0: a later small generation is still accepted.
        ok(request(s, &jwt(&uid, None), &kid(1234, "")));
        ok(request(s, &jwt(&uid, Some(1000)), &kid(1234, "")));
        // A keys change without a generation raises the generation to keys_changed_at.
        ok(request(s, &jwt(&uid, None), &kid(1235, "")));
        expect_unauthorized(&request(s, &jwt(&uid, Some(1200)), &kid(1235, "")), "invalid-generation");
    }

    fn example_fxa_kid_and_keys_changed_at(b: Backend) {
        let s = ts(b);
        let uid = new_fxa_uid();
        // Created with generation 1234 and no keys_changed_at: fxa_kid falls back to generation.
        let first = ok(request(s, &jwt(&uid, Some(1234)), &kid(0, "aaaa")));
        assert_eq!(token_payload(first["id"].as_str().unwrap())["fxa_kid"], json!("0000000001234-qqo"));
        let same = ok(request(s, &jwt(&uid, Some(1234)), &kid(1234, "aaaa")));
        assert_eq!(token_payload(same["id"].as_str().unwrap())["fxa_kid"], json!("0000000001234-qqo"));
        expect_unauthorized(&request(s, &jwt(&uid, Some(1234)), &kid(1233, "aaaa")), "invalid-keysChangedAt");
        expect_unauthorized(&request(s, &jwt(&uid, Some(1234)), &kid(2345, "bbbb")), "invalid-keysChangedAt");
        let moved = ok(request(s, &jwt(&uid, Some(2345)), &kid(2345, "bbbb")));
        assert_eq!(token_payload(moved["id"].as_str().unwrap())["fxa_kid"], json!("0000000002345-u7s"));
        assert_ne!(moved["uid"], first["uid"], "new uid");
        let node = |v: &Value| token_payload(v["id"].as_str().unwrap())["node"].clone();
        assert_eq!(node(&moved), node(&first), "same node");
        // Without keys_changed_at once one is stored: refused (rule 8).
        expect_unauthorized(&request(s, &jwt(&uid, Some(2345)), &kid(0, "bbbb")), "invalid-keysChangedAt");
    }

    fn example_zero_values_are_not_reported(b: Backend) {
        let s = ts(b);
        let uid = new_fxa_uid();
        ok(request(s, &jwt(&uid, Some(1234)), &kid(1234, "aaaa")));
        // fxa-generation 0 neither lowers nor sets the stored generation.
        ok(request(s, &jwt(&uid, Some(0)), &kid(1234, "aaaa")));
        expect_unauthorized(&request(s, &jwt(&uid, Some(1233)), &kid(1234, "aaaa")), "invalid-generation");
        // keys_changed_at 0 is absent, which a stored non-zero value refuses.
        expect_unauthorized(&request(s, &jwt(&uid, Some(1234)), &kid(0, "aaaa")), "invalid-keysChangedAt");
    }

    fn example_retired_user_gets_invalid_generation(b: Backend) {
        let s = ts(b);
        let uid = new_fxa_uid();
        ok(request(s, &jwt(&uid, Some(1234)), &kid(1234, "aaaa")));
        ok(request(s, &jwt(&uid, Some(MAX_GENERATION)), &kid(1234, "aaaa")));
        expect_unauthorized(&request(s, &jwt(&uid, Some(1235)), &kid(1234, "aaaa")), "invalid-generation");
        expect_unauthorized(&request(s, &jwt(&uid, Some(MAX_GENERATION - 1)), &kid(1234, "aaaa")), "invalid-generation");
    }

    // ---- dedicated servers: new users, capacity, nodes, database ----

    fn new_users_disabled_is_403(b: Backend) {
        let s = start(b, &[("WEFT_TOKENSERVER_ALLOW_NEW_USERS", "false")]);
        let r = request(&s, &jwt(&new_fxa_uid(), Some(1234)), &kid(1234, "aaaa"));
        expect_error(&r, 403, "new-users-disabled", "body", "", "New users are not allowed");
    }

    fn no_node_with_capacity_is_503(b: Backend) {
        let s = start(b, &[("WEFT_TOKENSERVER_NODE_CAPACITY", "1")]);
        let first = new_fxa_uid();
        ok(request(&s, &jwt(&first, Some(1234)), &kid(1234, "aaaa")));
        let r = request(&s, &jwt(&new_fxa_uid(), Some(1234)), &kid(1234, "aaaa"));
        expect_error(&r, 503, "internal-error", "internal", "", "Server error");
        // The user who has the slot keeps getting tokens.
        ok(request(&s, &jwt(&first, Some(1234)), &kid(1234, "aaaa")));
    }

    fn removed_node_reassigns_and_retired_user_without_node_is_500(b: Backend) {
        let s = start(b, &[]);
        let moved = new_fxa_uid();
        let retired = new_fxa_uid();
        let before = ok(request(&s, &jwt(&moved, Some(1234)), &kid(1234, "aaaa")));
        ok(request(&s, &jwt(&retired, Some(MAX_GENERATION)), &kid(1234, "aaaa")));
        let (success, out) = admin(&s, &["node", "remove", PUBLIC_URL, "--force"]);
        assert!(success, "{out}");
        let (success, out) = admin(&s, &["node", "add", PUBLIC_URL, "100", "--available", "100"]);
        assert!(success, "{out}");
        // Replaced user whose node was deleted: a new row (new uid) on an available node,
        // keeping generation, keys_changed_at and client state.
        let after = ok(request(&s, &jwt(&moved, Some(1234)), &kid(1234, "aaaa")));
        assert_ne!(after["uid"], before["uid"]);
        assert_eq!(token_payload(after["id"].as_str().unwrap())["fxa_kid"], json!("0000000001234-qqo"));
        let r = request(&s, &jwt(&retired, Some(MAX_GENERATION)), &kid(1234, "aaaa"));
        expect_error(&r, 500, "internal-error", "internal", "", "Server error");
    }

    fn database_request_timeout_is_504(b: Backend) {
        let s = start(b, &[("WEFT_TOKENSERVER_DATABASE_REQUEST_TIMEOUT_MS", "500")]);
        let lock = hold_node_lock(s.database_url(), 3);
        let r = request(&s, &jwt(&new_fxa_uid(), Some(1234)), &kid(1234, "aaaa"));
        expect_error(&r, 504, "elapsed", "body", "", "Elapsed");
        lock.join().expect("lock thread");
    }

    fn fxa_published_keys_are_fetched_when_none_configured(b: Backend) {
        // Its own mock: the published key set is global to a mock.
        let fxa = FxaMock::start();
        let s = start(
            b,
            &[
                ("WEFT_FXA_OAUTH_SERVER_URL", &fxa.url),
                ("WEFT_TOKENSERVER_FXA_OAUTH_PRIMARY_JWK", ""),
                ("WEFT_TOKENSERVER_FXA_OAUTH_SECONDARY_JWK", ""),
            ],
        );
        let uid = new_fxa_uid();
        fxa.set_jwks(Some(&[TestKey::Secondary, TestKey::Primary]));
        let token = jwt(&uid, Some(1234));
        ok(request(&s, &token, &kid(1234, "aaaa")));
        assert_eq!(fxa.jwks_calls(), 1, "JWKS fetched");
        assert_eq!(fxa.verify_calls(&token), 0, "verified locally");
        // An unknown key among the published ones is still a positive rejection.
        let unknown = Jwt::new(TestKey::Unknown, &uid, Some(1234)).sign();
        fxa.accept(&unknown, &uid, &[SYNC_SCOPE], Some(1234));
        expect_unauthorized(&request(&s, &unknown, &kid(1234, "aaaa")), "invalid-credentials");
        // No usable published key: the token is verified remotely instead.
        fxa.set_jwks(None);
        let other = Jwt::new(TestKey::Secondary, &uid, Some(1235)).sign();
        fxa.accept(&other, &uid, &[SYNC_SCOPE], Some(1235));
        ok(request(&s, &other, &kid(1234, "aaaa")));
        assert_eq!(fxa.verify_calls(&other), 1);
    }
}
