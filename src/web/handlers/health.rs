//! Health and version endpoints (ops-model.md §2): unauthenticated, outside `/1.5/`, without
//! `X-Weave-Timestamp`. The checks themselves live in `telemetry::health`, shared with the
//! metrics scrape; these handlers only shape REF's bodies and statuses.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use super::APPLICATION_JSON;
use crate::telemetry::health::{self, Saturation};
use crate::telemetry::{BUILD, COMMIT, SOURCE, VERSION};
use crate::web::AppState;

/// Cheap liveness for the load balancer (§2.1): 200 with the pools' connection counts, or 500
/// while any shard is saturated (queue full, or every pool connection in use and none idle),
/// with `duration_ms` since saturation began, so that the load balancer sends traffic
/// elsewhere until it clears. Touches no database.
pub async fn lbheartbeat(state: web::Data<AppState>, saturation: web::Data<Saturation>) -> HttpResponse {
    let load = health::load(&state.nodes);
    let mut body = json!({
        "active_connections": load.active_connections,
        "idle_connections": load.idle_connections,
    });
    let status = match saturation.observe(load.saturated) {
        Some(duration) => {
            body["duration_ms"] = Value::from(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
            StatusCode::INTERNAL_SERVER_ERROR
        }
        None => StatusCode::OK,
    };
    HttpResponse::build(status).content_type(APPLICATION_JSON).body(body.to_string())
}

/// Checks every node's database (§2.1), from a result at most `HEALTH_CACHE` old: 200 when all
/// answer, 503 otherwise. The top-level `database` is REF's field for the whole process;
/// `nodes` reports each node and the db node serving it, with a short `database_msg` for a
/// failed one (details go to the log only: the endpoint is public); `db_nodes` names each db
/// node with its state, so a page says which database server is down.
pub async fn heartbeat(state: web::Data<AppState>) -> HttpResponse {
    let report = state.health.report(&state.nodes, health::check_timeout(&state.settings)).await;
    let healthy = report.iter().all(health::NodeHealth::is_ok);
    let mut nodes = Map::new();
    let mut db_nodes = Map::new();
    for node in report {
        let db_node =
            db_nodes.entry(node.db_node.clone()).or_insert_with(|| json!({"database": "Ok", "nodes": []}));
        if !node.is_ok() {
            db_node["database"] = json!("Unknown");
        }
        if let Some(urls) = db_node["nodes"].as_array_mut() {
            urls.push(json!(node.url));
        }
        let entry = match node.failure {
            None => json!({"database": "Ok", "db_node": node.db_node}),
            Some(msg) => json!({"database": "Unknown", "database_msg": msg, "db_node": node.db_node}),
        };
        nodes.insert(node.url, entry);
    }
    let settings = &state.settings;
    let body = json!({
        "version": VERSION,
        "quota": {"enabled": settings.quota.enabled, "size": settings.limits.max_quota_limit},
        "database": if healthy { "Ok" } else { "Unknown" },
        "status": if healthy { "Ok" } else { "Err" },
        "nodes": nodes,
        "db_nodes": db_nodes,
    });
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    HttpResponse::build(status).content_type(APPLICATION_JSON).body(body.to_string())
}

/// The build (§2.1 `version.json`): version, the commit and build recorded by build.rs.
pub async fn version() -> HttpResponse {
    let body = json!({
        "version": VERSION,
        "commit": COMMIT,
        "source": SOURCE,
        "build": BUILD,
    });
    HttpResponse::Ok().content_type(APPLICATION_JSON).body(body.to_string())
}
