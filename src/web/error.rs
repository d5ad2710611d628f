//! `ApiError`: every way a storage request can fail, and the one place where a failure becomes
//! an HTTP response (storage-api.md §9, §10). Error bodies are a bare JSON integer (a weave
//! error code, §10.2) with `Content-Type: application/json`; 304 and 412 are empty and carry
//! `X-Last-Modified` (§5.4); 405 is empty, as REF's framework answers it.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use weft_actors::shard::{ShardError, ShedReason, StorageError};
use weft_actors::token_verifier::AuthError;
use weft_actors::{ActorUnavailable, SyncTimestamp};
use weft_schema::DbError;

/// Weave error codes REF sends (storage-api.md §10.2).
const WEAVE_UNKNOWN_ERROR: u8 = 0;
const WEAVE_INVALID_WBO: u8 = 8;
const WEAVE_OVER_QUOTA: u8 = 14;
const WEAVE_SIZE_LIMIT_EXCEEDED: u8 = 17;

/// `Retry-After` on a write conflict: 10 s in both references (§4.4).
const CONFLICT_RETRY_AFTER_SECONDS: u32 = 10;

pub const X_LAST_MODIFIED: &str = "x-last-modified";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or invalid Hawk credentials: 401, body `0`, and the connection closed. The
    /// reason is for logs only.
    #[error("authentication failed: {0}")]
    Unauthorized(AuthError),
    /// The token's uid is not the one in the path.
    #[error("uid in the path does not match the token")]
    UidMismatch,
    /// An invalid query parameter, precondition, batch parameter or header value: 400, body `0`.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// An unusable BSO body (§6.8, §6.12): 400, body `8`.
    #[error("invalid BSO body: {0}")]
    InvalidBso(String),
    /// An `X-Weave-*` size header over its limit, or a batch over its totals: 400, body `17`.
    #[error("size limit exceeded: {0}")]
    SizeLimitExceeded(String),
    /// Body larger than `max_request_bytes` (§5.1): 413, body `17`.
    #[error("request body larger than max_request_bytes")]
    PayloadTooLarge,
    /// The body did not arrive within `http.body_timeout_ms`: 408, body `0`, and the
    /// connection is closed (the rest of the body is not waited for).
    #[error("request body not received in time")]
    RequestTimeout,
    #[error("unsupported Content-Type")]
    UnsupportedMediaType,
    #[error("no acceptable output format")]
    NotAcceptable,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// `X-If-Modified-Since` satisfied; carries the resource's timestamp.
    #[error("not modified since {0}")]
    NotModified(SyncTimestamp),
    /// `X-If-Unmodified-Since` failed; carries the resource's timestamp.
    #[error("modified since the precondition, at {0}")]
    PreconditionFailed(SyncTimestamp),
    #[error("over quota")]
    QuotaExceeded,
    /// Write conflict (same 10 ms tick even after the shard's retry).
    #[error("write conflict")]
    Conflict,
    /// A dependency cannot serve the request now: 503 + `Retry-After`.
    #[error("service unavailable: {cause}")]
    Unavailable { cause: Unavailable, retry_after_seconds: u32 },
    /// A database failure of ours (a constraint, a statement the database refused): 500.
    #[error(transparent)]
    Database(DbError),
    /// A fault of this server's own wiring, never of the client's input.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a dependency could not serve a request.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    /// The shard shed it (queue full, no connection in time).
    #[error("request shed: {0}")]
    Shed(ShedReason),
    /// The database is unreachable, or kept deadlocking through every retry.
    #[error(transparent)]
    Database(DbError),
    /// An actor (shard, token verifier) did not answer.
    #[error(transparent)]
    Actor(ActorUnavailable),
    /// Every `http.max_concurrent_bodies` slot stayed taken for `http.body_timeout_ms`.
    #[error("no body slot free within http.body_timeout_ms")]
    NoBodySlot,
    /// The user is being moved to another node (its writes are held for a moment).
    #[error("user being moved to another node")]
    UserMoving,
    /// The request was not answered within `http.request_timeout_ms`.
    #[error("request not answered within http.request_timeout_ms ({0:?})")]
    Deadline(std::time::Duration),
}

impl ApiError {
    /// Maps a shard reply error, with the configured `Retry-After` for what is unavailable.
    pub fn from_shard(err: ShardError, retry_after_seconds: u32) -> ApiError {
        let unavailable = |cause| ApiError::Unavailable { cause, retry_after_seconds };
        let err = match err {
            ShardError::Storage(err) => err,
            ShardError::Unavailable(actor) => return unavailable(Unavailable::Actor(actor)),
        };
        match err {
            StorageError::NotModified(ts) => ApiError::NotModified(ts),
            StorageError::PreconditionFailed(ts) => ApiError::PreconditionFailed(ts),
            StorageError::NotFound => ApiError::NotFound,
            // REF deliberately answers 400 rather than 404 for any unusable batch id (§6.9).
            StorageError::InvalidBatch => ApiError::InvalidRequest("invalid batch id".into()),
            StorageError::BatchLimitExceeded => ApiError::SizeLimitExceeded("batch totals".into()),
            // Neither reference bounds open batches, so neither has an answer for it; the
            // batch-limit answer (400, `17` "size limit exceeded") is the one a client already
            // handles as "this upload is too big now": Firefox gives up the engine's sync and
            // tries again next time, by when the oldest batches have expired.
            StorageError::TooManyOpenBatches => ApiError::SizeLimitExceeded("open batches".into()),
            // Holding too many collections is a limit on what one user stores: answered as
            // quota (see `rules::check_collection_bound`).
            StorageError::QuotaExceeded | StorageError::TooManyCollections => ApiError::QuotaExceeded,
            StorageError::Conflict => ApiError::Conflict,
            StorageError::Overloaded(reason) => unavailable(Unavailable::Shed(reason)),
            // A move holds a user for well under a second: a short Retry-After, whatever the
            // configured one for failing dependencies.
            StorageError::UserHeld => ApiError::Unavailable {
                cause: Unavailable::UserMoving,
                retry_after_seconds: weft_actors::user_move::HELD_RETRY_AFTER_SECONDS,
            },
            // 401 makes Firefox fetch a new token, which names the user's new node.
            StorageError::UserMoved => ApiError::Unauthorized(AuthError::UserMoved),
            // The kind decides: a lost connection or a deadlock that outlived the retries is the
            // database failing as a dependency (503, the client retries later); anything else
            // is a fault of ours (500).
            StorageError::Database(err) if err.kind().is_unavailable() => {
                unavailable(Unavailable::Database(err))
            }
            StorageError::Database(err) => ApiError::Database(err),
        }
    }

    /// The weave error code of the body (§10.2, REF's choices).
    fn weave_code(&self) -> u8 {
        match self {
            ApiError::InvalidBso(_) => WEAVE_INVALID_WBO,
            ApiError::QuotaExceeded => WEAVE_OVER_QUOTA,
            ApiError::SizeLimitExceeded(_) | ApiError::PayloadTooLarge => WEAVE_SIZE_LIMIT_EXCEEDED,
            _ => WEAVE_UNKNOWN_ERROR,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            // [DIFF] §2: REF answers a uid mismatch with 400 (body 0); PY answered 401. We
            // follow REF, what Firefox talks to today.
            ApiError::UidMismatch
            | ApiError::InvalidRequest(_)
            | ApiError::InvalidBso(_)
            | ApiError::SizeLimitExceeded(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotModified(_) => StatusCode::NOT_MODIFIED,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            // [DIFF] §11: PROTO says 400/14; both references answer 403.
            ApiError::QuotaExceeded => StatusCode::FORBIDDEN,
            // [DIFF] §4.4: PROTO says 409; both references answer 503 + Retry-After because
            // old Firefox versions mishandled 409.
            ApiError::Conflict | ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Database(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::NotModified(ts) | ApiError::PreconditionFailed(ts) => {
                return response.insert_header((X_LAST_MODIFIED, ts.to_string())).finish();
            }
            ApiError::MethodNotAllowed => return response.finish(),
            ApiError::Unauthorized(err) => {
                tracing::info!(reason = err.reason(), "authentication failed: {err}");
                // The connection is closed after the answer: a body the request announced is
                // never read, so an unauthenticated client cannot keep the connection by
                // trickling it. Firefox reconnects anyway after fetching a new token.
                response.force_close();
            }
            ApiError::Conflict => {
                response.insert_header((header::RETRY_AFTER, CONFLICT_RETRY_AFTER_SECONDS));
            }
            ApiError::RequestTimeout => {
                response.force_close();
            }
            ApiError::Unavailable { cause, retry_after_seconds } => {
                tracing::warn!("service unavailable: {cause}");
                response.insert_header((header::RETRY_AFTER, *retry_after_seconds));
            }
            // Only the error itself is logged: request bodies and payloads never reach a log.
            ApiError::Database(err) => tracing::error!("database error: {err}"),
            ApiError::Internal(msg) => tracing::error!("internal error: {msg}"),
            _ => {}
        }
        weave_error_body(response, self.weave_code())
    }
}

fn weave_error_body(mut response: HttpResponseBuilder, code: u8) -> HttpResponse {
    response
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .body(code.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    struct Rendered {
        status: u16,
        content_type: Option<String>,
        last_modified: Option<String>,
        retry_after: Option<String>,
        body: String,
    }

    fn render(err: ApiError) -> Rendered {
        let response = err.error_response();
        let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_string());
        let (status, content_type, last_modified, retry_after) = (
            response.status().as_u16(),
            header("content-type"),
            header(X_LAST_MODIFIED),
            header("retry-after"),
        );
        let body = response.into_body().try_into_bytes().unwrap();
        Rendered {
            status,
            content_type,
            last_modified,
            retry_after,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    #[test]
    fn bodies_are_json_weave_codes() {
        let cases = [
            (ApiError::Unauthorized(AuthError::BadMac), 401, "0"),
            (ApiError::UidMismatch, 400, "0"),
            (ApiError::InvalidRequest("x".into()), 400, "0"),
            (ApiError::InvalidBso("x".into()), 400, "8"),
            (ApiError::SizeLimitExceeded("x".into()), 400, "17"),
            (ApiError::PayloadTooLarge, 413, "17"),
            (ApiError::RequestTimeout, 408, "0"),
            (ApiError::UnsupportedMediaType, 415, "0"),
            (ApiError::NotAcceptable, 406, "0"),
            (ApiError::NotFound, 404, "0"),
            (ApiError::QuotaExceeded, 403, "14"),
            (ApiError::Internal("x".into()), 500, "0"),
        ];
        for (err, status, body) in cases {
            let r = render(err);
            assert_eq!((r.status, r.body.as_str()), (status, body));
            assert_eq!(r.content_type.as_deref(), Some("application/json"));
        }
    }

    #[test]
    fn shard_errors_map_to_protocol_responses() {
        let ts = SyncTimestamp::from_millis(1_500);
        for (err, status) in
            [(StorageError::NotModified(ts), 304), (StorageError::PreconditionFailed(ts), 412)]
        {
            let r = render(ApiError::from_shard(storage(err), 10));
            assert_eq!((r.status, r.last_modified.as_deref(), r.body.as_str()), (status, Some("1.50"), ""));
        }
        let r = render(ApiError::from_shard(storage(StorageError::Conflict), 10));
        assert_eq!((r.status, r.retry_after.as_deref(), r.body.as_str()), (503, Some("10"), "0"));
        let r = render(ApiError::from_shard(storage(StorageError::Overloaded(ShedReason::QueueFull)), 7));
        assert_eq!((r.status, r.retry_after.as_deref(), r.body.as_str()), (503, Some("7"), "0"));
        let r = render(ApiError::from_shard(storage(StorageError::Overloaded(ShedReason::NoConnection)), 10));
        assert_eq!(r.retry_after.as_deref(), Some("10"));
        for (err, status, body) in [
            (StorageError::InvalidBatch, 400, "0"),
            (StorageError::BatchLimitExceeded, 400, "17"),
            (StorageError::TooManyOpenBatches, 400, "17"),
            (StorageError::QuotaExceeded, 403, "14"),
            (StorageError::TooManyCollections, 403, "14"),
            (StorageError::NotFound, 404, "0"),
            (StorageError::Database(database_error("no such table: bso")), 500, "0"),
        ] {
            let r = render(ApiError::from_shard(storage(err), 10));
            assert_eq!((r.status, r.body.as_str()), (status, body));
        }
    }

    fn storage(err: StorageError) -> ShardError {
        ShardError::Storage(err)
    }

    fn database_error(message: &str) -> DbError {
        use diesel::result::{DatabaseErrorKind, Error};
        DbError::from(Error::DatabaseError(DatabaseErrorKind::Unknown, Box::new(message.to_string())))
    }

    #[test]
    fn an_unreachable_database_is_503_with_retry_after_never_500() {
        for message in
            ["MySQL server has gone away", "Lost connection to server during query", "Deadlock found"]
        {
            let r = render(ApiError::from_shard(storage(StorageError::Database(database_error(message))), 9));
            assert_eq!(
                (r.status, r.retry_after.as_deref(), r.body.as_str()),
                (503, Some("9"), "0"),
                "{message}"
            );
        }
    }

    #[test]
    fn method_not_allowed_is_empty() {
        let r = render(ApiError::MethodNotAllowed);
        assert_eq!((r.status, r.body.as_str()), (405, ""));
    }
}
