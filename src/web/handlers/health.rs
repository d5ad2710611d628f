//! Health and version endpoints (ops-model.md §2): unauthenticated, outside `/1.5/`, without
//! `X-Weave-Timestamp`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};
use weft_actors::shard::CheckHealth;

use super::APPLICATION_JSON;
use crate::web::AppState;

/// Cheap liveness for the load balancer: the process is up.
pub async fn lbheartbeat() -> HttpResponse {
    HttpResponse::Ok().content_type(APPLICATION_JSON).body("{}")
}

/// Runs the database check of every node's shard: 200 when all pass, 503 otherwise, with the
/// outcome per node under `nodes`.
pub async fn heartbeat(state: web::Data<AppState>) -> HttpResponse {
    let mut nodes = Map::new();
    let mut healthy = true;
    for node in state.nodes.iter() {
        let outcome = match node.shard.send(CheckHealth).await {
            Ok(()) => "Ok",
            Err(err) => {
                tracing::error!(node = %node.url, "heartbeat: {err}");
                healthy = false;
                "Unknown"
            }
        };
        nodes.insert(node.url.clone(), Value::from(outcome));
    }
    let settings = &state.settings;
    let body = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "quota": {"enabled": settings.quota.enabled, "size": settings.limits.max_quota_limit},
        "database": if healthy { "Ok" } else { "Unknown" },
        "status": if healthy { "Ok" } else { "Err" },
        "nodes": nodes,
    });
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    HttpResponse::build(status).content_type(APPLICATION_JSON).body(body.to_string())
}

pub async fn version() -> HttpResponse {
    let body = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": option_env!("WEFT_GIT_COMMIT").unwrap_or("unknown"),
        "source": "https://github.com/weft-sync/weft",
        "build": option_env!("WEFT_BUILD").unwrap_or("unknown"),
    });
    HttpResponse::Ok().content_type(APPLICATION_JSON).body(body.to_string())
}
