//! The raw request body of PUT/POST, read only once the request is authenticated, and bounded
//! three ways:
//! - size: a `Content-Length` over `max_request_bytes` is refused before reading (413, body 17,
//!   storage-api.md §5.1), and a body that grows past it while streaming the same way;
//! - concurrency: at most `http.max_concurrent_bodies` bodies are in memory at once; a request
//!   holds its slot until it is answered, so bodies being parsed or written count too;
//! - time: waiting for a slot and reading the body must end within `http.body_timeout_ms`. A
//!   client that trickles its body is answered 408 and its connection closed; a request that
//!   spent the time waiting for a slot gets 503 + Retry-After (the server is busy, not the
//!   client slow).
//!
//! The body is left in the request's extensions for the body extractors of the route.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpMessage, HttpRequest};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{timeout_at, Instant};

use super::app_state;
use crate::web::error::{ApiError, Unavailable};

/// The slots of `http.max_concurrent_bodies`, shared by every HTTP worker.
pub struct BodySlots(Arc<Semaphore>);

impl BodySlots {
    pub fn new(max_concurrent_bodies: usize) -> BodySlots {
        BodySlots(Arc::new(Semaphore::new(max_concurrent_bodies)))
    }
}

/// An authenticated request's body, with the slot it occupies until the request is dropped.
struct ReceivedBody {
    bytes: Bytes,
    _slot: OwnedSemaphorePermit,
}

/// Reads the body of an authenticated request within the limits above and keeps it for
/// [`body`]; returns it too, for the payload-hash check.
pub async fn receive_body(req: &HttpRequest, payload: &mut Payload) -> Result<Bytes, ApiError> {
    let state = app_state(req)?;
    let settings = &state.settings;
    let limit = usize::try_from(settings.limits.max_request_bytes).unwrap_or(usize::MAX);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    let deadline = Instant::now() + Duration::from_millis(settings.http.body_timeout_ms);
    let slot = timeout_at(deadline, state.body_slots.0.clone().acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or(ApiError::Unavailable {
            cause: Unavailable::NoBodySlot,
            retry_after_seconds: settings.shard.retry_after_seconds,
        })?;
    let bytes = timeout_at(deadline, read_to_limit(payload, limit, declared))
        .await
        .map_err(|_| ApiError::RequestTimeout)??;
    req.extensions_mut().insert(ReceivedBody { bytes: bytes.clone(), _slot: slot });
    Ok(bytes)
}

async fn read_to_limit(
    payload: &mut Payload,
    limit: usize,
    declared: Option<u64>,
) -> Result<Bytes, ApiError> {
    // The declared length was checked against the limit, so reserving it is bounded.
    let mut body = BytesMut::with_capacity(declared.map_or(0, |len| len as usize));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidRequest(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The body [`receive_body`] read. Only routes behind `Authenticated` have one.
pub fn body(req: &HttpRequest) -> Result<Bytes, ApiError> {
    req.extensions()
        .get::<ReceivedBody>()
        .map(|received| received.bytes.clone())
        .ok_or_else(|| ApiError::Internal("body extractor outside Authenticated".into()))
}
