//! The HTTP side of the harness: `User` (a random uid with a freshly minted token), a request
//! builder `Req` that signs every request with Hawk over exactly the request-target that is sent,
//! and `Resp` (status, headers, body text).

use std::sync::OnceLock;
use std::time::Duration;

use rand::Rng;
use serde_json::Value;

use super::hawk::{self, HawkParams};
use super::server::{TestServer, PUBLIC_URL};

static HTTP: OnceLock<reqwest::blocking::Client> = OnceLock::new();

/// One client for the whole test binary: no proxies (only 127.0.0.1 is ever contacted), no
/// redirects followed, bounded time per request. Idle connections are dropped after 2 s, before
/// the server's 5 s keep-alive closes them: a request sent on a connection the server is closing
/// at that instant fails with "error sending request" (seen on a loaded machine), a race of
/// the test client, not of the server.
pub fn http() -> &'static reqwest::blocking::Client {
    HTTP.get_or_init(|| {
        reqwest::blocking::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(64)
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .expect("HTTP client")
    })
}

/// What goes into a token; `User::new` fills in valid defaults and tests change single fields.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub uid: u64,
    pub node: String,
    /// Seconds since the epoch; may be in the past for expiry tests.
    pub expires: i64,
    pub salt: String,
    pub fxa_uid: String,
    pub fxa_kid: String,
    /// Secret the token is signed with (and its Hawk key derived from).
    pub secret: String,
    /// Exact payload text to sign instead of the compact JSON built from the fields above.
    pub raw_payload: Option<String>,
}

impl TokenSpec {
    pub fn new(server: &TestServer) -> TokenSpec {
        TokenSpec {
            uid: random_uid(),
            node: PUBLIC_URL.to_string(),
            expires: hawk::now_secs() + 3600,
            salt: hawk::random_salt(),
            fxa_uid: format!("{:032x}", rand::random::<u128>()),
            fxa_kid: "0000000001234-qqo".to_string(),
            secret: server.master_secret.clone(),
            raw_payload: None,
        }
    }

    pub fn payload(&self) -> String {
        match &self.raw_payload {
            Some(p) => p.clone(),
            None => serde_json::json!({
                "uid": self.uid,
                "node": self.node,
                "expires": self.expires,
                "salt": self.salt,
                "fxa_uid": self.fxa_uid,
                "fxa_kid": self.fxa_kid,
            })
            .to_string(),
        }
    }

    /// (token, hawk key) as a tokenserver would hand them to a client.
    pub fn credentials(&self) -> Credentials {
        let id = hawk::mint_token(&self.secret, &self.payload());
        let key = hawk::derived_key(&self.secret, &self.salt, &id);
        Credentials { id, key }
    }
}

/// A uid that fits REF's `[0-9]{1,10}` route and is practically unique per test.
pub fn random_uid() -> u64 {
    rand::thread_rng().gen_range(1_000_000..4_000_000_000)
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub id: String,
    pub key: String,
}

/// A storage user: uid, credentials and the server it talks to.
#[derive(Debug, Clone)]
pub struct User {
    pub uid: u64,
    pub creds: Credentials,
    pub base_url: String,
    pub port: u16,
}

impl User {
    /// A fresh random uid with a valid one-hour token for `server`.
    pub fn new(server: &TestServer) -> User {
        Self::with_token(server, &TokenSpec::new(server))
    }

    /// A user whose requests carry the token described by `spec` (the URL uid is `spec.uid`).
    pub fn with_token(server: &TestServer, spec: &TokenSpec) -> User {
        User {
            uid: spec.uid,
            creds: spec.credentials(),
            base_url: server.base_url.clone(),
            port: server.port,
        }
    }

    /// `/1.5/{uid}` + `rel`.
    pub fn path(&self, rel: &str) -> String {
        format!("/1.5/{}{}", self.uid, rel)
    }

    /// A signed request to `/1.5/{uid}{rel}`.
    pub fn req(&self, method: &str, rel: &str) -> Req {
        self.raw(method, &self.path(rel))
    }

    /// A signed request to an arbitrary absolute path (another uid, unknown routes…).
    pub fn raw(&self, method: &str, target: &str) -> Req {
        Req {
            base_url: self.base_url.clone(),
            port: self.port,
            method: method.to_string(),
            target: target.to_string(),
            creds: Some(self.creds.clone()),
            headers: vec![],
            body: None,
            hawk: HawkOptions::default(),
        }
    }

    pub fn get(&self, rel: &str) -> Resp {
        self.req("GET", rel).send()
    }

    pub fn delete(&self, rel: &str) -> Resp {
        self.req("DELETE", rel).send()
    }

    pub fn put(&self, rel: &str, body: &Value) -> Resp {
        self.req("PUT", rel).json(body).send()
    }

    pub fn post(&self, rel: &str, body: &Value) -> Resp {
        self.req("POST", rel).json(body).send()
    }

    /// GET that must succeed, parsed as JSON.
    pub fn get_json(&self, rel: &str) -> Value {
        self.get(rel).expect(200).json()
    }
}

/// How the Hawk header is built; the defaults produce a valid signature.
#[derive(Debug, Clone, Default)]
pub struct HawkOptions {
    pub ts_offset: i64,
    /// `Some(None)`: send a hash of the real body; `Some(Some(h))`: send `h`.
    pub hash: Option<Option<String>>,
    pub ext: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub method: Option<String>,
    pub target: Option<String>,
    pub mac: Option<String>,
    /// Replace the whole `Authorization` value.
    pub authorization: Option<String>,
}

pub struct Req {
    base_url: String,
    port: u16,
    method: String,
    target: String,
    creds: Option<Credentials>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    pub hawk: HawkOptions,
}

impl Req {
    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// A raw body with the given Content-Type (`None`: no Content-Type header at all).
    pub fn body(mut self, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Req {
        if let Some(ct) = content_type {
            self.headers.push(("Content-Type".to_string(), ct.to_string()));
        }
        self.body = Some(body.into());
        self
    }

    pub fn json(self, body: &Value) -> Req {
        self.body(Some("application/json"), body.to_string())
    }

    /// Send without any `Authorization` header.
    pub fn unauthenticated(mut self) -> Req {
        self.creds = None;
        self
    }

    pub fn creds(mut self, creds: Credentials) -> Req {
        self.creds = Some(creds);
        self
    }

    pub fn hawk(mut self, f: impl FnOnce(&mut HawkOptions)) -> Req {
        f(&mut self.hawk);
        self
    }

    pub fn send(self) -> Resp {
        let what = format!("{} {}", self.method, self.target);
        self.try_send().unwrap_or_else(|e| panic!("{what} failed: {e}"))
    }

    /// Like `send`, but a request the server never answered (connection refused or reset, as
    /// when it is killed) is an `Err` instead of a panic.
    pub fn try_send(self) -> Result<Resp, String> {
        let url = reqwest::Url::parse(&format!("{}{}", self.base_url, self.target))
            .unwrap_or_else(|e| panic!("bad test URL {}: {e}", self.target));
        // The request-target signed is the one the URL serialises to, i.e. what goes on the wire.
        let sent_target = match url.query() {
            Some(q) => format!("{}?{}", url.path(), q),
            None => url.path().to_string(),
        };
        let method = reqwest::Method::from_bytes(self.method.as_bytes()).expect("HTTP method");
        let mut rb = http().request(method, url.clone());
        for (k, v) in &self.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let content_type = self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if let Some(auth) = &self.hawk.authorization {
            rb = rb.header("Authorization", auth.as_str());
        } else if let Some(creds) = &self.creds {
            let body = self.body.clone().unwrap_or_default();
            let hash = match &self.hawk.hash {
                None => None,
                Some(None) => Some(hawk::payload_hash(&content_type, &body)),
                Some(Some(h)) => Some(h.clone()),
            };
            let nonce = hawk::random_nonce();
            let params = HawkParams {
                method: self.hawk.method.as_deref().unwrap_or(&self.method),
                target: self.hawk.target.as_deref().unwrap_or(&sent_target),
                host: self.hawk.host.as_deref().unwrap_or("127.0.0.1"),
                port: self.hawk.port.unwrap_or(self.port),
                ts: hawk::now_secs() + self.hawk.ts_offset,
                nonce: &nonce,
                hash: hash.as_deref(),
                ext: self.hawk.ext.as_deref(),
            };
            let mut value = hawk::authorization(&creds.id, &creds.key, &params);
            if let Some(mac) = &self.hawk.mac {
                let good = hawk::mac(&creds.key, &params);
                value = value.replace(&good, mac);
            }
            rb = rb.header("Authorization", value);
        }
        if let Some(body) = self.body {
            rb = rb.body(body);
        }
        let resp = rb.send().map_err(with_causes)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().map_err(with_causes)?;
        Ok(Resp { status, headers, body, what: format!("{} {}", self.method, sent_target) })
    }
}

/// The error and every cause under it: reqwest's own message ("error sending request") says
/// nothing of whether the connection was refused, reset or timed out.
fn with_causes(err: reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// A finished response; the body is kept as text so tests can compare bytes.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
    /// `METHOD target`, for assertion messages.
    pub what: String,
}

impl Resp {
    /// Asserts the status, showing the request and body otherwise; returns self for chaining.
    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(
            self.status, status,
            "{}: expected {status}, got {} with body {:?}",
            self.what, self.status, self.body
        );
        self
    }

    /// Asserts status and exact body (e.g. an error code such as `8`).
    #[track_caller]
    pub fn expect_error(self, status: u16, body: &str) -> Resp {
        let r = self.expect(status);
        assert_eq!(r.body.trim(), body, "{}: error body", r.what);
        r
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().expect("ASCII header").to_string())
    }

    #[track_caller]
    pub fn must_header(&self, name: &str) -> String {
        self.header(name)
            .unwrap_or_else(|| panic!("{}: no {name} header; headers {:?}", self.what, self.headers))
    }

    /// A timestamp header (`X-Last-Modified`, `X-Weave-Timestamp`) in ms, checking its format.
    #[track_caller]
    pub fn ts_header(&self, name: &str) -> i64 {
        let v = self.must_header(name);
        super::checks::parse_ts(&v)
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {:?}", self.what, self.body))
    }
}
