//! Issue 21: the account page and what is around it. `weft serve` prints exactly the Firefox
//! prefs the setup needs (local accounts on http loopback, on https, off); the sign-in page
//! carries the words that explain an origin mismatch; FxA's routes behind the account page with
//! real Hawk — password change (kB kept, other sessions revoked, generation raised), device
//! sign-out, deletion with the password (purged by the scheduled purge) — and the page served
//! at every path Firefox's menu opens.

#[macro_use]
mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::accounts::*;
use common::*;
use serde_json::{json, Value};

/// The `about:config` lines of a server's start-up output, in order.
fn pref_lines(server: &TestServer) -> Vec<String> {
    server
        .log_tail()
        .lines()
        .filter_map(|l| l.strip_prefix("weft: in Firefox (about:config) set "))
        .map(str::to_string)
        .collect()
}

#[test]
fn serve_prints_exactly_the_prefs_the_setup_needs() {
    let b = Backend::Sqlite;
    let on_loopback = Accounts::start(b, &[]);
    assert_eq!(
        pref_lines(&on_loopback.server),
        [
            "identity.fxaccounts.autoconfig.uri = http://localhost:8000",
            "identity.fxaccounts.allowHttp = true",
        ],
        "{}",
        on_loopback.server.log_tail()
    );

    let on_https = Accounts::start(b, &[("WEFT_PUBLIC_URL", "https://sync.example.com/")]);
    assert_eq!(
        pref_lines(&on_https.server),
        ["identity.fxaccounts.autoconfig.uri = https://sync.example.com"],
        "{}",
        on_https.server.log_tail()
    );

    let off = TestServer::start(b, &[("WEFT_PUBLIC_URL", "http://localhost:8000")]);
    assert_eq!(
        pref_lines(&off),
        ["identity.sync.tokenserver.uri = http://localhost:8000/1.0/sync/1.5"],
        "{}",
        off.log_tail()
    );
}

#[test]
fn sign_in_page_explains_an_origin_mismatch() {
    let a = Accounts::start(Backend::Sqlite, &[]);
    let get = |path: &str| a.http.get(format!("{}{path}", a.server.base_url)).send().unwrap().text().unwrap();
    // The test client reaches the server at 127.0.0.1 while its public origin is localhost:
    // the discovery document the page compares its own origin with names the public one.
    let conf: Value = serde_json::from_str(&get("/.well-known/fxa-client-configuration")).unwrap();
    assert_eq!(conf["auth_server_base_url"], ORIGIN);
    assert!(get("/").contains(r#"id="origin-warning""#));
    let script = get("/weft-accounts/common.js");
    for words in [
        "as two different sites",
        "this page was opened over",
        "identity.fxaccounts.autoconfig.uri to exactly",
    ] {
        assert!(script.contains(words), "the page explains the mismatch: {words}");
    }
}

/// A tokenserver answer for an access token and key id: (status, body).
fn sync_token(a: &Accounts, access_token: &str, key_id: &str) -> (u16, Value) {
    let resp = a
        .http
        .get(format!("{}/1.0/sync/1.5", a.server.base_url))
        .bearer_auth(access_token)
        .header("X-KeyID", key_id)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
}

/// A new access token for the oldsync scope from a session (Firefox's `fxa-credentials` grant).
fn access_token(a: &Accounts, session: &str) -> Answer {
    let body = json!({"grant_type": "fxa-credentials", "client_id": CLIENT_ID, "scope": OLDSYNC});
    a.signed("POST", "/v1/oauth/token", session, "sessionToken", Some(&body))
}

/// The kid Firefox sends the tokenserver for kB (keys_changed_at from scoped-key-data).
fn key_id(a: &Accounts, session: &str, kb: &[u8]) -> String {
    let scope = json!({"client_id": CLIENT_ID, "scope": OLDSYNC});
    let scoped = a.signed("POST", "/v1/account/scoped-key-data", session, "sessionToken", Some(&scope));
    let keys_changed_at = scoped.body[OLDSYNC]["keyRotationTimestamp"].as_i64().unwrap();
    let (_, kxcs) = sync_keys(kb);
    format!("{keys_changed_at:013}-{}", URL_SAFE_NO_PAD.encode(&kxcs))
}

fn register_device(a: &Accounts, session: &str, name: &str) -> String {
    let device = a.signed(
        "POST",
        "/v1/account/device",
        session,
        "sessionToken",
        Some(&json!({"name": name, "type": "desktop"})),
    );
    assert_eq!(device.status, 200, "{}", device.body);
    device.body["id"].as_str().unwrap().to_string()
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

backend_tests! {
    /// FxA's onepw password change, done as the account page does it: start with the old
    /// authPW, unwrap kB from the key fetch, finish with the new authPW and kB wrapped with the
    /// new unwrapBKey, signed with the passwordChangeToken.
    fn change_password_keeps_kb_and_revokes_other_sessions(b: Backend) {
        let a = Accounts::start(b, &[]);
        let (email, old, new) = ("pat@example.org", "the old password", "the new password");
        let created = a.create(email, old, &a.invite(&[]));
        assert_eq!(created.status, 200, "{}", created.body);
        let kb = a.kb(&created.body, email, old);
        let page = created.body["sessionToken"].as_str().unwrap().to_string();
        let other = a.login(email, old);
        let other = other.body["sessionToken"].as_str().unwrap().to_string();
        register_device(&a, &other, "laptop B");
        let kid = key_id(&a, &page, &kb);
        let before = access_token(&a, &page);
        let before = before.body["access_token"].as_str().unwrap().to_string();
        assert_eq!(sync_token(&a, &before, &kid).0, 200);

        let (old_auth_pw, _) = credentials(email, old);
        let (wrong_auth_pw, _) = credentials(email, "not the password");
        let start = |auth_pw: &[u8]| a.call("POST", "/v1/password/change/start", Some(&json!({"email": email, "oldAuthPW": hex(auth_pw)})), None);
        refused(&start(&wrong_auth_pw), 400, 103);
        let started = start(&old_auth_pw);
        assert_eq!(started.status, 200, "{}", started.body);
        let change_token = started.body["passwordChangeToken"].as_str().unwrap().to_string();
        let unwrapped = a.kb(&json!({"keyFetchToken": started.body["keyFetchToken"]}), email, old);
        assert_eq!(unwrapped, kb, "the change's key fetch unwraps the same kB with the old password");

        let (new_auth_pw, new_unwrap_b_key) = credentials(email, new);
        let finish_body = json!({"authPW": hex(&new_auth_pw), "wrapKb": hex(&xor(&kb, &new_unwrap_b_key))});
        refused(&a.call("POST", "/v1/password/change/finish", Some(&finish_body), None), 401, 110);
        refused(&a.signed("POST", "/v1/password/change/finish", &page, "passwordChangeToken", Some(&finish_body)), 401, 110);
        let finished = a.signed("POST", "/v1/password/change/finish", &change_token, "passwordChangeToken", Some(&finish_body));
        assert_eq!(finished.status, 200, "{}", finished.body);
        assert_eq!(finished.body["uid"], created.body["uid"]);
        assert_eq!(finished.body["verified"], true);
        let renewed = finished.body["sessionToken"].as_str().unwrap().to_string();
        refused(&a.signed("POST", "/v1/password/change/finish", &change_token, "passwordChangeToken", Some(&finish_body)), 401, 110);

        // Every session before the change is revoked; the one the change answered works.
        refused(&a.signed("GET", "/v1/session/status", &other, "sessionToken", None), 401, 110);
        refused(&a.signed("GET", "/v1/session/status", &page, "sessionToken", None), 401, 110);
        refused(&access_token(&a, &other), 401, 110);
        assert_eq!(a.signed("GET", "/v1/session/status", &renewed, "sessionToken", None).status, 200);
        assert!(a.signed("GET", "/v1/account/devices", &renewed, "sessionToken", None).body.as_array().unwrap().is_empty(),
            "the revoked sessions' devices are gone");

        // The old password fails, the new one signs in with the same kB and the same kid.
        refused(&a.login(email, old), 400, 103);
        let login = a.login(email, new);
        assert_eq!(login.status, 200, "{}", login.body);
        assert_eq!(a.kb(&login.body, email, new), kb, "kB unchanged: synced data stays readable");
        assert_eq!(key_id(&a, &renewed, &kb), kid, "keys_changed_at unchanged");
        // The generation rose: access tokens from before are refused, new ones accepted.
        assert_eq!(sync_token(&a, &before, &kid).0, 401, "an access token from before the change");
        let after = access_token(&a, &renewed);
        assert_eq!(sync_token(&a, after.body["access_token"].as_str().unwrap(), &kid).0, 200);
    }

    fn device_destroy_signs_that_device_out(b: Backend) {
        let a = Accounts::start(b, &[]);
        let (email, password) = ("quinn@example.org", "quinn's password");
        let created = a.create(email, password, &a.invite(&[]));
        assert_eq!(created.status, 200, "{}", created.body);
        let mine = created.body["sessionToken"].as_str().unwrap().to_string();
        register_device(&a, &mine, "desktop A");
        let theirs = a.login(email, password).body["sessionToken"].as_str().unwrap().to_string();
        let id = register_device(&a, &theirs, "desktop B");
        let listed = a.signed("GET", "/v1/account/devices", &mine, "sessionToken", None);
        let b_entry = listed.body.as_array().unwrap().iter().find(|d| d["id"] == id.as_str()).unwrap().clone();
        assert_eq!((b_entry["name"].as_str(), b_entry["isCurrentDevice"].as_bool()), (Some("desktop B"), Some(false)));

        refused(&a.signed("POST", "/v1/account/device/destroy", &mine, "sessionToken", Some(&json!({"id": "0".repeat(32)}))), 400, 123);
        refused(&a.signed("POST", "/v1/account/device/destroy", &mine, "sessionToken", Some(&json!({}))), 400, 107);
        refused(&a.call("POST", "/v1/account/device/destroy", Some(&json!({"id": id})), None), 401, 110);
        let done = a.signed("POST", "/v1/account/device/destroy", &mine, "sessionToken", Some(&json!({"id": id})));
        assert_eq!((done.status, done.body.clone()), (200, json!({})));
        refused(&a.signed("GET", "/v1/session/status", &theirs, "sessionToken", None), 401, 110);
        refused(&access_token(&a, &theirs), 401, 110);
        assert_eq!(access_token(&a, &mine).status, 200, "the page's own device stays signed in");
        let left = a.signed("GET", "/v1/account/devices", &mine, "sessionToken", None);
        assert_eq!(left.body.as_array().unwrap().len(), 1, "{}", left.body);
    }

    /// Deleting with the password (FxA's `/v1/account/destroy`) does what `weft account delete`
    /// does: the account is gone, its tokenserver user retired, and the scheduled purge
    /// (grace 3 s, every second) deletes its synced data.
    fn delete_with_password_purges(b: Backend) {
        let a = Accounts::start(b, &[
            ("WEFT_TOKENSERVER_RETIRED_PURGE_INTERVAL_SECONDS", "1"),
            ("WEFT_TOKENSERVER_RETIRED_PURGE_GRACE_PERIOD_SECONDS", "3"),
            ("WEFT_CACHE_MEMORY_BYTES", "0"),
        ]);
        let (email, password) = ("rue@example.org", "rue's password");
        let created = a.create(email, password, &a.invite(&[]));
        let kb = a.kb(&created.body, email, password);
        let session = created.body["sessionToken"].as_str().unwrap().to_string();
        let kid = key_id(&a, &session, &kb);
        let access = access_token(&a, &session).body["access_token"].as_str().unwrap().to_string();
        let (status, token) = sync_token(&a, &access, &kid);
        assert_eq!(status, 200, "{token}");
        let user = User {
            uid: token["uid"].as_u64().unwrap(),
            creds: client::Credentials { id: token["id"].as_str().unwrap().into(), key: token["key"].as_str().unwrap().into() },
            base_url: a.server.base_url.clone(),
            port: a.server.port,
        };
        user.put("/storage/bookmarks/abcdefghijkl", &json!({"id": "abcdefghijkl", "payload": "encrypted"})).expect(200);
        let has_data = || user.get_json("/info/collections").as_object().is_some_and(|c| !c.is_empty());
        assert!(has_data());

        let destroy = |password: &str| {
            let (auth_pw, _) = credentials(email, password);
            a.call("POST", "/v1/account/destroy", Some(&json!({"email": email, "authPW": hex(&auth_pw)})), None)
        };
        refused(&destroy("not the password"), 400, 103);
        assert_eq!(a.signed("GET", "/v1/session/status", &session, "sessionToken", None).status, 200, "a refusal changes nothing");
        let done = destroy(password);
        assert_eq!((done.status, done.body.clone()), (200, json!({})));
        refused(&a.login(email, password), 400, 102);
        refused(&a.signed("GET", "/v1/session/status", &session, "sessionToken", None), 401, 110);
        assert_eq!(sync_token(&a, &access, &kid).0, 401, "the tokenserver user is retired");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while has_data() {
            assert!(std::time::Instant::now() < deadline, "the purge did not delete the data within 30 s:\n{}", a.server.log_tail());
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }

    /// `/settings`, anything under it and `/connect_another_device` get the account page (not
    /// a JSON 404), under the sign-in page's CSP, with no third-party resource.
    fn account_page_is_served(b: Backend) {
        let a = Accounts::start(b, &[]);
        let signin_csp = a.http.get(format!("{}/", a.server.base_url)).send().unwrap().headers()["Content-Security-Policy"].clone();
        for path in ["/settings", "/settings/clients", "/settings/change_password", "/settings/anything/else", "/connect_another_device?entrypoint=x"] {
            let resp = a.http.get(format!("{}{path}", a.server.base_url)).send().unwrap();
            assert_eq!(resp.status(), 200, "{path}");
            assert_eq!(resp.headers()["Content-Security-Policy"], signin_csp, "{path}");
            assert_eq!(resp.headers()["X-Frame-Options"], "DENY");
            let html = resp.text().unwrap();
            assert!(html.contains("/weft-accounts/settings.js") && html.contains("id=\"devices\""), "{path}");
            assert!(!html.contains("http"), "{path}: no third-party resources");
        }
        for script in ["common.js", "settings.js", "signin.js"] {
            let resp = a.http.get(format!("{}/weft-accounts/{script}", a.server.base_url)).send().unwrap();
            assert_eq!(resp.status(), 200, "{script}");
            assert_eq!(resp.headers()["Content-Security-Policy"], signin_csp);
        }
    }
}
