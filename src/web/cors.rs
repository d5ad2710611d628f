//! Permissive CORS in front of every path of the process (storage-api.md §5.7), written by hand
//! because actix-cors refuses origins that are not well-formed URLs, which REF echoes anyway.
//! Preflights (`OPTIONS`) are answered here, before authentication and routing; actual requests
//! carrying an allowed `Origin` get it echoed back with `Vary: Origin`. Local accounts' routes
//! get no CORS headers at all: Firefox calls them without CORS and Weft's own page is same-origin,
//! so allowing other origins would only let any web page drive sign-ins, guesses and lock-outs
//! from its visitors' browsers.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse};

use super::AppState;
use crate::config::CorsSettings;

/// REF's default method list.
const ALLOW_METHODS: &str = "DELETE, GET, POST, PUT";

/// REF's default header list plus the headers §5.7 says a new implementation should also allow
/// (the conditional headers, `Accept`, and the tokenserver's `X-KeyID` / `X-Client-State`).
const ALLOW_HEADERS: &str = "Authorization, Content-Type, User-Agent, X-Last-Modified, X-Weave-Timestamp, \
     X-Weave-Next-Offset, X-Weave-Records, X-Weave-Bytes, X-Weave-Total-Records, X-Weave-Total-Bytes, \
     X-Verify-Code, X-If-Modified-Since, X-If-Unmodified-Since, Accept, X-KeyID, X-Client-State";

pub async fn cors(
    state: web::Data<AppState>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    if is_account_route(req.path()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let origin = allowed_origin(&state.settings.cors, req.headers().get(header::ORIGIN));
    if req.method() == Method::OPTIONS {
        // §14: every preflight gets 200 on any path, whatever it asks for and whatever
        // `Authorization` it carries (REF answers 400 to methods or headers outside its lists;
        // being permissive costs nothing since the actual request is still authenticated).
        let mut response = HttpResponse::Ok();
        if let Some(origin) = origin {
            response.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin));
            response.insert_header((header::VARY, "Origin"));
        }
        response
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, state.settings.cors.max_age_seconds));
        return Ok(req.into_response(response.finish()).map_into_right_body());
    }
    let mut response = next.call(req).await?;
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    Ok(response.map_into_left_body())
}

/// The account, OAuth and profile routes of local accounts (local-accounts.md §5).
fn is_account_route(path: &str) -> bool {
    ["/v1/", "/oauth/", "/profile/"].iter().any(|prefix| path.starts_with(prefix))
}

/// The `Origin` to echo, if it is allowed. `*` allows every origin, echoed verbatim even when it
/// is not a well-formed `scheme://host` (§5.7); otherwise only the configured one. A refused
/// origin simply gets no CORS headers, so the browser blocks the response.
fn allowed_origin(settings: &CorsSettings, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
    let origin = origin?;
    (settings.allowed_origin == "*" || settings.allowed_origin.as_bytes() == origin.as_bytes())
        .then(|| origin.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(allowed_origin: &str) -> CorsSettings {
        CorsSettings { allowed_origin: allowed_origin.into(), max_age_seconds: 1_728_000 }
    }

    #[test]
    fn any_origin_is_echoed_verbatim() {
        let origin = HeaderValue::from_static("localhost");
        assert_eq!(allowed_origin(&settings("*"), Some(&origin)), Some(origin));
        assert_eq!(allowed_origin(&settings("*"), None), None);
    }

    #[test]
    fn account_routes_are_not_for_other_origins() {
        assert!(is_account_route("/v1/account/login"));
        assert!(is_account_route("/profile/v1/profile"));
        assert!(!is_account_route("/1.5/123/info/collections"));
        assert!(!is_account_route("/1.0/sync/1.5"));
    }

    #[test]
    fn a_configured_origin_allows_only_itself() {
        let s = settings("https://tools.example");
        let ok = HeaderValue::from_static("https://tools.example");
        assert_eq!(allowed_origin(&s, Some(&ok)), Some(ok));
        assert_eq!(allowed_origin(&s, Some(&HeaderValue::from_static("https://evil.example"))), None);
    }
}
