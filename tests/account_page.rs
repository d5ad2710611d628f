//! Issue 21: what a self-hoster sees around the account page. `weft serve` prints exactly the
//! Firefox prefs the setup needs (local accounts on http loopback, on https, off); the sign-in
//! page carries the words that explain an origin mismatch.

#[macro_use]
mod common;

use common::accounts::*;
use common::*;

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
    let conf: serde_json::Value =
        serde_json::from_str(&get("/.well-known/fxa-client-configuration")).unwrap();
    assert_eq!(conf["auth_server_base_url"], ORIGIN);
    assert!(get("/").contains(r#"id="origin-warning""#));
    let script = get("/weft-accounts/signin.js");
    for words in [
        "as two different sites",
        "this page was opened over",
        "identity.fxaccounts.autoconfig.uri to exactly",
    ] {
        assert!(script.contains(words), "the page explains the mismatch: {words}");
    }
}
