//! Metrics (issue 4): after a scripted sequence of requests on a fresh server, the `/metrics`
//! scrape holds exactly the series and counts that were sent; and every metric that the
//! Grafana dashboard, the alert rules and ops/metrics.md name is exported by that scrape,
//! except the ones ops/metrics.md reserves for features that have not shipped (which must
//! not be exported yet: the document changes with the behaviour).

#[macro_use]
mod common;

use std::collections::BTreeSet;

use common::hawk::{self, HawkParams};
use common::*;
use serde_json::json;

/// A fresh server with metrics on a free loopback port and the `WEFT_*` settings in `env`;
/// returns it and its scrape URL.
fn metrics_server_with(backend: Backend, env: &[(&str, &str)]) -> (TestServer, String) {
    let mut all = vec![("WEFT_METRICS_ENABLED", "true"), ("WEFT_METRICS_LISTEN", "127.0.0.1:0")];
    all.extend_from_slice(env);
    let server = TestServer::start(backend, &all);
    let url = server
        .log_tail()
        .lines()
        .find_map(|l| l.strip_prefix("weft: metrics on ").map(str::to_string))
        .unwrap_or_else(|| panic!("no `weft: metrics on …` line:\n{}", server.log_tail()));
    (server, url)
}

fn scrape(url: &str) -> String {
    let resp = client::http().get(url).send().expect("scrape /metrics");
    assert_eq!(resp.status().as_u16(), 200);
    resp.text().expect("metrics text")
}

/// One sample line: name, labels, value.
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("sample value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').expect("closing brace"))),
                None => (series, vec![]),
            };
            Sample { name: name.to_string(), labels, value: value.parse().expect("numeric value") }
        })
        .collect()
}

/// `k="v",k2="v2"` (values never contain `"` or `\` in Weft's series).
fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut labels = vec![];
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let (value, tail) = after.split_once('"').expect("closing quote");
        labels.push((key.trim_start_matches(',').to_string(), value.to_string()));
        rest = tail;
    }
    labels
}

/// The value of the one series called `name` whose labels include `labels`.
#[track_caller]
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<Sample> = samples(text)
        .into_iter()
        .filter(|s| {
            s.name == name && labels.iter().all(|(k, v)| s.labels.iter().any(|(k2, v2)| k2 == k && v2 == v))
        })
        .collect();
    assert_eq!(matching.len(), 1, "expected one series {name}{labels:?}, found {}:\n{text}", matching.len());
    matching[0].value
}

const BSO_ROUTE: &str = "/1.5/{uid}/storage/{collection}/{id}";
const COLLECTION_ROUTE: &str = "/1.5/{uid}/storage/{collection}";

fn bad_mac_request(user: &User, server: &TestServer) -> Resp {
    let target = user.path("/info/collections");
    let nonce = hawk::random_nonce();
    let params = HawkParams {
        method: "GET",
        target: &target,
        host: "127.0.0.1",
        port: server.port,
        ts: hawk::now_secs(),
        nonce: &nonce,
        hash: None,
        ext: None,
    };
    let header = hawk::authorization(&user.creds.id, &user.creds.key, &params);
    let good = hawk::mac(&user.creds.key, &params);
    user.get_with_authorization(
        &target,
        &header.replace(&good, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    )
}

trait RawAuth {
    fn get_with_authorization(&self, target: &str, authorization: &str) -> Resp;
}

impl RawAuth for User {
    fn get_with_authorization(&self, target: &str, authorization: &str) -> Resp {
        let authorization = authorization.to_string();
        self.raw("GET", target).hawk(|h| h.authorization = Some(authorization)).send()
    }
}

backend_tests! {
    fn scrape_counts_what_was_sent(backend: Backend) {
        // Explicit shard sizes (the defaults follow the machine's CPUs): the gauges report them.
        let sizes = [("WEFT_SHARD_THREADS", "3"), ("WEFT_SHARD_POOL_SIZE", "5")];
        let (server, url) = metrics_server_with(backend, &sizes);
        let node = PUBLIC_URL;
        let user = User::new(&server);
        for i in 0..3 {
            user.put(&format!("/storage/bookmarks/item{i}"), &json!({"payload": "x"})).expect(200);
        }
        for i in 0..2 {
            user.get(&format!("/storage/bookmarks/item{i}")).expect(200);
        }
        user.get("/storage/bookmarks/missing").expect(404);
        user.post("/storage/history", &json!([{"id": "a", "payload": "x"}, {"id": "b", "payload": "y"}]))
            .expect(200);
        bad_mac_request(&user, &server).expect(401);
        user.req("GET", "/info/collections").unauthenticated().send().expect(401);
        user.raw("GET", "/no/such/route").unauthenticated().send().expect(404);

        let text = scrape(&url);
        let requests = |method: &str, route: &str, status: &str| {
            value(&text, "weft_http_requests_total", &[("method", method), ("route", route), ("status", status)])
        };
        assert_eq!(requests("PUT", BSO_ROUTE, "200"), 3.0);
        assert_eq!(requests("GET", BSO_ROUTE, "200"), 2.0);
        assert_eq!(requests("GET", BSO_ROUTE, "404"), 1.0);
        assert_eq!(requests("POST", COLLECTION_ROUTE, "200"), 1.0);
        assert_eq!(requests("GET", "/1.5/{uid}/info/collections", "401"), 2.0);
        assert_eq!(requests("GET", "unmatched", "404"), 1.0);
        let total: f64 = samples(&text).iter().filter(|s| s.name == "weft_http_requests_total").map(|s| s.value).sum();
        assert_eq!(total, 10.0, "every request counted once:\n{text}");
        assert_eq!(
            value(&text, "weft_http_request_duration_seconds_count", &[("method", "PUT"), ("route", BSO_ROUTE)]),
            3.0
        );
        assert_eq!(value(&text, "weft_auth_failures_total", &[("reason", "bad_mac")]), 1.0);
        assert_eq!(value(&text, "weft_auth_failures_total", &[("reason", "missing_header")]), 1.0);

        let op = |operation: &str| {
            value(&text, "weft_db_operation_duration_seconds_count", &[("node", node), ("operation", operation)])
        };
        assert_eq!(op("PutBso"), 3.0);
        assert_eq!(op("GetBso"), 3.0);
        assert_eq!(op("PostBsos"), 1.0);
        assert_eq!(value(&text, "weft_post_records_count", &[("node", node), ("mode", "post")]), 1.0);
        assert_eq!(value(&text, "weft_post_records_sum", &[("node", node), ("mode", "post")]), 2.0);
        assert!(value(&text, "weft_db_pool_wait_seconds_count", &[("node", node)]) >= 7.0);
        for reason in ["queue_full", "no_connection"] {
            assert_eq!(value(&text, "weft_shard_shed_total", &[("node", node), ("reason", reason)]), 0.0);
        }
        assert_eq!(value(&text, "weft_shard_in_flight", &[("node", node)]), 0.0);
        assert_eq!(value(&text, "weft_shard_threads", &[("node", node)]), 3.0);
        assert_eq!(value(&text, "weft_shard_queue_limit", &[("node", node)]), 256.0);
        assert_eq!(value(&text, "weft_db_pool_max_connections", &[("node", node)]), 5.0);
        assert_eq!(value(&text, "weft_db_up", &[("node", node)]), 1.0);
        assert_eq!(value(&text, "weft_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);

        // Never a uid, an id or a token in a label.
        let uid = user.uid.to_string();
        for s in samples(&text) {
            for (k, v) in &s.labels {
                assert!(!v.contains(&uid) && !v.contains("item0") && !v.contains(&user.creds.id), "{}{{{k}={v}}}", s.name);
            }
        }
    }
}

/// Every `weft_…` name in `text`, histogram series reduced to the histogram's name.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("weft_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        // The bare prefix, as prose mentions it.
        if base != "weft_" {
            names.insert(base.to_string());
        }
        rest = &tail[end..];
    }
    names
}

/// Names declared with `# TYPE` in a scrape.
fn exported_names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn ops_file(path: &str) -> String {
    let full = format!("{}/ops/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

#[test]
fn dashboard_alerts_and_docs_name_only_exported_metrics() {
    // With memcached configured, so that its per-server series exist too (scripts/test starts
    // one and exports WEFT_TEST_MEMCACHED; the series exist even before it answers).
    let memcached = std::env::var("WEFT_TEST_MEMCACHED").unwrap_or_else(|_| "127.0.0.1:11211".into());
    let (server, url) = metrics_server_with(Backend::Sqlite, &[("WEFT_CACHE_SERVERS", memcached.as_str())]);
    // Traffic that makes every event-driven series appear.
    let user = User::new(&server);
    user.put("/storage/bookmarks/a", &json!({"payload": "x"})).expect(200);
    user.post("/storage/bookmarks", &json!([{"id": "b", "payload": "y"}])).expect(200);
    user.req("GET", "/info/collections").unauthenticated().send().expect(401);
    let mut exported = exported_names(&scrape(&url));
    // Local accounts' series, which ops/metrics.md describes too, from a server that has them
    // (accounts need a loopback or https public URL, not the storage tests' `weft.test`).
    let (_accounts_server, accounts_url) = metrics_server_with(
        Backend::Sqlite,
        &[("WEFT_ACCOUNTS_ENABLED", "true"), ("WEFT_PUBLIC_URL", "http://localhost:8000")],
    );
    exported.extend(exported_names(&scrape(&accounts_url)));

    let docs = ops_file("metrics.md");
    let (current_docs, reserved_docs) =
        docs.split_once("## Coming with later features").expect("metrics.md has a reserved section");
    let reserved = metric_names(reserved_docs.split("\n## ").next().unwrap_or(reserved_docs));
    for name in &reserved {
        assert!(
            !exported.contains(name),
            "{name} is exported now: move it out of 'Coming with later features'"
        );
    }
    for (file, text) in [
        ("grafana/weft-dashboard.json", ops_file("grafana/weft-dashboard.json")),
        ("prometheus/alerts.yml", ops_file("prometheus/alerts.yml")),
        ("metrics.md", current_docs.to_string()),
    ] {
        let names = metric_names(&text);
        assert!(!names.is_empty(), "{file} names no metric");
        for name in names {
            assert!(
                exported.contains(&name) || reserved.contains(&name),
                "{file} uses {name}, which Weft does not export (exported: {exported:?})"
            );
        }
    }
    let documented = metric_names(current_docs);
    for name in &exported {
        assert!(documented.contains(name), "{name} is exported but not described in ops/metrics.md");
    }
}
