//! `GET /1.5/{uid}/info/*` (storage-api.md §6.1–§6.5): the user's collections, quota, usage and
//! counts, and the server's limits.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};
use weft_actors::shard::{GetCollectionCounts, GetCollectionUsage, GetCollections, GetQuota};
use weft_actors::SyncTimestamp;

use super::{storage_response, timestamps_json, APPLICATION_JSON, X_WEAVE_RECORDS};
use crate::web::error::ApiError;
use crate::web::extract::hawk_auth::Authenticated;
use crate::web::extract::precondition::PreconditionHeader;
use crate::web::AppState;

/// Sizes are reported in KB (1024 bytes) as unrounded floats (§6.2, §6.3).
fn kilobytes(bytes: u64) -> f64 {
    bytes as f64 / 1024.0
}

pub async fn collections(request: Authenticated<PreconditionHeader>) -> Result<HttpResponse, ApiError> {
    let Authenticated { user, params: PreconditionHeader(precondition) } = request;
    let reply = user.send(GetCollections { uid: user.uid, precondition }).await?;
    Ok(storage_response(StatusCode::OK, reply.last_modified)
        .insert_header((X_WEAVE_RECORDS, reply.value.len()))
        .content_type(APPLICATION_JSON)
        .body(timestamps_json(&reply.value)))
}

/// `[used_kb, null]`: [REF-CHOICE] §6.2, the quota is always `null` as in REF.
pub async fn quota(request: Authenticated<PreconditionHeader>) -> Result<HttpResponse, ApiError> {
    let Authenticated { user, params: PreconditionHeader(precondition) } = request;
    let reply = user.send(GetQuota { uid: user.uid, precondition }).await?;
    Ok(storage_response(StatusCode::OK, reply.last_modified)
        .content_type(APPLICATION_JSON)
        .body(json!([kilobytes(reply.value), null]).to_string()))
}

pub async fn collection_usage(request: Authenticated<PreconditionHeader>) -> Result<HttpResponse, ApiError> {
    let Authenticated { user, params: PreconditionHeader(precondition) } = request;
    let reply = user.send(GetCollectionUsage { uid: user.uid, precondition }).await?;
    let usage: Map<String, Value> =
        reply.value.into_iter().map(|(name, bytes)| (name, Value::from(kilobytes(bytes)))).collect();
    Ok(storage_response(StatusCode::OK, reply.last_modified)
        .insert_header((X_WEAVE_RECORDS, usage.len()))
        .content_type(APPLICATION_JSON)
        .body(Value::Object(usage).to_string()))
}

pub async fn collection_counts(request: Authenticated<PreconditionHeader>) -> Result<HttpResponse, ApiError> {
    let Authenticated { user, params: PreconditionHeader(precondition) } = request;
    let reply = user.send(GetCollectionCounts { uid: user.uid, precondition }).await?;
    Ok(storage_response(StatusCode::OK, reply.last_modified)
        .insert_header((X_WEAVE_RECORDS, reply.value.len()))
        .content_type(APPLICATION_JSON)
        .body(json!(reply.value).to_string()))
}

/// [REF-CHOICE] §2: answered without looking at `Authorization`, and preconditions are ignored,
/// as in REF; `X-Last-Modified` is always `0.00`. All seven keys, in REF's order (§6.5, §14).
pub async fn configuration(state: web::Data<AppState>) -> HttpResponse {
    let limits = &state.settings.limits;
    let body = format!(
        "{{\"max_post_bytes\":{},\"max_post_records\":{},\"max_record_payload_bytes\":{},\
         \"max_request_bytes\":{},\"max_total_bytes\":{},\"max_total_records\":{},\"max_quota_limit\":{}}}",
        limits.max_post_bytes,
        limits.max_post_records,
        limits.max_record_payload_bytes,
        limits.max_request_bytes,
        limits.max_total_bytes,
        limits.max_total_records,
        limits.max_quota_limit,
    );
    storage_response(StatusCode::OK, SyncTimestamp::ZERO).content_type(APPLICATION_JSON).body(body)
}
