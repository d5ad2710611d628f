//! Assertion helpers shared by every test file: timestamp text checks (§4.1), seeding known
//! data, and the "bad input leaves data unchanged" protocol used by every bad-input test.

use serde_json::{json, Value};

use super::client::{Resp, User};

/// Parses a protocol timestamp (`1388635807.41`) into ms, asserting the exact two-decimal form.
#[track_caller]
pub fn parse_ts(text: &str) -> i64 {
    assert!(is_two_decimal(text), "timestamp {text:?} is not <digits>.<two digits>");
    let (secs, frac) = text.split_once('.').expect("checked above");
    secs.parse::<i64>().expect("seconds") * 1000 + frac.parse::<i64>().expect("fraction") * 10
}

pub fn is_two_decimal(text: &str) -> bool {
    match text.split_once('.') {
        Some((s, f)) => {
            !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit())
                && f.len() == 2
                && f.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// Formats ms as the protocol writes it (`1454709541.42`).
pub fn fmt_ts(ms: i64) -> String {
    format!("{}.{:02}", ms / 1000, (ms % 1000) / 10)
}

/// The raw number texts that follow `"key":` in a JSON document, so tests can check the
/// two-decimal spelling that parsing into f64 would hide.
pub fn raw_numbers_after(body: &str, key: &str) -> Vec<String> {
    let pat = format!("\"{key}\":");
    let mut out = vec![];
    let mut rest = body;
    while let Some(i) = rest.find(&pat) {
        let after = rest[i + pat.len()..].trim_start();
        let end = after.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')).unwrap_or(after.len());
        out.push(after[..end].to_string());
        rest = &after[end..];
    }
    out
}

/// A JSON number that must be a two-decimal timestamp in the raw body; returns ms.
#[track_caller]
pub fn json_ts(v: &Value) -> i64 {
    let f = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
    (f * 100.0).round() as i64 * 10
}

/// The BSO ids of a GET collection response (id list or full objects).
#[track_caller]
pub fn ids_of(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("{v} is not an array"))
        .iter()
        .map(|e| match e {
            Value::String(s) => s.clone(),
            Value::Object(o) => o["id"].as_str().expect("id string").to_string(),
            other => panic!("unexpected element {other}"),
        })
        .collect()
}

/// `n` records `{prefix}{i}` with distinct payloads and sortindexes.
pub fn records(prefix: &str, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"id": format!("{prefix}{i:03}"), "payload": format!("payload-{prefix}-{i}"), "sortindex": i as i64}))
            .collect(),
    )
}

/// Stores three known records (one with sortindex, one without, one multi-byte payload) in
/// `collection` and returns the write timestamp in ms.
pub fn seed(user: &User, collection: &str) -> i64 {
    let body = json!([
        {"id": "known-a", "payload": "alpha", "sortindex": 5},
        {"id": "known-b", "payload": "bravo"},
        {"id": "known-c", "payload": "charlié €", "sortindex": -3}
    ]);
    let r = user.post(&format!("/storage/{collection}"), &body).expect(200);
    let v = r.json();
    assert_eq!(v["success"].as_array().map(Vec::len), Some(3), "seed: {v}");
    r.ts_header("X-Last-Modified")
}

/// Everything a client can observe about a user's data: info/collections (body and
/// X-Last-Modified), info/collection_counts, and one collection read in full.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    info: String,
    info_last_modified: String,
    counts: String,
    collection: String,
    collection_last_modified: String,
}

pub fn snapshot(user: &User, collection: &str) -> Snapshot {
    let info = user.get("/info/collections").expect(200);
    let counts = user.get("/info/collection_counts").expect(200);
    let coll = user.get(&format!("/storage/{collection}?full=1&sort=oldest")).expect(200);
    Snapshot {
        info_last_modified: info.must_header("X-Last-Modified"),
        info: info.body,
        counts: counts.body,
        collection_last_modified: coll.must_header("X-Last-Modified"),
        collection: coll.body,
    }
}

/// The protocol of every bad-input test: `collection` must already hold data (see `seed`);
/// `send` issues the bad request; the response must be `status` with body `body` (`None`: not
/// checked), and afterwards everything the user can observe must be byte-for-byte unchanged.
#[track_caller]
pub fn rejects_unchanged(
    user: &User,
    collection: &str,
    status: u16,
    body: Option<&str>,
    send: impl FnOnce() -> Resp,
) -> Resp {
    let before = snapshot(user, collection);
    assert_ne!(before.collection, "[]", "bad-input tests must run against stored data in {collection}");
    let resp = send();
    assert_eq!(
        resp.status, status,
        "{}: expected {status}, got {} with body {:?}",
        resp.what, resp.status, resp.body
    );
    if let Some(b) = body {
        assert_eq!(resp.body.trim(), b, "{}: error body", resp.what);
    }
    let after = snapshot(user, collection);
    assert_eq!(before, after, "{}: data changed by a rejected request", resp.what);
    resp
}

/// A fresh user with known data in `collection`.
pub fn seeded_user(server: &super::TestServer, collection: &str) -> User {
    let u = User::new(server);
    seed(&u, collection);
    u
}

/// Characters a batch id or offset token may contain so that clients can append it to a query
/// string unencoded (§6.7, §6.9).
pub fn is_query_safe(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.~:=".contains(&c))
}

/// Reads `/storage/{collection}?{query}` page by page with `limit`, appending each
/// `X-Weave-Next-Offset` verbatim as clients do; returns every element and the page count.
/// Bounded: more than `max_pages` pages is a failure (a token that never advances).
#[track_caller]
pub fn read_paged(
    user: &User,
    collection: &str,
    query: &str,
    limit: usize,
    max_pages: usize,
) -> (Vec<Value>, usize) {
    let mut out = vec![];
    let mut offset: Option<String> = None;
    for page in 1..=max_pages {
        let mut q = format!("limit={limit}");
        if !query.is_empty() {
            q = format!("{query}&{q}");
        }
        if let Some(o) = &offset {
            q.push_str(&format!("&offset={o}"));
        }
        let r = user.get(&format!("/storage/{collection}?{q}")).expect(200);
        let items = r.json().as_array().cloned().expect("array");
        assert!(items.len() <= limit, "{}: {} > limit", r.what, items.len());
        assert_eq!(
            r.must_header("X-Weave-Records"),
            items.len().to_string(),
            "{}: X-Weave-Records counts this page",
            r.what
        );
        out.extend(items);
        match r.header("X-Weave-Next-Offset") {
            Some(token) => {
                assert!(is_query_safe(&token), "{}: offset token {token:?}", r.what);
                offset = Some(token);
            }
            None => return (out, page),
        }
    }
    panic!("{collection}?{query}: still paging after {max_pages} pages");
}

/// Starts a batch in `collection` staging `body`; asserts 202 and a query-safe id.
#[track_caller]
pub fn create_batch(user: &User, collection: &str, body: &Value) -> String {
    let r = user.post(&format!("/storage/{collection}?batch=true"), body).expect(202);
    let v = r.json();
    let id = v["batch"].as_str().unwrap_or_else(|| panic!("{}: no batch id in {v}", r.what)).to_string();
    assert!(is_query_safe(&id), "batch id {id:?} is not query-safe");
    id
}

/// Stages `body` into batch `id` (id appended verbatim, as many clients do); asserts 202.
#[track_caller]
pub fn append_batch(user: &User, collection: &str, id: &str, body: &Value) -> Value {
    let v = user.post(&format!("/storage/{collection}?batch={id}"), body).expect(202).json();
    assert_eq!(v["batch"], id, "append answers the same batch id");
    v
}

/// Commits batch `id` with `body`; asserts 200 and returns the response.
#[track_caller]
pub fn commit_batch(user: &User, collection: &str, id: &str, body: &Value) -> Resp {
    let r = user.post(&format!("/storage/{collection}?batch={id}&commit=true"), body).expect(200);
    assert!(r.json().get("batch").is_none(), "commit answers no batch key: {}", r.body);
    r
}
