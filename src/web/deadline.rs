//! The whole-request deadline (`http.request_timeout_ms`): a request whose handling, body and
//! database work included, has not produced a response in time is answered 503 +
//! `Retry-After`, so no request holds its connection, its body slot or its worker's attention
//! indefinitely. A write whose message already reached a shard may still complete; the client
//! retries it as it would any 503, and storage writes are idempotent.

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error};

use crate::web::error::{ApiError, Unavailable};
use crate::web::AppState;

/// Past the deadline the request's future is dropped and the error returned; actix renders it
/// (the request itself cannot be kept to build a response: routing needs it unshared).
pub async fn request_deadline<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    let limit = Duration::from_millis(state.settings.http.request_timeout_ms);
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(response) => response,
        Err(_elapsed) => Err(ApiError::Unavailable {
            cause: Unavailable::Deadline(limit),
            retry_after_seconds: state.settings.shard.retry_after_seconds,
        }
        .into()),
    }
}
