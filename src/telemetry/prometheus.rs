//! Prometheus metrics: the process-global recorder, installed once before the shard actors
//! start when `metrics.enabled` (otherwise every `metrics::` call in Weft is a no-op), and the
//! separate `metrics.listen` listener serving `GET /metrics`. A scrape first samples what is a
//! state rather than an event (each shard's in-flight requests and pool connections, each
//! node's database check), then renders every series. Latencies are true histograms (buckets),
//! so quantiles can be aggregated across webheads.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use metrics::Unit;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use super::health::{self, HealthCache};
use super::{COMMIT, VERSION};
use crate::config::Settings;
use crate::node::{db_node_name, NodeTable};

/// The recorder is process-global by the `metrics` crate's design; its handle lives beside it.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Seconds, 1 ms to 30 s: storage requests, database operations and pool waits.
const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Records per POST, up to `limits.max_total_records`' default.
const RECORD_BUCKETS: &[f64] =
    &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 10000.0];
/// Histogram samples are buffered until a scrape or an upkeep folds them into buckets; upkeep
/// bounds that buffer when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the recorder when metrics are enabled, describes every series and sets
/// `weft_build_info`. Must run before the shard actors start, so that their series exist
/// from the first scrape.
pub fn install(settings: &Settings) -> Result<(), BuildError> {
    if !settings.metrics.enabled {
        return Ok(());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full("weft_post_records".into()), RECORD_BUCKETS)?
        .install_recorder()?;
    describe();
    metrics::gauge!("weft_build_info", "version" => VERSION, "commit" => COMMIT).set(1.0);
    // `install` runs once per process; a second handle would render the same recorder.
    let _ = HANDLE.set(handle);
    Ok(())
}

/// Starts the metrics listener when the recorder is installed, announcing its address on
/// stdout. It has no signal handling of its own: the caller stops it with the main server,
/// so that the last scrapes still see a draining process.
pub fn serve(
    settings: &Settings,
    nodes: Arc<NodeTable>,
    health: Arc<HealthCache>,
) -> std::io::Result<Option<ServerHandle>> {
    let Some(handle) = HANDLE.get() else { return Ok(None) };
    let state = web::Data::new(Sampled { nodes, health, check_timeout: health::check_timeout(settings) });
    let server =
        HttpServer::new(move || App::new().app_data(state.clone()).route("/metrics", web::get().to(scrape)))
            .workers(1)
            .disable_signals()
            .bind(&settings.metrics.listen)?;
    for addr in server.addrs() {
        println!("weft: metrics on http://{addr}/metrics");
    }
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(UPKEEP_INTERVAL);
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok(Some(handle))
}

/// What a scrape samples: the nodes (the table a reload changes) and the health endpoints'
/// database check, shared with them.
struct Sampled {
    nodes: Arc<NodeTable>,
    health: Arc<HealthCache>,
    check_timeout: Duration,
}

async fn scrape(state: web::Data<Sampled>) -> HttpResponse {
    let Some(handle) = HANDLE.get() else { return HttpResponse::NotFound().finish() };
    // Per db node: its node names share one shard (in-flight count, circuit); their pools add up.
    let mut db_nodes: BTreeMap<String, (u32, u32, usize, bool)> = BTreeMap::new();
    for node in state.nodes.iter() {
        let (active, idle) = health::connections(&node.shard);
        let entry = db_nodes.entry(db_node_name(&node.db_node).to_string()).or_default();
        entry.0 += active;
        entry.1 += idle;
        entry.2 = node.shard.in_flight();
        entry.3 = node.shard.availability().is_available();
    }
    for (db_node, (active, idle, in_flight, available)) in db_nodes {
        metrics::gauge!("weft_db_node_connections", "db_node" => db_node.clone(), "state" => "active")
            .set(f64::from(active));
        metrics::gauge!("weft_db_node_connections", "db_node" => db_node.clone(), "state" => "idle")
            .set(f64::from(idle));
        metrics::gauge!("weft_db_node_in_flight", "db_node" => db_node.clone()).set(in_flight as f64);
        metrics::gauge!("weft_db_node_available", "db_node" => db_node).set(f64::from(u8::from(available)));
    }
    for node in state.nodes.iter() {
        let shard = &node.shard;
        let (active, idle) = health::connections(shard);
        let gauge =
            |name: &'static str, value: f64| metrics::gauge!(name, "node" => node.url.clone()).set(value);
        gauge("weft_shard_in_flight", shard.in_flight() as f64);
        gauge("weft_shard_queue_limit", shard.queue_limit() as f64);
        gauge("weft_shard_threads", shard.threads() as f64);
        gauge("weft_shard_saturated", f64::from(u8::from(health::is_saturated(shard))));
        gauge("weft_db_pool_max_connections", f64::from(shard.pool().max_size()));
        metrics::gauge!("weft_db_pool_connections", "node" => node.url.clone(), "state" => "active")
            .set(f64::from(active));
        metrics::gauge!("weft_db_pool_connections", "node" => node.url.clone(), "state" => "idle")
            .set(f64::from(idle));
    }
    for node in state.health.report(&state.nodes, state.check_timeout).await {
        metrics::gauge!("weft_db_up", "node" => node.url.clone()).set(f64::from(u8::from(node.is_ok())));
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(handle.render())
}

/// HELP texts. Names recorded in weft-actors are described here too, so that every series
/// Weft exports is explained in one place (and in ops/metrics.md).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!("weft_build_info", "Always 1; labels name the running build");
    describe_counter!(
        "weft_http_requests_total",
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        "weft_http_request_duration_seconds",
        Unit::Seconds,
        "Time from receiving a request to its response, by route template and method"
    );
    describe_counter!("weft_auth_failures_total", "Requests refused by authentication, by reason");
    describe_counter!(
        "weft_shard_shed_total",
        "Requests answered 503 at once: shard queue full, no connection in time, db node down, no answer in time, cache unusable"
    );
    describe_gauge!(
        "weft_shard_in_flight",
        "Requests admitted to the shard and not yet answered (queued or running)"
    );
    describe_gauge!(
        "weft_shard_queue_limit",
        "shard.queue_limit: in-flight requests beyond which requests are shed"
    );
    describe_gauge!("weft_shard_threads", "Threads of the shard actor");
    describe_gauge!(
        "weft_shard_saturated",
        "1 while the shard's queue is full or its pool has no idle connection"
    );
    describe_gauge!(
        "weft_db_pool_max_connections",
        "shard.pool_size: the most connections the node's pool opens"
    );
    describe_gauge!(
        "weft_db_pool_connections",
        "Open connections of the node's pool, by state (active, idle)"
    );
    describe_gauge!("weft_db_up", "1 when the node's database answered SELECT 1 at this scrape");
    describe_gauge!(
        "weft_db_node_available",
        "0 while the db node is unreachable: its circuit is open and its requests get 503 at once"
    );
    describe_gauge!(
        "weft_db_node_connections",
        "Open connections of all of the db node's databases' pools, by state (active, idle)"
    );
    describe_gauge!(
        "weft_db_node_in_flight",
        "Requests admitted to the db node's shard and not yet answered (all of its node names)"
    );
    describe_histogram!(
        "weft_db_pool_wait_seconds",
        Unit::Seconds,
        "Time a shard thread waited for a pooled connection"
    );
    describe_histogram!(
        "weft_db_operation_duration_seconds",
        Unit::Seconds,
        "Time a shard spent on one storage operation (its transaction, retries included), by message"
    );
    describe_counter!(
        "weft_db_deadlock_retries_total",
        "Transactions run again after the database reported a deadlock"
    );
    describe_histogram!("weft_post_records", "Records in the body of each successful POST, by mode");
}
