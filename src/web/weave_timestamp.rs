//! `X-Weave-Timestamp` on every response of the storage routes (`/1.5/…`, errors and unknown
//! paths included; not the health endpoints), storage-api.md §8: the larger of the time the
//! request was received (truncated to the 10 ms tick) and the response's `X-Last-Modified`.
//! A write's T is taken after the request arrived, so writes report exactly T (§4.2, §13.40).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderValue;
use actix_web::middleware::Next;
use actix_web::Error;
use weft_actors::SyncTimestamp;

use crate::web::error::X_LAST_MODIFIED;

pub const X_WEAVE_TIMESTAMP: &str = "x-weave-timestamp";

pub async fn weave_timestamp(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if !is_storage_path(req.path()) {
        return next.call(req).await;
    }
    let received = SyncTimestamp::now();
    let mut response = next.call(req).await?;
    let last_modified =
        response.headers().get(X_LAST_MODIFIED).and_then(|v| v.to_str().ok()).and_then(SyncTimestamp::parse);
    let timestamp = weave_timestamp_value(received, last_modified);
    if let Ok(value) = HeaderValue::from_str(&timestamp.to_string()) {
        response
            .headers_mut()
            .insert(actix_web::http::header::HeaderName::from_static(X_WEAVE_TIMESTAMP), value);
    }
    Ok(response)
}

fn is_storage_path(path: &str) -> bool {
    path == "/1.5" || path.starts_with("/1.5/")
}

fn weave_timestamp_value(received: SyncTimestamp, last_modified: Option<SyncTimestamp>) -> SyncTimestamp {
    last_modified.map_or(received, |lm| lm.max(received))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_paths_only() {
        assert!(is_storage_path("/1.5/42/info/collections"));
        assert!(is_storage_path("/1.5/42/__heartbeat__"));
        assert!(is_storage_path("/1.5"));
        assert!(!is_storage_path("/__heartbeat__"));
        assert!(!is_storage_path("/1.50/42"));
        assert!(!is_storage_path("/1.0/sync/1.5"));
    }

    #[test]
    fn never_earlier_than_either_time() {
        let received = SyncTimestamp::from_millis(2_000);
        assert_eq!(weave_timestamp_value(received, None), received);
        let later = SyncTimestamp::from_millis(2_010);
        assert_eq!(weave_timestamp_value(received, Some(later)), later);
        assert_eq!(weave_timestamp_value(received, Some(SyncTimestamp::ZERO)), received);
    }
}
