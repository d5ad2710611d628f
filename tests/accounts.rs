//! Local accounts over HTTP (local-accounts.md): the onepw vectors of §8 against a Rust
//! reimplementation of the sign-in page's derivations, a whole sign-up with that client (keys
//! unwrapped into kB, an authorization code exchanged with PKCE, the access token accepted by
//! the tokenserver), and the refusals of §5–§6 with FxA's status and errno: bad Hawk, replayed
//! nonce, stale timestamp, replayed code, wrong PKCE verifier, expired/used/foreign invite,
//! single-use key fetch, rate limit; deletion revokes sessions and retires the tokenserver user.

#[macro_use]
mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::accounts::*;
use common::*;
use serde_json::{json, Value};

#[test]
fn onepw_vectors_match_the_reimplementation_of_the_page() {
    let (email, password) = ("andré@example.org", "pässwörd");
    assert_eq!(
        hex(&quick_stretch(email, password)),
        "e4e8889bd8bd61ad6de6b95c059d56e7b50dacdaf62bd84644af7e2add84345d"
    );
    let (auth_pw, unwrap_b_key) = credentials(email, password);
    assert_eq!(hex(&auth_pw), "247b675ffb4c46310bc87e26d712153abe5e1c90ef00a4784594f97ef54f2375");
    assert_eq!(hex(&unwrap_b_key), "de6a2648b78284fcb9ffa81ba95803309cfba7af583c01a8a1a63e567234dd28");
    let (id, hmac_key, key_request_key) =
        token_keys("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f", "keyFetchToken");
    assert_eq!(id, "3d0a7c02a15a62a2882f76e39b6494b500c022a8816e048625a495718998ba60");
    assert_eq!(hex(&hmac_key), "87b8937f61d38d0e29cd2d5600b3f4da0aa48ac41de36a0efe84bb4a9872ceb7");
    assert_eq!(hex(&key_request_key), "14f338a9e8c6324d9e102d4e6ee83b209796d5c74bb734a410e729e014a4a546");
    let bundle = "ee5c58845c7c9412b11bbd20920c2fddd83c33c9cd2c2de2d66b222613364636\
                  c2c0f8cfbb7c630472c0bd88451342c6c05b14ce342c5ad46ad89e84464c993c\
                  3927d30230157d0817a077eef4b20d976f7a97363faf3f064c003ada7d01aa70";
    let (ka, wrap_kb) = unbundle(&key_request_key, bundle);
    assert_eq!(ka, (0x20..0x40).collect::<Vec<u8>>());
    assert_eq!(wrap_kb, (0x40..0x60).collect::<Vec<u8>>());
    let (id, hmac_key, _) =
        token_keys("a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf", "sessionToken");
    assert_eq!(id, "c0a29dcf46174973da1378696e4c82ae10f723cf4f4d9f75e39f4ae3851595ab");
    assert_eq!(hex(&hmac_key), "9d8f22998ee7f5798b887042466b72d53e56ab0c094388bf65831f702d2febc0");
    let (k_sync, kxcs) =
        sync_keys(&hex_decode("85c4f8c1d8e3e2186824c127af786891dd03c6e05b1b45f28f7181211bf2affb"));
    assert_eq!(
        hex(&k_sync),
        "d63eb2610f1e5edc21b37fed22b93b0f9ea379840fb5c3c5eb95991b9b3bfab6\
         9cbabfda0762bdf0b27431d81960c8cf5dab7d482901213a5a1b003eb0081ed0"
    );
    assert_eq!(hex(&kxcs), "518fef27c6bbc0220aab0f00b1a37308");
    assert_eq!(URL_SAFE_NO_PAD.encode(&kxcs), "UY_vJ8a7wCIKqw8AsaNzCA");
}

backend_tests! {
    fn sign_up_sync_token_and_delete(b: Backend) {
        let a = Accounts::start(b, &[]);
        let (email, password) = ("Alice@Example.org", "a long enough password");
        let invite = a.invite(&[]);
        let created = a.create(email, password, &invite);
        assert_eq!(created.status, 200, "{}", created.body);
        let kb = a.kb(&created.body, "alice@example.org", password);
        // The page lower-cases the email before stretching; the server compares it lower-cased.
        let login = a.login("ALICE@example.org", password);
        assert_eq!(login.status, 200, "{}", login.body);
        assert_eq!(a.kb(&login.body, "alice@example.org", password), kb, "kB must not change between sign-ins");

        let session = login.body["sessionToken"].as_str().unwrap();
        let scoped = a.signed("POST", "/v1/account/scoped-key-data", session, "sessionToken",
            Some(&json!({"client_id": CLIENT_ID, "scope": OLDSYNC})));
        let keys_changed_at = scoped.body[OLDSYNC]["keyRotationTimestamp"].as_i64().unwrap();
        assert!(keys_changed_at > 1_600_000_000_000, "milliseconds: {keys_changed_at}");

        let code = a.authorize(session, "verifier-0123456789-0123456789-0123456789-abc");
        let tokens = a.exchange(&code, "verifier-0123456789-0123456789-0123456789-abc");
        assert_eq!(tokens.status, 200, "{}", tokens.body);
        assert_eq!(tokens.body["keys_jwe"], "opaque.jwe");
        let access_token = tokens.body["access_token"].as_str().unwrap();

        // The tokenserver accepts the local issuer's token for the account's kid.
        let (_, kxcs) = sync_keys(&kb);
        let key_id = format!("{keys_changed_at:013}-{}", URL_SAFE_NO_PAD.encode(&kxcs));
        let sync_token = a.http.get(format!("{}/1.0/sync/1.5", a.server.base_url))
            .bearer_auth(access_token).header("X-KeyID", &key_id).send().unwrap();
        assert_eq!(sync_token.status(), 200, "{}", sync_token.text().unwrap());

        let profile = a.http.get(format!("{}/profile/v1/profile", a.server.base_url)).bearer_auth(access_token).send().unwrap();
        let profile: Value = profile.json().unwrap();
        assert_eq!(profile["email"], "alice@example.org");

        let listed = a.admin(&["list"]);
        assert!(listed.contains("alice@example.org") && listed.contains("active"), "{listed}");
        a.admin(&["delete", "alice@example.org"]);
        refused(&a.signed("GET", "/v1/session/status", session, "sessionToken", None), 401, 110);
        refused(&a.login("alice@example.org", password), 400, 102);
        let after = a.http.get(format!("{}/1.0/sync/1.5", a.server.base_url))
            .bearer_auth(access_token).header("X-KeyID", &key_id).send().unwrap();
        assert_eq!(after.status(), 401, "a deleted account's tokenserver user is retired");
    }

    fn refusals_change_nothing(b: Backend) {
        let a = Accounts::start(b, &[]);
        let password = "correct horse battery";

        // Invites: bound to an email, single use, expiring.
        let for_bob = a.invite(&["--email", "bob@example.org"]);
        refused(&a.create("eve@example.org", password, &for_bob), 400, 1001);
        refused(&a.create("bob@example.org", password, "not-an-invite"), 400, 1001);
        let created = a.create("bob@example.org", password, &for_bob);
        assert_eq!(created.status, 200, "{}", created.body);
        refused(&a.create("bob2@example.org", password, &for_bob), 400, 1001);
        let short = a.invite(&["--expires", "1s"]);
        std::thread::sleep(std::time::Duration::from_millis(1500));
        refused(&a.create("carol@example.org", password, &short), 400, 1001);
        let again = a.invite(&[]);
        refused(&a.create("bob@example.org", password, &again), 400, 101);

        refused(&a.login("bob@example.org", "wrong password"), 400, 103);
        refused(&a.login("nobody@example.org", password), 400, 102);

        // Key fetch tokens are single use.
        let kft = created.body["keyFetchToken"].as_str().unwrap();
        assert_eq!(a.signed("GET", "/v1/account/keys", kft, "keyFetchToken", None).status, 200);
        refused(&a.signed("GET", "/v1/account/keys", kft, "keyFetchToken", None), 401, 110);

        // Hawk: wrong key, unknown token, stale timestamp, replayed nonce, altered body.
        let session = created.body["sessionToken"].as_str().unwrap();
        let (id, key, _) = token_keys(session, "sessionToken");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
        let forged = hawk_with("GET", "/v1/session/status", &id, &[7u8; 32], None, &now, "n1");
        refused(&a.call("GET", "/v1/session/status", None, Some(forged)), 401, 109);
        let unknown = Accounts::hawk("GET", "/v1/session/status", &"ab".repeat(32), "sessionToken", None, 0);
        refused(&a.call("GET", "/v1/session/status", None, Some(unknown)), 401, 110);
        let stale = Accounts::hawk("GET", "/v1/session/status", session, "sessionToken", None, -120);
        let stale = a.call("GET", "/v1/session/status", None, Some(stale));
        refused(&stale, 401, 111);
        assert!(stale.body["serverTime"].as_i64().is_some());
        let once = hawk_with("GET", "/v1/session/status", &id, &key, None, &now, "n2");
        assert_eq!(a.call("GET", "/v1/session/status", None, Some(once.clone())).status, 200);
        refused(&a.call("GET", "/v1/session/status", None, Some(once)), 401, 115);
        let body = json!({"client_id": CLIENT_ID, "scope": OLDSYNC});
        let signed = Accounts::hawk("POST", "/v1/account/scoped-key-data", session, "sessionToken", Some(&body), 0);
        let altered = json!({"client_id": CLIENT_ID, "scope": "profile"});
        refused(&a.call("POST", "/v1/account/scoped-key-data", Some(&altered), Some(signed)), 401, 109);

        // PKCE and single-use codes: a wrong verifier is refused and consumes nothing.
        let verifier = "the-right-verifier-0123456789-0123456789-0123";
        let code = a.authorize(session, verifier);
        refused(&a.exchange(&code, "the-wrong-verifier-0123456789-0123456789-0123"), 400, 107);
        assert_eq!(a.exchange(&code, verifier).status, 200);
        refused(&a.exchange(&code, verifier), 401, 110);
        let plain = json!({"client_id": CLIENT_ID, "state": "s", "scope": OLDSYNC, "response_type": "code",
            "code_challenge": "x".repeat(43), "code_challenge_method": "plain"});
        refused(&a.signed("POST", "/v1/oauth/authorization", session, "sessionToken", Some(&plain)), 400, 107);
        let other_client = json!({"grant_type": "fxa-credentials", "client_id": "0000000000000000", "scope": OLDSYNC});
        refused(&a.signed("POST", "/v1/oauth/token", session, "sessionToken", Some(&other_client)), 400, 162);

        // A destroyed session is gone, with what hangs on it.
        let code = a.authorize(session, verifier);
        assert_eq!(a.signed("POST", "/v1/session/destroy", session, "sessionToken", Some(&json!({}))).status, 200);
        refused(&a.signed("GET", "/v1/session/status", session, "sessionToken", None), 401, 110);
        refused(&a.exchange(&code, verifier), 401, 110);
    }

    fn reset_link_gives_new_keys_and_disable_revokes(b: Backend) {
        let a = Accounts::start(b, &[]);
        let (email, old, new) = ("frank@example.org", "the old password", "the new password");
        let created = a.create(email, old, &a.invite(&[]));
        assert_eq!(created.status, 200, "{}", created.body);
        let kb_old = a.kb(&created.body, email, old);
        let old_session = created.body["sessionToken"].as_str().unwrap();
        let scope = json!({"client_id": CLIENT_ID, "scope": OLDSYNC});
        let changed_at = |session: &str| {
            let answer = a.signed("POST", "/v1/account/scoped-key-data", session, "sessionToken", Some(&scope));
            answer.body[OLDSYNC]["keyRotationTimestamp"].as_i64().unwrap()
        };
        let before = changed_at(old_session);

        let link = a.admin(&["reset-password-link", email]);
        let code = link.split("reset=").nth(1).unwrap().split(['&', '\n']).next().unwrap().to_string();
        let reset = |who: &str, password: &str| {
            let (auth_pw, _) = credentials(who, password);
            a.call("POST", "/v1/account/reset", Some(&json!({"email": who, "authPW": hex(&auth_pw), "code": code})), None)
        };
        refused(&reset("someone@example.org", new), 400, 1001);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let done = reset(email, new);
        assert_eq!(done.status, 200, "{}", done.body);
        refused(&reset(email, "a third password"), 400, 1001);
        refused(&a.signed("GET", "/v1/session/status", old_session, "sessionToken", None), 401, 110);
        refused(&a.login(email, old), 400, 103);
        let login = a.login(email, new);
        assert_eq!(login.status, 200, "{}", login.body);
        assert_ne!(a.kb(&login.body, email, new), kb_old, "a reset means a new kB");
        let session = login.body["sessionToken"].as_str().unwrap().to_string();
        assert!(changed_at(&session) > before, "keys_changed_at moves with the keys");

        a.admin(&["disable", email]);
        refused(&a.login(email, new), 401, 1002);
        refused(&a.signed("GET", "/v1/session/status", &session, "sessionToken", None), 401, 110);
        a.admin(&["enable", email]);
        assert_eq!(a.login(email, new).status, 200);
    }

    fn mozilla_accounts_beside_local_ones(b: Backend) {
        use common::fxa_mock::{self, Jwt, TestKey};
        let jwk = TestKey::Primary.jwk().to_string();
        let fxa = [
            // Nothing listens there: a token sent to FxA would fail with 503, not 200 or 401.
            ("WEFT_FXA_OAUTH_SERVER_URL", "http://127.0.0.1:9"),
            ("WEFT_TOKENSERVER_FXA_OAUTH_PRIMARY_JWK", jwk.as_str()),
            ("WEFT_TOKENSERVER_FXA_OAUTH_ISSUER", fxa_mock::ISSUER),
        ];
        let token_status = |a: &Accounts, token: &str| {
            a.http.get(format!("{}/1.0/sync/1.5", a.server.base_url))
                .bearer_auth(token).header("X-KeyID", "0000000001234-qqo").send().unwrap().status().as_u16()
        };
        let mozilla = Jwt::new(TestKey::Primary, &format!("{:032x}", random_uid()), Some(1234)).sign();
        // A token claiming the local issuer but signed with another key is judged by the local
        // keys alone: refused, never passed on to FxA.
        let mut impostor = Jwt::new(TestKey::Primary, &format!("{:032x}", random_uid()), Some(1234));
        impostor.claims["iss"] = json!(ORIGIN);
        let impostor = impostor.sign();

        let local_only = Accounts::start(b, &fxa);
        assert_eq!(token_status(&local_only, &mozilla), 401, "an invite-only server by default");
        assert_eq!(token_status(&local_only, &impostor), 401);
        let both = Accounts::start(b, &[&fxa[..], &[("WEFT_ACCOUNTS_TRUST_MOZILLA_ACCOUNTS", "true")]].concat());
        assert_eq!(token_status(&both, &mozilla), 200, "Mozilla accounts when asked for");
        assert_eq!(token_status(&both, &impostor), 401);
        assert!(both.server.log_tail().contains("anyone with a Mozilla account"), "said loudly at start-up");
    }

    fn stretches_are_bounded(b: Backend) {
        // 2^17 (128 MiB) one at a time with a deadline of 1 s: six sign-ins cannot all start.
        let a = Accounts::start(b, &[
            ("WEFT_ACCOUNTS_SCRYPT_LOG_N", "17"),
            ("WEFT_ACCOUNTS_MAX_CONCURRENT_STRETCHES", "1"),
            ("WEFT_ACCOUNTS_STRETCH_DEADLINE_SECONDS", "1"),
        ]);
        let (email, password) = ("grace@example.org", "a password for grace");
        assert_eq!(a.create(email, password, &a.invite(&[])).status, 200);
        let answers: Vec<Answer> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6).map(|_| s.spawn(|| a.login(email, password))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(answers.iter().any(|r| r.status == 200), "one sign-in at a time still gets through");
        let busy = answers.iter().find(|r| r.status == 503).expect("a sign-in beyond the bound is refused");
        refused(busy, 503, 201);
        assert!(busy.retry_after.is_some(), "503 carries Retry-After");
    }

    fn quick_stretch_versions(b: Backend) {
        let a = Accounts::start(b, &[]);
        let status = |email: &str| a.call("POST", "/v1/account/credentials/status", Some(&json!({"email": email})), None);
        assert_eq!(a.create("v1@example.org", "password one", &a.invite(&[])).status, 200);
        assert_eq!(status("v1@example.org").body["currentVersion"], "v1");
        refused(&status("nobody@example.org"), 400, 102);

        // The server cannot tell how authPW was stretched; it keeps the salt for the page.
        let salt = format!("identity.mozilla.com/picl/v1/quickStretchV2:{}", "0123456789abcdef".repeat(2));
        let (auth_pw, _) = credentials("v2@example.org", "password two");
        let mut body = json!({"email": "v2@example.org", "authPW": hex(&auth_pw), "invite": a.invite(&[]), "clientSalt": "quickStretchV2:zz"});
        refused(&a.call("POST", "/v1/account/create?keys=true", Some(&body), None), 400, 107);
        body["clientSalt"] = json!(salt);
        assert_eq!(a.call("POST", "/v1/account/create?keys=true", Some(&body), None).status, 200);
        let v2 = status("v2@example.org");
        assert_eq!((v2.body["currentVersion"].as_str(), v2.body["clientSalt"].as_str()), (Some("v2"), Some(salt.as_str())));
    }

    fn wrong_passwords_are_limited_per_account_and_address(b: Backend) {
        let a = Accounts::start(b, &[
            ("WEFT_ACCOUNTS_FAILED_LOGINS_PER_ACCOUNT_ADDRESS", "2"),
            ("WEFT_TRUST_PROXY_HEADERS", "127.0.0.1"),
        ]);
        let (email, password) = ("dave@example.org", "dave's password");
        assert_eq!(a.create(email, password, &a.invite(&[])).status, 200);
        let guesser = Caller::ForwardedFor("198.51.100.1".into());
        refused(&a.login_from(&guesser, email, "guess one"), 400, 103);
        refused(&a.login_from(&guesser, email, "guess two"), 400, 103);
        let limited = a.login_from(&guesser, email, password);
        refused(&limited, 429, 114);
        assert!(limited.body["retryAfter"].as_u64().is_some_and(|s| s >= 1));
        assert!(limited.retry_after.is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
        // Another address (a client-written hop left of it changes nothing) is unaffected.
        let spoofing = Caller::ForwardedFor("203.0.113.5, 198.51.100.1".into());
        refused(&a.login_from(&spoofing, email, password), 429, 114);
        let owner = Caller::ForwardedFor("198.51.100.2".into());
        assert_eq!(a.login_from(&owner, email, password).status, 200, "the owner is not locked out");
        // Unknown accounts and right passwords are not failures of the account.
        for _ in 0..3 {
            refused(&a.login_from(&owner, "nobody@example.org", password), 400, 102);
        }
        assert_eq!(a.login_from(&owner, email, password).status, 200);
    }

    fn off_by_default(b: Backend) {
        let server = shared(b);
        let http = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let discovery = http.get(format!("{}/.well-known/fxa-client-configuration", server.base_url)).send().unwrap();
        assert_eq!(discovery.status(), 404);
        let root = http.get(format!("{}/", server.base_url)).send().unwrap();
        assert_eq!(root.status(), 302, "without local accounts, / is the protocol-docs redirect");
    }

    fn discovery_page_and_jwks(b: Backend) {
        let a = Accounts::start(b, &[]);
        let conf: Value = a.http.get(format!("{}/.well-known/fxa-client-configuration", a.server.base_url)).send().unwrap().json().unwrap();
        assert_eq!(conf["auth_server_base_url"], ORIGIN);
        assert_eq!(conf["sync_tokenserver_base_url"], ORIGIN);
        assert_eq!(conf["profile_server_base_url"], format!("{ORIGIN}/profile"));
        let jwks: Value = a.http.get(format!("{}/v1/jwks", a.server.base_url)).send().unwrap().json().unwrap();
        assert_eq!(jwks["keys"][0]["kty"], "RSA");
        let page = a.http.get(format!("{}/?context=oauth_webchannel_v1", a.server.base_url)).send().unwrap();
        let csp = page.headers()["Content-Security-Policy"].to_str().unwrap().to_string();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{csp}");
        let html = page.text().unwrap();
        assert!(html.contains("/weft-accounts/signin.js") && !html.contains("http"), "no third-party resources");
        // No other origin may drive the account routes from its visitors' browsers.
        for method in ["OPTIONS", "POST"] {
            let resp = a.http.request(method.parse().unwrap(), format!("{}/v1/account/login", a.server.base_url))
                .header("Origin", "https://evil.example").header("Access-Control-Request-Method", "POST")
                .send().unwrap();
            assert!(!resp.headers().contains_key("Access-Control-Allow-Origin"), "{method}: {:?}", resp.headers());
        }
    }
}
