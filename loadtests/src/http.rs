//! The HTTP side of a client task: one shared `reqwest` client (keep-alive connections reused
//! across tasks), and `Session`, which sends a request signed with a user's credentials, times
//! it, draws it from the phase's budget and records the outcome in the task's own `Stats`.
//! Writes go out as Firefox sends them: `Content-Type: text/plain` with a JSON body. A request
//! goes to the target, or to the node the user's token names (`--tokenserver`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};

use crate::auth::Credentials;
use crate::cli::Options;
use crate::cli::Scenario;
use crate::ledger::Ledger;
use crate::oauth::OauthKey;
use crate::payload::PayloadPool;
use crate::stats::{Budget, Stats};

/// Idle connections are dropped before the server's keep-alive (actix-web's default, 5 s)
/// closes them: a connection the server is closing, reused, fails with "connection reset" (seen
/// in the verify phase after a pause).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// Body bytes quoted in an error message.
const ERROR_BODY_CHARS: usize = 80;

/// Why a scenario step did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The phase's budget is spent: the task ends.
    Budget,
    /// This request failed (already counted as an error): the iteration ends, the task goes on.
    Failed,
    /// `--tokenserver`: the node answered 401: the user's sync ends, it fetches a new token.
    Unauthorized,
    /// `--tokenserver`: the node answered 503 with `Retry-After`: the user's sync ends and the
    /// user is left alone that long, as Firefox backs off.
    Held(Duration),
}

pub type Step<T> = Result<T, Stop>;

/// State every task of a run shares, read-only.
pub struct Shared {
    pub opts: Options,
    pub pool: PayloadPool,
    /// The test OAuth key, for the token scenario and `--tokenserver` only.
    pub oauth: Option<OauthKey>,
    client: reqwest::Client,
    base: String,
}

impl Shared {
    pub fn new(opts: Options) -> Result<Shared, String> {
        let client = reqwest::Client::builder()
            .timeout(opts.timeout)
            .pool_max_idle_per_host(opts.concurrency)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let base = opts.target.as_str().trim_end_matches('/').to_string();
        let pool = PayloadPool::new(opts.seed);
        let oauth =
            if opts.scenario == Scenario::Token || opts.tokenserver { Some(OauthKey::load()?) } else { None };
        Ok(Shared { opts, pool, oauth, client, base })
    }

    /// `path` on `origin`, or on the target when `None`.
    pub fn url(&self, origin: Option<&str>, path: &str) -> Result<Url, String> {
        let base = origin.unwrap_or(&self.base);
        Url::parse(&format!("{base}{path}")).map_err(|e| format!("bad URL {path:?}: {e}"))
    }
}

/// One HTTP response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    fn body_excerpt(&self) -> String {
        String::from_utf8_lossy(&self.body).chars().take(ERROR_BODY_CHARS).collect()
    }
}

/// A request before signing.
pub struct Request<'a> {
    pub method: Method,
    /// Path and query, starting with `/`, exactly as it goes on the request line.
    pub path: String,
    pub creds: Option<&'a Credentials>,
    pub body: Option<String>,
    pub headers: Vec<(&'static str, String)>,
}

impl<'a> Request<'a> {
    pub fn new(method: Method, path: String, creds: &'a Credentials) -> Request<'a> {
        Request { method, path, creds: Some(creds), body: None, headers: Vec::new() }
    }

    pub fn get(path: String, creds: &'a Credentials) -> Request<'a> {
        Request::new(Method::GET, path, creds)
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Request<'a> {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: String) -> Request<'a> {
        self.body = Some(body);
        self
    }

    pub fn unauthenticated(method: Method, path: String) -> Request<'a> {
        Request { method, path, creds: None, body: None, headers: Vec::new() }
    }
}

/// One client task: its RNG, its statistics, its share of the ledger.
pub struct Session {
    pub shared: Arc<Shared>,
    pub budget: Arc<Budget>,
    pub stats: Stats,
    pub ledger: Option<Ledger>,
    pub rng: StdRng,
}

impl Session {
    pub fn new(shared: Arc<Shared>, budget: Arc<Budget>, rng: StdRng) -> Session {
        let ledger = shared.opts.verify.then(Ledger::default);
        Session { shared, budget, stats: Stats::default(), ledger, rng }
    }

    /// Sends `req` (drawn from the budget), records latency and status under `kind`, and
    /// fails the step unless the status is one of `ok`. With `--tokenserver`, a 401 and a 503
    /// with `Retry-After` end the step as Firefox's sync ends: counted apart, not as errors.
    pub async fn call(&mut self, kind: &'static str, req: Request<'_>, ok: &[u16]) -> Step<Reply> {
        let uid = req.creds.map(|c| c.uid);
        let reply = self.send(kind, req).await?;
        if ok.contains(&reply.status) {
            Ok(reply)
        } else if self.shared.opts.tokenserver && reply.status == 401 {
            self.stats.unauthorized += 1;
            Err(Stop::Unauthorized)
        } else if let (true, 503, Some(seconds)) = (
            self.shared.opts.tokenserver,
            reply.status,
            reply.header("Retry-After").and_then(|v| v.trim().parse::<u64>().ok()),
        ) {
            self.stats.held(uid);
            Err(Stop::Held(Duration::from_secs(seconds)))
        } else {
            let message = format!("unexpected status {} (body {:?})", reply.status, reply.body_excerpt());
            self.stats.error(kind, message);
            Err(Stop::Failed)
        }
    }

    /// Sends `req`, recording it; any HTTP status is a reply.
    pub async fn send(&mut self, kind: &'static str, req: Request<'_>) -> Step<Reply> {
        if !self.budget.take() {
            return Err(Stop::Budget);
        }
        let origin = req.creds.and_then(|c| c.origin());
        let url = match self.shared.url(origin, &req.path) {
            Ok(url) => url,
            Err(e) => {
                self.stats.error(kind, e);
                return Err(Stop::Failed);
            }
        };
        let mut builder = self.shared.client.request(req.method.clone(), url.clone());
        if let Some(creds) = req.creds {
            let nonce: [u8; 6] = self.rng.gen();
            builder = builder.header("Authorization", creds.authorization(req.method.as_str(), &url, &nonce));
        }
        for (name, value) in req.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = req.body {
            builder = builder.header("Content-Type", "text/plain").body(body);
        }
        let start = Instant::now();
        let result = async {
            let response = builder.send().await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.bytes().await?.to_vec();
            Ok::<_, reqwest::Error>(Reply { status, headers, body })
        }
        .await;
        let latency = start.elapsed();
        match result {
            Ok(reply) => {
                self.stats.record(kind, latency, Some(reply.status));
                if let (Some(creds), Some(origin), true) = (req.creds, origin, reply.status < 400) {
                    self.stats.served(creds.uid, origin, start);
                }
                Ok(reply)
            }
            Err(e) => {
                self.stats.record(kind, latency, None);
                self.stats.error(kind, transport_error(&e));
                Err(Stop::Failed)
            }
        }
    }
}

/// A transport failure in words, without the URL (so equal failures count as one kind).
fn transport_error(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    let mut message = what.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}
