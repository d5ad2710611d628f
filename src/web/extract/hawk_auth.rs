//! Hawk authentication of storage requests (tokens-and-hawk.md §5–§6). Builds the `HawkRequest`
//! from the request exactly as the client sent it (method, request target, the host and port it
//! connected to), resolves the node the request is for from that origin, verifies it on this
//! worker with the token verifier's published credentials, and checks that the token's uid
//! owns the path (storage-api.md §2).
//!
//! `Authenticated<T>` authenticates first and only then extracts `T` (the route's other
//! inputs), so an unauthenticated request is answered 401 whatever else is wrong with it.
//! Authentication needs only the headers: the token and the MAC are checked before a byte of
//! a PUT/POST body is read, so an unauthenticated client never costs more than its headers.
//! The body is read afterwards, and the Hawk payload hash, when the client sent one, is then
//! checked against it (tokens-and-hawk.md §6.5).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{header, Method};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use weft_actors::shard::{Operation, Shard};
use weft_actors::token_verifier::hawk::check_payload_hash;
use weft_actors::token_verifier::token::canonical_node;
use weft_actors::token_verifier::{AuthError, HawkRequest};

use super::app_state;
use super::request_body::receive_body;
use crate::node::split_host_port;
use crate::telemetry::request::StorageNode;
use crate::web::error::ApiError;
use crate::web::INFO_COLLECTIONS_ROUTE;

/// The owner of the path's uid, proven by Hawk, with the shard of the node the request is for.
pub struct AuthenticatedUser {
    pub uid: u64,
    shard: Shard,
    retry_after_seconds: u32,
}

impl AuthenticatedUser {
    /// Sends the request's one operation to the user's shard.
    pub async fn send<Q>(&self, op: Q) -> Result<Q::Output, ApiError>
    where
        Q: Operation + Send + 'static,
        Q::Output: Send + 'static,
    {
        self.shard.send(op).await.map_err(|err| ApiError::from_shard(err, self.retry_after_seconds))
    }
}

/// An authenticated request and its other inputs `T` (an extractor or a tuple of them).
pub struct Authenticated<T> {
    pub user: AuthenticatedUser,
    pub params: T,
}

impl<T> FromRequest for Authenticated<T>
where
    T: FromRequest + 'static,
{
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let (user, payload_hash) = authenticate(&req).await?;
            // Other methods have no body to read; a hash attribute is checked against none.
            let body = match *req.method() {
                Method::PUT | Method::POST => receive_body(&req, &mut payload).await?,
                _ => Default::default(),
            };
            let content_type = header_text(&req, header::CONTENT_TYPE).unwrap_or_default();
            check_payload_hash(payload_hash.as_deref(), &content_type, &body)
                .map_err(ApiError::Unauthorized)?;
            let params = T::from_request(&req, &mut Payload::None).await.map_err(Into::into)?;
            Ok(Authenticated { user, params })
        })
    }
}

/// Checks the token and the Hawk MAC from the headers alone; returns the user and the payload
/// hash the client signed, if any, for the body check.
async fn authenticate(req: &HttpRequest) -> Result<(AuthenticatedUser, Option<String>), ApiError> {
    let state = app_state(req)?;
    let settings = &state.settings;
    // The route pattern guarantees 1–10 digits, which always fit a u64.
    let path_uid: u64 =
        req.match_info().get("uid").and_then(|uid| uid.parse().ok()).ok_or(ApiError::NotFound)?;
    let trust_proxy_headers = settings.trust_proxy_headers.trusts(req.peer_addr().map(|a| a.ip()));
    let origin = request_origin(req, trust_proxy_headers)?;
    let node =
        state.nodes.resolve(&origin.canonical).ok_or(ApiError::Unauthorized(AuthError::UnknownNode))?;
    req.extensions_mut().insert(StorageNode(node.url.clone()));
    let hawk = HawkRequest {
        authorization: header_text(req, header::AUTHORIZATION),
        method: req.method().as_str().to_owned(),
        request_target: request_target(req),
        host: origin.host,
        port: origin.port,
        node: node.url.clone(),
        // §2: only `GET /1.5/{uid}/info/collections` accepts an expired token.
        allow_expired: req.match_name() == Some(INFO_COLLECTIONS_ROUTE),
    };
    let retry_after_seconds = settings.shard.retry_after_seconds;
    let token = state.credentials.authenticate(&hawk).map_err(ApiError::Unauthorized)?;
    if token.uid != path_uid {
        return Err(ApiError::UidMismatch);
    }
    let user = AuthenticatedUser { uid: path_uid, shard: node.shard.clone(), retry_after_seconds };
    Ok((user, token.payload_hash))
}

/// A header as text; a value that is not visible ASCII counts as absent (REF: 401 for a
/// non-ASCII `Authorization`, tokens-and-hawk.md §6.6).
fn header_text(req: &HttpRequest, name: header::HeaderName) -> Option<String> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The path and query exactly as on the request line, still percent-encoded (§6.2).
fn request_target(req: &HttpRequest) -> String {
    req.uri().path_and_query().map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned())
}

/// The origin the client used: what the Hawk MAC binds and what selects the node (§5.3, §6.4).
#[derive(Debug, PartialEq, Eq)]
struct RequestOrigin {
    /// As received (REF does not lower-case it for the MAC), without the port.
    host: String,
    port: u16,
    /// Canonical `scheme://host[:port]` for the node lookup.
    canonical: String,
}

fn request_origin(req: &HttpRequest, trust_proxy_headers: bool) -> Result<RequestOrigin, ApiError> {
    if trust_proxy_headers {
        // REF's connection info prefers `Forwarded` (host=, proto=), then `X-Forwarded-Host` /
        // `X-Forwarded-Proto`, then `Host` and the connection (§6.4). Only used when the
        // deployment says a proxy it runs sets these headers.
        let info = req.connection_info();
        return parse_origin(info.scheme(), info.host());
    }
    let scheme = if req.app_config().secure() { "https" } else { "http" };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()))
        .ok_or_else(|| ApiError::InvalidRequest("no Host".into()))?;
    parse_origin(scheme, &host)
}

/// Splits `host[:port]`; without a port the scheme's default applies. A non-numeric port is a
/// bad request (400), as in REF.
fn parse_origin(scheme: &str, hostport: &str) -> Result<RequestOrigin, ApiError> {
    let scheme = scheme.to_ascii_lowercase();
    let (host, port) = split_host_port(hostport)
        .ok_or_else(|| ApiError::InvalidRequest(format!("invalid Host {hostport:?}")))?;
    let port = port.unwrap_or(if scheme == "https" { 443 } else { 80 });
    Ok(RequestOrigin {
        canonical: canonical_node(&format!("{scheme}://{host}:{port}")),
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn origin_defaults_the_port_from_the_scheme() {
        let o = parse_origin("https", "Sync.Example.com").unwrap();
        assert_eq!(
            (o.host.as_str(), o.port, o.canonical.as_str()),
            ("Sync.Example.com", 443, "https://sync.example.com")
        );
        let o = parse_origin("http", "localhost:8000").unwrap();
        assert_eq!(
            (o.host.as_str(), o.port, o.canonical.as_str()),
            ("localhost", 8000, "http://localhost:8000")
        );
        let o = parse_origin("HTTP", "example.com:80").unwrap();
        assert_eq!((o.port, o.canonical.as_str()), (80, "http://example.com"));
        let o = parse_origin("http", "[::1]:8000").unwrap();
        assert_eq!((o.host.as_str(), o.port), ("[::1]", 8000));
    }

    #[test]
    fn non_numeric_port_is_a_bad_request() {
        assert!(matches!(parse_origin("http", "example.com:http"), Err(ApiError::InvalidRequest(_))));
        assert!(matches!(parse_origin("http", ""), Err(ApiError::InvalidRequest(_))));
    }

    #[test]
    fn host_comes_from_the_host_header_unless_proxies_are_trusted() {
        let req = TestRequest::default()
            .insert_header(("host", "node.example:8443"))
            .insert_header(("x-forwarded-host", "public.example"))
            .insert_header(("x-forwarded-proto", "https"))
            .to_http_request();
        let direct = request_origin(&req, false).unwrap();
        assert_eq!(direct.canonical, "http://node.example:8443");
        let proxied = request_origin(&req, true).unwrap();
        assert_eq!((proxied.canonical.as_str(), proxied.port), ("https://public.example", 443));
        let req = TestRequest::default()
            .insert_header(("host", "node.example"))
            .insert_header(("forwarded", "host=sync.example:444;proto=https"))
            .to_http_request();
        assert_eq!(request_origin(&req, true).unwrap().canonical, "https://sync.example:444");
    }

    #[test]
    fn request_target_is_verbatim() {
        let req = TestRequest::get().uri("/1.5/42/storage/bookmarks?full=1&ids=a%2Cb").to_http_request();
        assert_eq!(request_target(&req), "/1.5/42/storage/bookmarks?full=1&ids=a%2Cb");
        let req = TestRequest::get().uri("/1.5/42/info/collections?").to_http_request();
        assert_eq!(request_target(&req), "/1.5/42/info/collections?");
    }
}
