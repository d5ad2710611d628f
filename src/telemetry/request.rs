//! The outermost middleware. Every request gets an id (`X-Request-Id`: a sane incoming one is
//! kept so a proxy's id follows the request, otherwise a random one), runs inside a tracing
//! span carrying it, is answered with it, and ends with exactly one log line and its HTTP
//! metrics. The line and the labels hold only what is safe to keep: method, route template,
//! the storage node addressed (a configured URL), the hashed uid, status, duration and the auth
//! failure reason. Never the uid itself, the path's ids, the query string, a header value
//! (Hawk, token) or a body.
//!
//! The uid is logged as `hashed_uid`, keyed like the tokenserver's `hashed_fxa_uid` with the
//! persistent metrics hash secret (`UidHash`): an operator finds one user's requests with
//! `weft user hash UID`, while the log alone names no user and cannot be joined with another
//! deployment's.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing::Instrument;
use weft_actors::tokenserver::metrics_hash;

pub const X_REQUEST_ID: &str = "x-request-id";

/// Longest incoming request id kept; longer ones are replaced rather than truncated.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Why authentication refused a request (a bounded reason), set in the refusal's response
/// extensions by the protocol's error mapping (`web/error.rs`): the `auth_failure` of the log
/// line and the label of `weft_auth_failures_total`.
#[derive(Debug, Clone, Copy)]
pub struct AuthFailure(pub &'static str);

/// The storage node a request was addressed to (its configured URL), set in the request's
/// extensions by the Hawk extractor once it resolved it: the `node` of the log line, which says
/// which node served a user when one webhead serves several (and after a user moved).
#[derive(Debug, Clone)]
pub struct StorageNode(pub String);

/// The key of the `hashed_uid` in request log lines (app data of the server).
#[derive(Clone)]
pub struct UidHash {
    key: std::sync::Arc<str>,
}

impl UidHash {
    /// `key` is the metrics hash secret, the key of the tokenserver's `hashed_fxa_uid`.
    pub fn new(key: &str) -> UidHash {
        UidHash { key: key.into() }
    }

    /// What the log lines carry for `uid`: 32 hex digits of its HMAC-SHA256.
    pub fn of(&self, uid: &str) -> String {
        metrics_hash(&self.key, uid)
    }
}

pub async fn request_telemetry(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let id = match req.headers().get(X_REQUEST_ID).and_then(|v| v.to_str().ok()) {
        Some(incoming) if is_sane_request_id(incoming) => incoming.to_string(),
        _ => new_request_id(),
    };
    let method = method_label(req.method());
    let route = req.match_pattern().map_or_else(|| "unmatched".to_string(), |p| route_template(&p));
    let span = tracing::info_span!("request", request_id = %id);
    let mut res = match next.call(req).instrument(span).await {
        Ok(res) => res,
        Err(err) => {
            // Handlers answer errors themselves; only a failing middleware gets here, and actix
            // renders its response after us. It is still logged and counted.
            let status = err.as_response_error().status_code().as_u16();
            finish(&id, method, &route, Addressed::default(), status, None, started);
            return Err(err);
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HeaderName::from_static(X_REQUEST_ID), value);
    }
    let auth_failure = res.response().extensions().get::<AuthFailure>().map(|failure| failure.0);
    let request = res.request();
    let hashed_uid =
        request.match_info().get("uid").zip(request.app_data::<UidHash>()).map(|(uid, key)| key.of(uid));
    let node = request.extensions().get::<StorageNode>().map(|n| n.0.clone());
    let addressed = Addressed { node: node.as_deref(), hashed_uid: hashed_uid.as_deref() };
    finish(&id, method, &route, addressed, res.status().as_u16(), auth_failure, started);
    Ok(res)
}

/// Whom a storage request was for: the node and the user (hashed).
#[derive(Default)]
struct Addressed<'a> {
    node: Option<&'a str>,
    hashed_uid: Option<&'a str>,
}

/// The request's metrics and its one log line.
fn finish(
    id: &str,
    method: &'static str,
    route: &str,
    Addressed { node, hashed_uid }: Addressed<'_>,
    status: u16,
    auth_failure: Option<&'static str>,
    started: Instant,
) {
    let elapsed = started.elapsed();
    if let Some(reason) = auth_failure {
        metrics::counter!("weft_auth_failures_total", "reason" => reason).increment(1);
    }
    metrics::counter!(
        "weft_http_requests_total",
        "route" => route.to_string(),
        "method" => method,
        "status" => status.to_string(),
    )
    .increment(1);
    metrics::histogram!(
        "weft_http_request_duration_seconds",
        "route" => route.to_string(),
        "method" => method,
    )
    .record(elapsed.as_secs_f64());
    tracing::info!(
        request_id = id,
        method,
        route,
        node,
        hashed_uid,
        status,
        duration_ms = elapsed.as_micros() as f64 / 1000.0,
        auth_failure,
        "request"
    );
}

/// A request id worth keeping: a short token of letters, digits and `-_.:` (what proxies and
/// tracing systems generate), so it can be neither a log injection nor a smuggled secret blob.
fn is_sane_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// 128 random bits in hex.
fn new_request_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The method as a bounded label: clients may send any token as a method.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The route pattern without its segment regexes: `/1.5/{uid:[0-9]{1,10}}/info/quota` becomes
/// `/1.5/{uid}/info/quota`, a readable label with one value per route.
fn route_template(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '{' {
            continue;
        }
        // Inside `{name` or `{name:regex}`: keep the name, skip the regex with its own braces.
        let mut depth = 1;
        let mut in_name = true;
        for c in chars.by_ref() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ':' if depth == 1 => in_name = false,
                _ => {}
            }
            if depth == 0 {
                out.push('}');
                break;
            }
            if in_name {
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_templates_drop_regexes() {
        assert_eq!(route_template("/1.5/{uid:[0-9]{1,10}}/info/quota"), "/1.5/{uid}/info/quota");
        assert_eq!(
            route_template("/1.5/{uid:[0-9]{1,10}}/storage/{collection:[a-zA-Z0-9._-]{1,32}}/{id}"),
            "/1.5/{uid}/storage/{collection}/{id}"
        );
        assert_eq!(route_template("/__heartbeat__"), "/__heartbeat__");
    }

    #[test]
    fn request_ids() {
        assert!(is_sane_request_id("b7ad6b7169203331"));
        assert!(is_sane_request_id("1-5759e988-bd862e3fe1be46a994272793"));
        assert!(!is_sane_request_id(""));
        assert!(!is_sane_request_id("Hawk id=\"x\""));
        assert!(!is_sane_request_id("a\nb"));
        assert!(!is_sane_request_id(&"a".repeat(MAX_REQUEST_ID_LEN + 1)));
        let generated = new_request_id();
        assert!(is_sane_request_id(&generated) && generated.len() == 32);
    }

    #[test]
    fn methods_are_bounded() {
        assert_eq!(method_label(&Method::PUT), "PUT");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
