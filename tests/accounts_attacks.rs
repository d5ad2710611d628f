//! Attacks on local accounts by a client with no account (issue 20), each against a real
//! `weft serve` on loopback with bounded counts, each showing the attack fails with the numbers
//! docs/accounts.md states:
//! - a flood of anonymous requests from the address every client shares (a proxy Weft does not
//!   trust) leaves another user's Hawk-signed token minting at 200; spoofed `X-Forwarded-For`
//!   hops behind a trusted proxy do not escape the flood's bucket;
//! - wrong passwords for a victim's email from one address leave the victim's own sign-in at 200;
//! - junk Hawk headers (random ids and nonces, and the victim's id with forged MACs) leave the
//!   server's RSS within a bound;
//! - 20 concurrent sign-ins at the default cost and settings get 200 or 503 + Retry-After within
//!   the deadline while another user's `GET /v1/account/devices` answers in under a second;
//! - a disabled account's next storage request after one token lifetime is 401, and its old
//!   access token gets no new one;
//! - case and accent variants of an email reach one account and one bucket (MariaDB too).
//!
//! Each prints its figures (`cargo test … -- --nocapture`).

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::accounts::*;
use common::*;
use serde_json::{json, Value};

/// The flood and the timed sign-ins never run at once (the test harness runs tests in
/// parallel): each would measure the other's load rather than the server's behaviour.
static LOADED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    LOADED.lock().unwrap_or_else(|e| e.into_inner())
}

/// A user signed in: email, password, session token.
struct SignedIn {
    email: String,
    password: String,
    session: String,
}

fn sign_up(a: &Accounts, email: &str, password: &str) -> SignedIn {
    let created = a.create(email, password, &a.invite(&[]));
    assert_eq!(created.status, 200, "{}", created.body);
    SignedIn {
        email: email.into(),
        password: password.into(),
        session: created.body["sessionToken"].as_str().unwrap().into(),
    }
}

/// Firefox's hourly access-token request: the `fxa-credentials` grant, Hawk-signed.
fn mint_token(a: &Accounts, user: &SignedIn) -> Answer {
    let body =
        json!({"grant_type": "fxa-credentials", "client_id": CLIENT_ID, "scope": OLDSYNC, "ttl": 3600});
    a.signed("POST", "/v1/oauth/token", &user.session, "sessionToken", Some(&body))
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_flood_from_a_shared_address_leaves_token_minting_working() {
    // No trusted proxy: every client below comes from 127.0.0.1, as all clients do behind a
    // TLS proxy that Weft is not told to trust.
    let a = Accounts::start(Backend::Sqlite, &[]);
    let user = sign_up(&a, "legit@example.org", "the legit user's password");
    let mut first_429 = None;
    for i in 0..100 {
        let answer = a.login(&format!("nobody{i}@example.org"), "a guess");
        if answer.status == 429 && first_429.is_none() {
            first_429 = Some(i + 1);
        }
    }
    let minted = mint_token(&a, &user);
    println!(
        "shared-address flood: first 429 at anonymous request {first_429:?}; legit token minting {}",
        minted.status
    );
    // The sign-up was the address's first anonymous request of the window.
    assert_eq!(first_429, Some(60), "the address's 60 anonymous requests per window, then 429");
    assert_eq!(minted.status, 200, "a valid session is never limited by its address: {}", minted.body);

    // Behind a trusted proxy, the hops a client writes itself do not give it new buckets.
    let a = Accounts::start(Backend::Sqlite, &[("WEFT_TRUST_PROXY_HEADERS", "127.0.0.1")]);
    let user = sign_up(&a, "legit@example.org", "the legit user's password");
    let mut limited = 0;
    for i in 0..100 {
        let spoofed = Caller::ForwardedFor(format!("10.9.{}.{}, 198.51.100.66", i / 250, i % 250));
        limited += usize::from(a.login_from(&spoofed, "nobody@example.org", "a guess").status == 429);
    }
    let other_client = Caller::ForwardedFor("198.51.100.77".into());
    let login = a.login_from(&other_client, &user.email, &user.password);
    println!(
        "spoofed hops behind a trusted proxy: {limited}/100 limited; another client's sign-in {}",
        login.status
    );
    assert_eq!(limited, 40, "the spoofed hops all land in the real client's bucket");
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(mint_token(&a, &user).status, 200);
}

#[test]
fn guessing_a_victims_password_does_not_lock_the_victim_out() {
    let a = Accounts::start(Backend::Sqlite, &[]);
    let victim = sign_up(&a, "victim@example.org", "the victim's password");
    let attacker = Caller::address("127.0.0.2");
    let answers: Vec<u16> =
        (0..20).map(|i| a.login_from(&attacker, &victim.email, &format!("guess {i}")).status).collect();
    let own = a.login(&victim.email, &victim.password);
    let wrong = answers.iter().filter(|s| **s == 400).count();
    println!(
        "victim lock-out: attacker's 20 guesses: {wrong} answered 103, then 429; victim's sign-in {}",
        own.status
    );
    assert_eq!(wrong, 5, "5 wrong passwords per (account, address) and window");
    assert!(answers[5..].iter().all(|s| *s == 429), "{answers:?}");
    assert_eq!(own.status, 200, "the victim signs in from its own address: {}", own.body);
    // The attacker's address stays limited even with the right password (no oracle).
    assert_eq!(a.login_from(&attacker, &victim.email, &victim.password).status, 429);
}

/// Junk Hawk headers: requests a client with no account can send. A third name the victim's
/// real session id with a forged MAC (whose nonces must not be kept), a third random ids, a
/// third random ids with 4 KiB nonces. 12,000 rather than the 200,000 to keep CI short:
/// what the flood could leave behind grows with the count, so a bound that holds with no growth
/// per request at 12,000 holds at 200,000 (docs/accounts.md gives the arithmetic).
const JUNK_REQUESTS: usize = 12_000;
const JUNK_THREADS: usize = 4;
/// What the server may grow by while answering them.
const JUNK_RSS_BOUND_KIB: u64 = 16 * 1024;

#[test]
fn junk_hawk_headers_leave_memory_bounded() {
    let _alone = alone();
    let a = Accounts::start(Backend::Sqlite, &[]);
    let victim = sign_up(&a, "victim@example.org", "the victim's password");
    let (victim_id, _, _) = token_keys(&victim.session, "sessionToken");
    let url = format!("{}/v1/session/status", a.server.base_url);
    // Warm up: the server's pools and buffers reach their working size first.
    let http = reqwest::blocking::Client::new();
    for _ in 0..200 {
        http.get(&url).header("Authorization", junk(&victim_id, 0)).send().unwrap();
    }
    let before = rss_kib(a.server.pid());
    let started = Instant::now();
    let statuses: Vec<Vec<u16>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..JUNK_THREADS)
            .map(|t| {
                let (url, victim_id) = (&url, &victim_id);
                s.spawn(move || {
                    let http = reqwest::blocking::Client::new();
                    (0..JUNK_REQUESTS / JUNK_THREADS)
                        .map(|i| {
                            let header = junk(victim_id, t * JUNK_REQUESTS + i);
                            http.get(url).header("Authorization", header).send().unwrap().status().as_u16()
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let after = rss_kib(a.server.pid());
    let statuses: Vec<u16> = statuses.concat();
    println!(
        "junk Hawk flood: {} requests in {:.1} s; RSS {before} KiB -> {after} KiB (+{} KiB); {} answered 401, {} 429",
        statuses.len(),
        started.elapsed().as_secs_f64(),
        after.saturating_sub(before),
        statuses.iter().filter(|s| **s == 401).count(),
        statuses.iter().filter(|s| **s == 429).count(),
    );
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "junk is refused");
    assert!(after <= before + JUNK_RSS_BOUND_KIB, "RSS grew by {} KiB", after - before);
    // The victim's session is untouched: no nonce of the flood blocks it, no limit hit it.
    assert_eq!(a.signed("GET", "/v1/session/status", &victim.session, "sessionToken", None).status, 200);
}

/// The `i`-th junk header: the victim's id (`i % 3 == 0`) or a random one, a fresh nonce (of
/// 4 KiB when `i % 3 == 2`), a current `ts`, a MAC that cannot verify.
fn junk(victim_id: &str, i: usize) -> String {
    let noise = |n: usize| hex(&sha2_bytes(&format!("{i}-{n}")));
    let id = if i.is_multiple_of(3) { victim_id.to_string() } else { noise(0) };
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let nonce = if i % 3 == 2 { noise(1).repeat(64) } else { noise(1)[..12].to_string() };
    let mac = URL_SAFE_NO_PAD.encode(sha2_bytes(&noise(2))).replace(['-', '_'], "A") + "=";
    format!("Hawk id=\"{id}\", ts=\"{ts}\", nonce=\"{nonce}\", mac=\"{mac}\"")
}

fn sha2_bytes(text: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).to_vec()
}

#[test]
fn concurrent_sign_ins_get_an_answer_in_time_and_do_not_stall_other_users() {
    let _alone = alone();
    // The default cost (scrypt N = 2^16) and the default lanes and deadline.
    let a = Accounts::start(Backend::Sqlite, &[("WEFT_ACCOUNTS_SCRYPT_LOG_N", "16")]);
    let signer = sign_up(&a, "signer@example.org", "the signer's password");
    let other = sign_up(&a, "other@example.org", "the other user's password");
    let started = Instant::now();
    assert_eq!(a.login(&signer.email, &signer.password).status, 200);
    // One sign-in alone: one stretch on this machine as loaded as it is now.
    let one_stretch = started.elapsed();
    const DEADLINE: Duration = Duration::from_secs(5);
    // A stretch may start just before the deadline: an answer comes within the deadline plus
    // that stretch (slower while the other lane stretches too) and a second of slack.
    let answer_bound = DEADLINE + one_stretch * 2 + Duration::from_secs(1);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (sign_ins, devices) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                s.spawn(|| {
                    let started = Instant::now();
                    let answer = a.login(&signer.email, &signer.password);
                    (answer.status, answer.errno, answer.retry_after, started.elapsed())
                })
            })
            .collect();
        let watcher = s.spawn(|| {
            let mut latencies = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let started = Instant::now();
                let answer = a.signed("GET", "/v1/account/devices", &other.session, "sessionToken", None);
                assert_eq!(answer.status, 200, "{}", answer.body);
                latencies.push(started.elapsed());
                std::thread::sleep(Duration::from_millis(100));
            }
            latencies
        });
        let sign_ins: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        (sign_ins, watcher.join().unwrap())
    });
    let ok = sign_ins.iter().filter(|r| r.0 == 200).count();
    let slowest = sign_ins.iter().map(|r| r.3).max().unwrap();
    let mut sorted = devices.clone();
    sorted.sort();
    let devices_max = sorted.last().copied().unwrap_or_default();
    let devices_median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
    println!(
        "20 concurrent sign-ins (one stretch {:.2} s): {ok} × 200, {} × 503; slowest answer {:.2} s; other user's devices: {} calls, median {:.0} ms, slowest {:.0} ms",
        one_stretch.as_secs_f64(),
        sign_ins.len() - ok,
        slowest.as_secs_f64(),
        devices.len(),
        devices_median.as_secs_f64() * 1000.0,
        devices_max.as_secs_f64() * 1000.0
    );
    for (status, errno, retry_after, took) in &sign_ins {
        assert!(
            *status == 200 || (*status == 503 && *errno == 201 && retry_after.is_some()),
            "{status} {errno} {retry_after:?}"
        );
        assert!(*took < answer_bound, "an answer took {took:?}");
    }
    assert!(ok >= 1, "sign-ins get through");
    assert!(!devices.is_empty() && devices_max < Duration::from_secs(1), "devices took {devices_max:?}");
}

#[test]
fn a_disabled_account_loses_storage_within_one_token_lifetime() {
    const TOKEN_LIFETIME: u64 = 2;
    let a = Accounts::start(Backend::Sqlite, &[("WEFT_TOKENSERVER_TOKEN_DURATION_SECONDS", "2")]);
    let user = sign_up(&a, "leaving@example.org", "a password");
    let kid_time = {
        let body = json!({"client_id": CLIENT_ID, "scope": OLDSYNC});
        let answer =
            a.signed("POST", "/v1/account/scoped-key-data", &user.session, "sessionToken", Some(&body));
        answer.body[OLDSYNC]["keyRotationTimestamp"].as_i64().unwrap()
    };
    let access_token = mint_token(&a, &user).body["access_token"].as_str().unwrap().to_string();
    let node_token = |bearer: &str| {
        let resp = a
            .http
            .get(format!("{}/1.0/sync/1.5", a.server.base_url))
            .bearer_auth(bearer)
            .header("X-KeyID", format!("{kid_time:013}-qqo"))
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().unwrap_or(Value::Null))
    };
    let (status, token) = node_token(&access_token);
    assert_eq!(status, 200, "{token}");
    let storage = |token: &Value| {
        let endpoint = token["api_endpoint"].as_str().unwrap();
        let uid: u64 = endpoint.rsplit_once("/1.5/").unwrap().1.parse().unwrap();
        let user = User {
            uid,
            creds: Credentials {
                id: token["id"].as_str().unwrap().into(),
                key: token["key"].as_str().unwrap().into(),
            },
            base_url: a.server.base_url.clone(),
            port: 8000,
        };
        // Not info/collections, which an expired token still opens for a grace period
        // (`auth.expired_token_grace_seconds`): it shows timestamps, never records.
        user.req("GET", "/storage/bookmarks")
            .header("Host", "localhost:8000")
            .hawk(|h| h.host = Some("localhost".into()))
            .send()
            .status
    };
    assert_eq!(storage(&token), 200);

    a.admin(&["disable", &user.email]);
    std::thread::sleep(Duration::from_secs(TOKEN_LIFETIME) + Duration::from_millis(1500));
    let after_lifetime = storage(&token);
    let (again, _) = node_token(&access_token);
    println!("disabled account: storage after one token lifetime {after_lifetime}; new node token with the old access token {again}");
    assert_eq!(after_lifetime, 401, "the node token has expired");
    assert_eq!(again, 401, "the tokenserver's generation moved past the old access token");
}

backend_tests! {
    fn email_variants_are_one_account_and_one_bucket(b: Backend) {
        let a = Accounts::start(b, &[]);
        let email = "andré@example.org";
        let password = "andré's password";
        let created = a.create(email, password, &a.invite(&[]));
        assert_eq!(created.status, 200, "{}", created.body);
        let uid = created.body["uid"].as_str().unwrap().to_string();
        // The page stretches with the one form; the body carries the email as typed.
        let login = |typed: &str, password: &str| {
            let (auth_pw, _) = credentials(email, password);
            a.call("POST", "/v1/account/login", Some(&json!({"email": typed, "authPW": hex(&auth_pw)})), None)
        };
        for variant in ["ANDRÉ@EXAMPLE.ORG", "andre\u{301}@example.org", " Andre\u{301}@Example.org"] {
            let answer = login(variant, password);
            assert_eq!((answer.status, answer.body["uid"].as_str()), (200, Some(uid.as_str())), "{variant:?}: {}", answer.body);
        }
        let unaccented = login("andre@example.org", password);
        assert_eq!((unaccented.status, unaccented.errno), (400, 102), "an accent is part of the address");
        let variants = ["andré@example.org", "ANDRÉ@example.org", "andre\u{301}@example.org", "ANDRE\u{301}@EXAMPLE.ORG", "André@Example.org"];
        let answers: Vec<(u16, i64)> = variants.iter().chain(&["aNDRé@example.org"]).map(|v| {
            let answer = login(v, "a wrong password");
            (answer.status, answer.errno)
        }).collect();
        println!("{b:?}: wrong passwords through 6 spellings of one email: {answers:?}");
        assert!(answers[..5].iter().all(|a| *a == (400, 103)), "{answers:?}");
        assert_eq!(answers[5], (429, 114), "every spelling counts in the one bucket");
    }
}
