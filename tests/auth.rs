//! Authentication of storage requests (tokens-and-hawk.md §3–§6, storage-api.md §2): token
//! signature and format, expiry and the bounded info/collections grace, secret rollover via the
//! config file's `master_secrets`, node binding, uid mismatch, Hawk header parsing, MAC binding
//! of method/target/host/port, clock skew, and the optional payload `hash`.

#[macro_use]
mod common;

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use common::hawk::{self, HawkParams};
use common::*;
use serde_json::json;

/// Every authentication failure looks the same to the client (§5.1, storage-api §10.3).
#[track_caller]
fn assert_auth_failure(r: &Resp) {
    assert_eq!(r.status, 401, "{}: body {:?}", r.what, r.body);
    assert_eq!(r.body.trim(), "0", "{}: 401 body", r.what);
    assert!(
        r.header("Content-Type").unwrap_or_default().starts_with("application/json"),
        "{}: 401 content type",
        r.what
    );
    parse_ts(&r.must_header("X-Weave-Timestamp"));
}

/// A user whose token differs from a valid one by `change`.
fn user_with(server: &TestServer, change: impl FnOnce(&mut TokenSpec)) -> User {
    let mut spec = TokenSpec::new(server);
    change(&mut spec);
    User::with_token(server, &spec)
}

// Master secrets of a rollover: the server refuses secrets shorter than 32 bytes.
const OLDER: &str = "older-master-secret-0123456789abcdef";
const OLD: &str = "old-master-secret-0123456789abcdef";
const NEW: &str = "new-master-secret-0123456789abcdef";

backend_tests! {
    fn valid_token_and_mac_are_accepted(b: Backend) {
        let u = User::new(shared(b));
        let r = u.get("/info/collections").expect(200);
        assert_eq!(r.json(), json!({}));
    }

    fn bad_mac_is_401(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        let fake = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        assert_auth_failure(&u.req("GET", "/info/collections").hawk(|h| h.mac = Some(fake.into())).send());
        // A write with a bad MAC must not touch anything.
        rejects_unchanged(&u, "bookmarks", 401, Some("0"), || {
            u.req("PUT", "/storage/bookmarks/known-a")
                .json(&json!({"payload": "evil"}))
                .hawk(|h| h.mac = Some(fake.into()))
                .send()
        });
    }

    fn token_signed_with_unknown_secret_is_401(b: Backend) {
        let server = shared(b);
        let u = user_with(server, |s| s.secret = "not-the-server-secret".into());
        assert_auth_failure(&u.get("/info/collections"));
    }

    fn tampered_token_payload_is_401(b: Backend) {
        let server = shared(b);
        let spec = TokenSpec::new(server);
        let good = spec.credentials();
        let mut bytes = URL_SAFE.decode(&good.id).unwrap();
        // Change the uid digits' neighbour inside the payload: the signature no longer matches.
        let pos = bytes.iter().position(|&c| c == b'{').unwrap() + 1;
        bytes[pos] ^= 0x01;
        let id = URL_SAFE.encode(&bytes);
        let key = hawk::derived_key(&spec.secret, &spec.salt, &id);
        let u = User::with_token(server, &spec);
        assert_auth_failure(&u.req("GET", "/info/collections").creds(Credentials { id, key }).send());
    }

    fn malformed_token_ids_are_401(b: Backend) {
        let server = shared(b);
        let spec = TokenSpec::new(server);
        let u = User::with_token(server, &spec);
        let good = spec.credentials();
        let unpadded = good.id.trim_end_matches('=').to_string();
        let short = URL_SAFE.encode([7u8; 32]);
        let standard_alphabet = good.id.replace('-', "+").replace('_', "/");
        let mut ids = vec![short, "not base64 at all!".to_string()];
        // Variants that only differ from the valid id when it has padding / url-safe characters.
        for variant in [unpadded, standard_alphabet] {
            if variant != good.id {
                ids.push(variant);
            }
        }
        for id in ids {
            let key = hawk::derived_key(&spec.secret, &spec.salt, &id);
            assert_auth_failure(&u.req("GET", "/info/collections").creds(Credentials { id, key }).send());
        }
    }

    fn token_without_salt_is_401(b: Backend) {
        let server = shared(b);
        let mut spec = TokenSpec::new(server);
        spec.raw_payload = Some(format!(
            r#"{{"uid":{},"node":"{}","expires":{}}}"#,
            spec.uid, PUBLIC_URL, spec.expires
        ));
        // Without a salt the client side would use an empty salt; the server must refuse anyway.
        spec.salt = String::new();
        assert_auth_failure(&User::with_token(server, &spec).get("/info/collections"));
    }

    fn py_style_token_with_float_expires_is_accepted(b: Backend) {
        let server = shared(b);
        let mut spec = TokenSpec::new(server);
        spec.raw_payload = Some(format!(
            r#"{{"uid": {}, "node": "{}", "expires": {}.0, "fxa_uid": "319b98f9961ff1dbdd07313cd6ba925a", "fxa_kid": "0000000001234-qqo", "hashed_fxa_uid": "0e8df5d41398a389", "salt": "{}"}}"#,
            spec.uid, PUBLIC_URL, hawk::now_secs() + 600, spec.salt
        ));
        User::with_token(server, &spec).get("/info/collections").expect(200);
    }

    fn expired_token_is_401_everywhere_but_info_collections(b: Backend) {
        let server = shared(b);
        let owner = seeded_user(server, "bookmarks");
        let mut spec = TokenSpec::new(server);
        spec.uid = owner.uid;
        spec.expires = hawk::now_secs() - 120;
        let expired = User::with_token(server, &spec);
        // Default grace is 7200 s: the cheap "did anything change?" poll still works.
        expired.get("/info/collections").expect(200);
        for rel in ["/info/quota", "/info/collection_counts", "/storage/bookmarks", "/storage/bookmarks/known-a"] {
            assert_auth_failure(&expired.get(rel));
        }
        // `/storage/info/collections` is a collection named `info`, not the exempt route.
        assert_auth_failure(&expired.get("/storage/info/collections"));
        rejects_unchanged(&owner, "bookmarks", 401, Some("0"), || {
            expired.put("/storage/bookmarks/known-a", &json!({"payload": "late"}))
        });
    }

    fn token_expiring_now_is_401(b: Backend) {
        let server = shared(b);
        let u = user_with(server, |s| s.expires = hawk::now_secs() - 1);
        assert_auth_failure(&u.get("/storage/bookmarks"));
    }

    fn expired_grace_on_info_collections_is_bounded(b: Backend) {
        let server = TestServer::start(b, &[("WEFT_AUTH_EXPIRED_TOKEN_GRACE_SECONDS", "60")]);
        let within = user_with(&server, |s| s.expires = hawk::now_secs() - 20);
        within.get("/info/collections").expect(200);
        assert_auth_failure(&within.get("/storage/bookmarks"));
        let beyond = user_with(&server, |s| s.expires = hawk::now_secs() - 120);
        assert_auth_failure(&beyond.get("/info/collections"));
    }

    fn rollover_secret_no_longer_listed_is_401(b: Backend) {
        let server = TestServer::start_with_config(b, &[], &format!("master_secrets = [\"{NEW}\"]\n"), NEW);
        let uid = random_uid();
        let old = user_with(&server, |s| { s.secret = OLD.into(); s.uid = uid; });
        let new = user_with(&server, |s| { s.secret = NEW.into(); s.uid = uid; });
        assert_auth_failure(&old.get("/info/collections"));
        new.get("/info/collections").expect(200);
    }

    fn rollover_any_listed_secret_verifies(b: Backend) {
        let server =
            TestServer::start_with_config(b, &[], &format!("master_secrets = [\"{OLD}\", \"{NEW}\"]\n"), NEW);
        let uid = random_uid();
        let old = user_with(&server, |s| { s.secret = OLD.into(); s.uid = uid; });
        let new = user_with(&server, |s| { s.secret = NEW.into(); s.uid = uid; });
        // Tokens of both generations open the same user's data.
        old.put("/storage/prefs/p1", &json!({"payload": "from-old"})).expect(200);
        let got = new.get_json("/storage/prefs/p1");
        assert_eq!(got["payload"], "from-old");
        let stranger = user_with(&server, |s| s.secret = OLDER.into());
        assert_auth_failure(&stranger.get("/info/collections"));
    }

    fn uid_mismatch_is_400_and_writes_nothing(b: Backend) {
        let server = shared(b);
        let victim = seeded_user(server, "bookmarks");
        let attacker = User::new(server);
        let r = rejects_unchanged(&victim, "bookmarks", 400, Some("0"), || {
            attacker
                .raw("PUT", &victim.path("/storage/bookmarks/known-a"))
                .json(&json!({"payload": "owned"}))
                .send()
        });
        parse_ts(&r.must_header("X-Weave-Timestamp"));
        attacker.raw("GET", &victim.path("/storage/bookmarks")).send().expect_error(400, "0");
    }

    fn token_for_another_node_is_401(b: Backend) {
        let server = shared(b);
        let u = user_with(server, |s| s.node = "http://other.test".into());
        assert_auth_failure(&u.get("/info/collections"));
        let https = user_with(server, |s| s.node = "https://weft.test".into());
        assert_auth_failure(&https.get("/info/collections"));
    }

    fn node_is_compared_in_canonical_form(b: Backend) {
        let server = shared(b);
        for node in ["HTTP://WEFT.TEST", "http://weft.test:80", "http://weft.test/"] {
            let u = user_with(server, |s| s.node = node.into());
            u.get("/info/collections").expect(200);
        }
    }

    fn missing_or_foreign_authorization_is_401(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        assert_auth_failure(&u.req("GET", "/info/collections").unauthenticated().send());
        let bearer = format!("Bearer {}", u.creds.id);
        for value in [bearer.as_str(), "Basic dXNlcjpwYXNz", "Hawk", "Hawk ts=\"1\", nonce=\"x\", mac=\"y\"", "Hawkid=\"x\""] {
            let v = value.to_string();
            assert_auth_failure(&u.req("GET", "/storage/bookmarks").hawk(|h| h.authorization = Some(v)).send());
        }
        rejects_unchanged(&u, "bookmarks", 401, Some("0"), || {
            u.req("DELETE", "/storage/bookmarks").unauthenticated().send()
        });
    }

    fn mac_binds_method_target_host_and_port(b: Backend) {
        let server = shared(b);
        let u = seeded_user(server, "bookmarks");
        let port = server.port;
        assert_auth_failure(&u.req("GET", "/storage/bookmarks").hawk(|h| h.host = Some("localhost".into())).send());
        assert_auth_failure(&u.req("GET", "/storage/bookmarks").hawk(|h| h.port = Some(port + 1)).send());
        assert_auth_failure(&u.req("GET", "/storage/bookmarks").hawk(|h| h.method = Some("POST".into())).send());
        // Signing the path without the query that is actually sent.
        let bare = u.path("/storage/bookmarks");
        assert_auth_failure(&u.req("GET", "/storage/bookmarks?full=1").hawk(|h| h.target = Some(bare)).send());
        // The same request signed correctly works, including the query.
        u.get("/storage/bookmarks?full=1").expect(200);
    }

    fn hawk_attributes_in_any_order_with_ext(b: Backend) {
        let server = shared(b);
        let u = User::new(server);
        let target = u.path("/info/collections");
        let nonce = hawk::random_nonce();
        let ts = hawk::now_secs();
        let params = HawkParams {
            method: "GET",
            target: &target,
            host: "127.0.0.1",
            port: server.port,
            ts,
            nonce: &nonce,
            hash: None,
            ext: Some("some-app-data"),
        };
        let mac = hawk::mac(&u.creds.key, &params);
        let header = format!(
            "Hawk mac=\"{mac}\", ext=\"some-app-data\",nonce=\"{nonce}\",  ts=\"{ts}\", id=\"{}\"",
            u.creds.id
        );
        u.req("GET", "/info/collections").hawk(|h| h.authorization = Some(header)).send().expect(200);
    }

    fn clock_skew_within_52_weeks_is_accepted(b: Backend) {
        let u = User::new(shared(b));
        for offset in [-30 * 86_400, 30 * 86_400, -50 * 7 * 86_400, 50 * 7 * 86_400, -3600, 3600] {
            u.req("GET", "/info/collections").hawk(|h| h.ts_offset = offset).send().expect(200);
        }
    }

    fn clock_skew_beyond_configured_limit_is_401(b: Backend) {
        let server = TestServer::start(b, &[("WEFT_AUTH_MAX_CLOCK_SKEW_SECONDS", "600")]);
        let u = User::new(&server);
        u.req("GET", "/info/collections").hawk(|h| h.ts_offset = -300).send().expect(200);
        assert_auth_failure(&u.req("GET", "/info/collections").hawk(|h| h.ts_offset = 3600).send());
        assert_auth_failure(&u.req("GET", "/info/collections").hawk(|h| h.ts_offset = -3600).send());
    }

    fn payload_hash_is_verified_when_sent(b: Backend) {
        let u = seeded_user(shared(b), "bookmarks");
        // A correct hash over the real body is accepted.
        u.req("PUT", "/storage/bookmarks/hashed")
            .json(&json!({"payload": "with hash"}))
            .hawk(|h| h.hash = Some(None))
            .send()
            .expect(200);
        assert_eq!(u.get_json("/storage/bookmarks/hashed")["payload"], "with hash");
        // A hash of some other body (MAC consistent with that hash) is refused.
        let other = hawk::payload_hash("application/json", br#"{"payload":"innocent"}"#);
        rejects_unchanged(&u, "bookmarks", 401, Some("0"), || {
            u.req("PUT", "/storage/bookmarks/known-a")
                .json(&json!({"payload": "tampered"}))
                .hawk(|h| h.hash = Some(Some(other)))
                .send()
        });
        // No hash attribute at all: the hash line is empty, never a server-computed hash.
        u.put("/storage/bookmarks/nohash", &json!({"payload": "plain"})).expect(200);
    }
}
