//! A client of Weft's local accounts (local-accounts.md), shared by `tests/accounts.rs` and
//! `tests/accounts_attacks.rs`: the sign-in page's derivations (§4) reimplemented, FxA's Hawk
//! over the derived credentials, and calls to a real `weft serve` with accounts on.

use std::net::IpAddr;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{Backend, TestServer};

pub const ORIGIN: &str = "http://localhost:8000";
pub const CLIENT_ID: &str = "5882386c6d801776";
pub const OLDSYNC: &str = "https://identity.mozilla.com/apps/oldsync";
pub const NS: &str = "identity.mozilla.com/picl/v1/";

// ---- the page's derivations (local-accounts.md §4), reimplemented ----

pub fn hkdf(ikm: &[u8], info: &str, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    Hkdf::<Sha256>::new(None, ikm).expand(format!("{NS}{info}").as_bytes(), &mut out).unwrap();
    out
}

pub fn quick_stretch(email: &str, password: &str) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(
        password.as_bytes(),
        format!("{NS}quickStretch:{email}").as_bytes(),
        1000,
        &mut out,
    );
    out
}

/// (authPW, unwrapBKey).
pub fn credentials(email: &str, password: &str) -> (Vec<u8>, Vec<u8>) {
    let qs = quick_stretch(email, password);
    (hkdf(&qs, "authPW", 32), hkdf(&qs, "unwrapBkey", 32))
}

/// (tokenId hex, hmacKey, keyRequestKey) of a session or key-fetch token.
pub fn token_keys(token_hex: &str, kind: &str) -> (String, Vec<u8>, Vec<u8>) {
    let out = hkdf(&hex_decode(token_hex), kind, 96);
    (hex(&out[..32]), out[32..64].to_vec(), out[64..].to_vec())
}

/// (kA, wrapKb) from a key bundle, after checking its MAC.
pub fn unbundle(key_request_key: &[u8], bundle_hex: &str) -> (Vec<u8>, Vec<u8>) {
    let keys = hkdf(key_request_key, "account/keys", 96);
    let bundle = hex_decode(bundle_hex);
    let mut mac = Hmac::<Sha256>::new_from_slice(&keys[..32]).unwrap();
    mac.update(&bundle[..64]);
    mac.verify_slice(&bundle[64..]).expect("bundle MAC");
    let plain: Vec<u8> = bundle[..64].iter().zip(&keys[32..]).map(|(a, b)| a ^ b).collect();
    (plain[..32].to_vec(), plain[32..].to_vec())
}

/// (kSync, kXCS).
pub fn sync_keys(kb: &[u8]) -> (Vec<u8>, Vec<u8>) {
    (hkdf(kb, "oldsync", 64), Sha256::digest(kb)[..16].to_vec())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

// ---- a client of the account server ----

/// Which client a call comes from.
pub enum Caller {
    /// 127.0.0.1, this process's own client.
    Default,
    /// Another loopback address (Linux routes all of 127.0.0.0/8 to `lo`).
    Address(reqwest::blocking::Client),
    /// 127.0.0.1 with this `X-Forwarded-For` (for a server that trusts 127.0.0.1 as its proxy).
    ForwardedFor(String),
}

impl Caller {
    pub fn address(ip: &str) -> Caller {
        let ip: IpAddr = ip.parse().unwrap();
        Caller::Address(reqwest::blocking::Client::builder().local_address(ip).build().unwrap())
    }
}

pub struct Accounts {
    pub server: TestServer,
    pub data_dir: tempfile::TempDir,
    pub http: reqwest::blocking::Client,
}

/// What a request got back: status, FxA errno (0 on success), body.
pub struct Answer {
    pub status: u16,
    pub errno: i64,
    pub body: Value,
    pub retry_after: Option<String>,
}

impl Accounts {
    pub fn start(b: Backend, extra: &[(&str, &str)]) -> Accounts {
        let mut env = vec![
            ("WEFT_ACCOUNTS_ENABLED", "true"),
            ("WEFT_PUBLIC_URL", ORIGIN),
            // The cheapest cost the configuration allows: these tests are about protocol, not
            // about the stretch's price (measured by the Firefox test).
            ("WEFT_ACCOUNTS_SCRYPT_LOG_N", "10"),
        ];
        env.extend_from_slice(extra);
        Accounts {
            server: TestServer::start(b, &env),
            data_dir: tempfile::tempdir().unwrap(),
            http: reqwest::blocking::Client::new(),
        }
    }

    /// `weft account <args>` on the server's database; stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        let mut cmd = std::process::Command::new(super::server::weft_binary());
        for (name, _) in std::env::vars() {
            if name.starts_with("WEFT_") {
                cmd.env_remove(name);
            }
        }
        let out = cmd
            .arg("account")
            .args(args)
            .env("WEFT_DATABASE_URL", self.server.database_url())
            .env("WEFT_DATA_DIR", self.data_dir.path())
            .env("WEFT_ACCOUNTS_ENABLED", "true")
            .env("WEFT_PUBLIC_URL", ORIGIN)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "weft account {args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    pub fn invite(&self, extra: &[&str]) -> String {
        let out = self.admin(&[&["invite"], extra].concat());
        let code = out.split("invite=").nth(1).expect("an invite link").split(['&', '\n']).next().unwrap();
        assert!(out.starts_with(&format!("{ORIGIN}/?invite=")), "{out}");
        code.to_string()
    }

    pub fn call(&self, method: &str, path: &str, body: Option<&Value>, auth: Option<String>) -> Answer {
        self.call_from(&Caller::Default, method, path, body, auth)
    }

    /// A call as another client would make it: from another loopback address, or through a
    /// proxy that says who the client is.
    pub fn call_from(
        &self,
        from: &Caller,
        method: &str,
        path: &str,
        body: Option<&Value>,
        auth: Option<String>,
    ) -> Answer {
        let url = format!("{}{path}", self.server.base_url);
        let http = match from {
            Caller::Address(http) => http,
            _ => &self.http,
        };
        let mut req = http.request(method.parse().unwrap(), url);
        if let Caller::ForwardedFor(chain) = from {
            req = req.header("X-Forwarded-For", chain);
        }
        if let Some(body) = body {
            req = req.header("Content-Type", "application/json").body(body.to_string());
        }
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get("Retry-After").map(|v| v.to_str().unwrap().to_string());
        assert!(resp.headers().contains_key("Timestamp") || status == 404, "{path}: no Timestamp header");
        let body: Value = resp.json().unwrap_or(Value::Null);
        let errno = body.get("errno").and_then(Value::as_i64).unwrap_or(0);
        Answer { status, errno, body, retry_after }
    }

    /// Hawk over FxA's credentials: raw key bytes, host and port of the public origin.
    pub fn hawk(
        method: &str,
        path: &str,
        token_hex: &str,
        kind: &str,
        body: Option<&Value>,
        ts_offset: i64,
    ) -> String {
        let (id, key, _) = token_keys(token_hex, kind);
        let ts = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
            as i64
            + ts_offset)
            .to_string();
        let nonce = STANDARD.encode(rand_bytes());
        hawk_with(method, path, &id, &key, body, &ts, &nonce)
    }

    pub fn signed(&self, method: &str, path: &str, token: &str, kind: &str, body: Option<&Value>) -> Answer {
        self.call(method, path, body, Some(Self::hawk(method, path, token, kind, body, 0)))
    }

    /// Like the page, stretches with the lower-cased email and sends the email as typed.
    pub fn create(&self, email: &str, password: &str, invite: &str) -> Answer {
        let (auth_pw, _) = credentials(&email.to_lowercase(), password);
        let body = json!({"email": email, "authPW": hex(&auth_pw), "invite": invite});
        self.call("POST", "/v1/account/create?keys=true", Some(&body), None)
    }

    pub fn login(&self, email: &str, password: &str) -> Answer {
        self.login_from(&Caller::Default, email, password)
    }

    pub fn login_from(&self, from: &Caller, email: &str, password: &str) -> Answer {
        let (auth_pw, _) = credentials(&email.to_lowercase(), password);
        let body = json!({"email": email, "authPW": hex(&auth_pw)});
        self.call_from(from, "POST", "/v1/account/login?keys=true", Some(&body), None)
    }

    /// kB from a login answer: fetch the bundle with the keyFetchToken, unwrap with the password.
    pub fn kb(&self, session: &Value, email: &str, password: &str) -> Vec<u8> {
        let kft = session["keyFetchToken"].as_str().unwrap();
        let answer = self.signed("GET", "/v1/account/keys", kft, "keyFetchToken", None);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let (_, _, key_request_key) = token_keys(kft, "keyFetchToken");
        let (_, wrap_kb) = unbundle(&key_request_key, answer.body["bundle"].as_str().unwrap());
        let (_, unwrap_b_key) = credentials(email, password);
        wrap_kb.iter().zip(&unwrap_b_key).map(|(a, b)| a ^ b).collect()
    }

    /// An authorization code for `session` with the PKCE challenge of `verifier`.
    pub fn authorize(&self, session_token: &str, verifier: &str) -> String {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let body = json!({
            "client_id": CLIENT_ID, "state": "st4te", "scope": format!("{OLDSYNC} profile"),
            "access_type": "offline", "response_type": "code",
            "code_challenge": challenge, "code_challenge_method": "S256", "keys_jwe": "opaque.jwe",
        });
        let answer =
            self.signed("POST", "/v1/oauth/authorization", session_token, "sessionToken", Some(&body));
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["state"], "st4te");
        answer.body["code"].as_str().unwrap().to_string()
    }

    pub fn exchange(&self, code: &str, verifier: &str) -> Answer {
        let body = json!({"grant_type": "authorization_code", "client_id": CLIENT_ID, "code": code, "code_verifier": verifier});
        self.call("POST", "/v1/oauth/token", Some(&body), None)
    }
}

pub fn rand_bytes() -> [u8; 8] {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let n = nanos ^ u128::from(std::process::id()) << 64;
    Sha256::digest(n.to_le_bytes())[..8].try_into().unwrap()
}

pub fn hawk_with(
    method: &str,
    path: &str,
    id: &str,
    key: &[u8],
    body: Option<&Value>,
    ts: &str,
    nonce: &str,
) -> String {
    let hash = body.map(|b| {
        STANDARD.encode(Sha256::digest(format!("hawk.1.payload\napplication/json\n{b}\n").as_bytes()))
    });
    let normalized = format!(
        "hawk.1.header\n{ts}\n{nonce}\n{method}\n{path}\nlocalhost\n8000\n{}\n\n",
        hash.as_deref().unwrap_or("")
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(normalized.as_bytes());
    let mac = STANDARD.encode(mac.finalize().into_bytes());
    let hash = hash.map(|h| format!(", hash=\"{h}\"")).unwrap_or_default();
    format!("Hawk id=\"{id}\", ts=\"{ts}\", nonce=\"{nonce}\"{hash}, mac=\"{mac}\"")
}

#[track_caller]
pub fn refused(answer: &Answer, status: u16, errno: i64) {
    assert_eq!((answer.status, answer.errno), (status, errno), "{}", answer.body);
}
