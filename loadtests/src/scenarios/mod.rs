//! The scenarios over HTTP: the per-user client state (`User`), the storage steps they share
//! (`info/collections`, POSTs and batch uploads, item PUTs, with the acknowledged writes going
//! to the ledger), and the dispatch from a scenario to its setup and iteration. Each scenario's
//! own module says what one iteration does.

pub mod launch;
pub mod read;
pub mod sync;
pub mod token;
pub mod write;

use std::collections::HashMap;
use std::time::Instant;

use reqwest::Method;
use weft_schema::SyncTimestamp;

use crate::auth::Credentials;
use crate::cli::Scenario;
use crate::http::{Reply, Request, Session, Step, Stop};
use crate::payload::{body, Bso};

/// A user as one Firefox profile knows it: credentials and the timestamps it last saw.
pub struct User {
    /// The user's number in the population (`--first-uid` onwards): its uid in minted tokens,
    /// its identity towards the tokenserver with `--tokenserver` (which may give another uid:
    /// `creds.uid` is the one in storage URLs).
    pub uid: u64,
    pub creds: Credentials,
    /// `X-Last-Modified` of the last `info/collections` (or of our own last write).
    pub storage_ts: Option<String>,
    /// Collection → last-modified, in the server's two-decimal text.
    pub collections: HashMap<String, String>,
    /// `newer=` values that select part of the seeded history (read scenario).
    pub read_markers: Vec<String>,
    /// OAuth material of the token scenario and of `--tokenserver`.
    pub oauth: Option<token::OauthUser>,
    /// A node's `Retry-After`: the user does not sync before this.
    pub not_before: Option<Instant>,
}

impl User {
    pub fn new(uid: u64, creds: Credentials) -> User {
        User {
            uid,
            creds,
            storage_ts: None,
            collections: HashMap::new(),
            read_markers: Vec::new(),
            oauth: None,
            not_before: None,
        }
    }

    /// Whether a tokenserver has issued this user a token (only those name a node).
    pub fn has_token(&self) -> bool {
        self.creds.origin().is_some()
    }

    /// Whether a node asked this user to come back later, and that time has not come.
    pub fn backing_off(&self) -> bool {
        self.not_before.is_some_and(|at| Instant::now() < at)
    }

    /// The collection's last-modified as Firefox sends it in `X-If-Unmodified-Since`; `0`
    /// when the collection does not exist yet.
    pub fn collection_ts(&self, collection: &str) -> String {
        self.collections.get(collection).cloned().unwrap_or_else(|| "0".to_string())
    }

    /// After one of our writes at `ts`: both the collection and the storage moved there.
    fn wrote(&mut self, collection: &str, ts: &str) {
        self.collections.insert(collection.to_string(), ts.to_string());
        self.storage_ts = Some(ts.to_string());
    }

    fn path(&self, rest: &str) -> String {
        format!("/1.5/{}/{rest}", self.creds.uid)
    }
}

/// One-time work per user before the measured phase (discovering state, seeding); with
/// `--tokenserver` it starts with the user's first token.
pub async fn setup(scenario: Scenario, s: &mut Session, user: &mut User) -> Step<()> {
    if s.shared.opts.tokenserver {
        token::fetch_token(s, user).await?;
    }
    match scenario {
        Scenario::Sync => sync::setup(s, user).await,
        Scenario::Read => read::setup(s, user).await,
        Scenario::Write | Scenario::Launch => info_collections(s, user, false).await,
        Scenario::Token => token::setup(s, user).await,
    }
}

/// One measured iteration for one user.
pub async fn iteration(scenario: Scenario, s: &mut Session, user: &mut User) -> Step<()> {
    match scenario {
        Scenario::Sync => sync::iteration(s, user).await,
        Scenario::Read => read::iteration(s, user).await,
        Scenario::Write => write::iteration(s, user).await,
        Scenario::Launch => launch::iteration(s, user).await,
        Scenario::Token => token::iteration(s, user).await,
    }
}

/// `GET info/collections`, conditional on the last storage timestamp seen when asked to;
/// a 200 refreshes what the user knows.
pub async fn info_collections(s: &mut Session, user: &mut User, conditional: bool) -> Step<()> {
    let mut req = Request::get(user.path("info/collections"), &user.creds);
    let kind = match (&user.storage_ts, conditional) {
        (Some(ts), true) => {
            req = req.header("X-If-Modified-Since", ts.clone());
            "GET info/collections (conditional)"
        }
        _ => "GET info/collections",
    };
    let reply = s.call(kind, req, &[200, 304]).await?;
    if reply.status == 200 {
        let Some(serde_json::Value::Object(map)) = reply.json() else {
            s.stats.error(kind, "body is not a JSON object".into());
            return Err(Stop::Failed);
        };
        user.collections =
            map.into_iter().filter_map(|(name, ts)| ts.as_f64().map(|t| (name, format!("{t:.2}")))).collect();
        user.storage_ts = reply.header("X-Last-Modified").map(str::to_string);
    }
    Ok(())
}

/// The write timestamp of a successful write reply, in milliseconds.
fn write_ts(s: &mut Session, kind: &'static str, reply: &Reply) -> Step<(String, i64)> {
    let text = reply.header("X-Last-Modified").unwrap_or_default().to_string();
    match SyncTimestamp::parse(&text) {
        Some(ts) => Ok((text, ts.as_millis())),
        None => {
            s.stats.error(kind, format!("write reply without a valid X-Last-Modified ({text:?})"));
            Err(Stop::Failed)
        }
    }
}

/// Checks a POST reply's `success` / `failed`: every sent id must be in `success`.
fn check_post_reply(s: &mut Session, kind: &'static str, reply: &Reply, sent: &[Bso]) -> Step<()> {
    let Some(json) = reply.json() else {
        s.stats.error(kind, "POST reply is not JSON".into());
        return Err(Stop::Failed);
    };
    let failed = json.get("failed").and_then(|f| f.as_object()).map_or(0, |f| f.len());
    let succeeded = json.get("success").and_then(|f| f.as_array()).map_or(0, |a| a.len());
    if failed > 0 || succeeded != sent.len() {
        let first = json.get("failed").map(|f| f.to_string().chars().take(80).collect::<String>());
        s.stats.error(
            kind,
            format!("{succeeded} of {} records accepted, {failed} failed (first: {first:?})", sent.len()),
        );
        return Err(Stop::Failed);
    }
    Ok(())
}

fn acknowledge(s: &mut Session, uid: u64, collection: &'static str, records: &[Bso], modified_ms: i64) {
    s.stats.records_written += records.len() as u64;
    if let Some(ledger) = s.ledger.as_mut() {
        for r in records {
            ledger.ack(uid, collection, &r.id, modified_ms, &r.payload);
        }
    }
}

/// Names of the requests of one batch upload, per scenario, for the latency table.
pub struct BatchKinds {
    pub single: &'static str,
    pub create: &'static str,
    pub append: &'static str,
    pub commit: &'static str,
}

/// Uploads `records` to `collection` the way Firefox does: one `?batch=true&commit=true` POST
/// when they fit in one, else `?batch=true`, appends to the batch, and `&commit=true` with the
/// last chunk; every POST carries the collection's `X-If-Unmodified-Since`. Returns the
/// commit timestamp.
pub async fn upload(
    s: &mut Session,
    user: &mut User,
    collection: &'static str,
    records: &[Bso],
    kinds: &BatchKinds,
) -> Step<String> {
    let per_post = s.shared.opts.records_per_post;
    let xius = user.collection_ts(collection);
    let chunks: Vec<&[Bso]> = records.chunks(per_post).collect();
    let post = |query: String, chunk: &[Bso]| {
        Request::new(Method::POST, user.path(&format!("storage/{collection}?{query}")), &user.creds)
            .header("X-If-Unmodified-Since", xius.clone())
            .header("X-Weave-Records", chunk.len().to_string())
            .body(body(chunk))
    };
    if chunks.len() <= 1 {
        let reply = s.call(kinds.single, post("batch=true&commit=true".into(), records), &[200]).await?;
        check_post_reply(s, kinds.single, &reply, records)?;
        let (text, ms) = write_ts(s, kinds.single, &reply)?;
        acknowledge(s, user.uid, collection, records, ms);
        user.wrote(collection, &text);
        return Ok(text);
    }
    let reply = s.call(kinds.create, post("batch=true".into(), chunks[0]), &[202]).await?;
    check_post_reply(s, kinds.create, &reply, chunks[0])?;
    let Some(batch) = reply.json().and_then(|j| j.get("batch").and_then(|b| b.as_str().map(str::to_string)))
    else {
        s.stats.error(kinds.create, "202 without a batch id".into());
        return Err(Stop::Failed);
    };
    let last = chunks.len() - 1;
    for chunk in &chunks[1..last] {
        let reply = s.call(kinds.append, post(format!("batch={batch}"), chunk), &[202]).await?;
        check_post_reply(s, kinds.append, &reply, chunk)?;
    }
    let reply =
        s.call(kinds.commit, post(format!("batch={batch}&commit=true"), chunks[last]), &[200]).await?;
    check_post_reply(s, kinds.commit, &reply, chunks[last])?;
    let (text, ms) = write_ts(s, kinds.commit, &reply)?;
    acknowledge(s, user.uid, collection, records, ms);
    user.wrote(collection, &text);
    Ok(text)
}

/// `PUT storage/<collection>/<id>` with the collection's `X-If-Unmodified-Since` (never earlier
/// than the item's own timestamp, so it passes unless someone else wrote).
pub async fn put_item(
    s: &mut Session,
    user: &mut User,
    kind: &'static str,
    collection: &'static str,
    record: &Bso,
    xius: String,
) -> Step<()> {
    let mut item = serde_json::json!({ "payload": record.payload });
    if let Some(ttl) = record.ttl {
        item["ttl"] = ttl.into();
    }
    let req =
        Request::new(Method::PUT, user.path(&format!("storage/{collection}/{}", record.id)), &user.creds)
            .header("X-If-Unmodified-Since", xius)
            .body(item.to_string());
    let reply = s.call(kind, req, &[200]).await?;
    let (text, ms) = write_ts(s, kind, &reply)?;
    acknowledge(s, user.uid, collection, std::slice::from_ref(record), ms);
    user.wrote(collection, &text);
    Ok(())
}

/// `GET storage/<collection>?<query>` returning full records; counts what it read.
pub async fn get_records(
    s: &mut Session,
    user: &User,
    kind: &'static str,
    collection: &str,
    query: &str,
) -> Step<Reply> {
    let req = Request::get(user.path(&format!("storage/{collection}?{query}")), &user.creds);
    let reply = s.call(kind, req, &[200]).await?;
    match reply.json() {
        Some(serde_json::Value::Array(items)) => s.stats.records_read += items.len() as u64,
        _ => {
            s.stats.error(kind, "body is not a JSON array".into());
            return Err(Stop::Failed);
        }
    }
    Ok(reply)
}
