//! The HTTP layer of the storage node (storage-api.md): the shared application state, the route
//! table of §1, and the middleware in front of it. Handlers parse, validate and authenticate,
//! send one message to a shard actor and turn the reply into HTTP; they hold no storage rules.

pub mod cors;
pub mod deadline;
pub mod error;
pub mod extract;
pub mod handlers;
pub mod weave_timestamp;
pub mod wire;

use std::sync::Arc;

use actix_web::web::{self, ServiceConfig};
use actix_web::HttpResponse;
use weft_actors::token_verifier::PublishedCredentials;

use crate::config::Settings;
use crate::node::NodeTable;
use crate::telemetry::health::HealthCache;
use crate::web::error::ApiError;

use self::extract::request_body::BodySlots;

use self::handlers::{bso, collection, health, info, storage};

pub struct AppState {
    pub settings: Arc<Settings>,
    pub nodes: Arc<NodeTable>,
    /// The token verifier's current secrets: workers authenticate without a mailbox round trip.
    pub credentials: PublishedCredentials,
    /// The built-in tokenserver, when it runs in this process.
    pub tokenserver: Option<actix::Addr<weft_actors::tokenserver::Tokenserver>>,
    /// Local accounts, when on (`accounts.enabled`).
    pub accounts: Option<web::Data<crate::accounts::AccountsState>>,
    /// `http.max_concurrent_bodies`: request bodies in memory at once.
    pub body_slots: BodySlots,
    /// The nodes' last database check, for `__heartbeat__` and the scrape.
    pub health: HealthCache,
}

/// Name of the `info/collections` route: the one route that accepts expired tokens (§2).
pub const INFO_COLLECTIONS_ROUTE: &str = "info_collections";

/// [REF-CHOICE] §1: REF answers `GET /` with 302 to the protocol documentation (PY: 200 text).
const PROTOCOL_DOCS_URL: &str = "https://mozilla-services.readthedocs.io/en/latest/storage/apis-1.5.html";

/// Registers the health endpoints and, unless the storage node is switched off
/// (`storage.enabled`), every route of storage-api.md §1. Segment rules are part
/// of the patterns, as in REF, so a uid or collection that does not match is an unknown URL
/// (404). The BSO id segment matches anything; its extractor decides 404 vs 400 (§1).
pub fn configure(cfg: &mut ServiceConfig, storage_enabled: bool) {
    cfg.service(resource("/").route(web::get().to(protocol_docs)))
        .service(resource("/__lbheartbeat__").route(web::get().to(health::lbheartbeat)))
        .service(resource("/__heartbeat__").route(web::get().to(health::heartbeat)))
        .service(resource("/__version__").route(web::get().to(health::version)))
        .default_service(web::to(not_found));
    if storage_enabled {
        configure_storage(cfg);
    }
}

/// The SyncStorage 1.5 routes (storage-api.md §1); absent in a tokenserver-only process.
fn configure_storage(cfg: &mut ServiceConfig) {
    cfg.service(
        resource("/1.5/{uid:[0-9]{1,10}}/info/collections")
            .name(INFO_COLLECTIONS_ROUTE)
            .route(web::get().to(info::collections)),
    )
    .service(resource("/1.5/{uid:[0-9]{1,10}}/info/quota").route(web::get().to(info::quota)))
    .service(
        resource("/1.5/{uid:[0-9]{1,10}}/info/collection_usage").route(web::get().to(info::collection_usage)),
    )
    .service(
        resource("/1.5/{uid:[0-9]{1,10}}/info/collection_counts")
            .route(web::get().to(info::collection_counts)),
    )
    .service(resource("/1.5/{uid:[0-9]{1,10}}/info/configuration").route(web::get().to(info::configuration)))
    .service(resource("/1.5/{uid:[0-9]{1,10}}").route(web::delete().to(storage::delete)))
    .service(resource("/1.5/{uid:[0-9]{1,10}}/storage").route(web::delete().to(storage::delete)))
    .service(
        resource("/1.5/{uid:[0-9]{1,10}}/storage/{collection:[a-zA-Z0-9._-]{1,32}}")
            .route(web::get().to(collection::get))
            .route(web::post().to(collection::post))
            .route(web::delete().to(collection::delete)),
    )
    .service(
        resource("/1.5/{uid:[0-9]{1,10}}/storage/{collection:[a-zA-Z0-9._-]{1,32}}/{id}")
            .route(web::get().to(bso::get))
            .route(web::put().to(bso::put))
            .route(web::delete().to(bso::delete)),
    );
}

/// Makes actix's own extractors (should any route use them) honour `max_request_bytes` (§5.1)
/// and answer through `ApiError` instead of actix's plain-text error pages. The storage
/// extractors read bodies and query strings themselves.
pub fn configure_extractors(cfg: &mut ServiceConfig, max_request_bytes: usize) {
    cfg.app_data(web::PayloadConfig::new(max_request_bytes))
        .app_data(web::JsonConfig::default().limit(max_request_bytes).error_handler(|err, _| {
            match err {
                actix_web::error::JsonPayloadError::OverflowKnownLength { .. }
                | actix_web::error::JsonPayloadError::Overflow { .. } => ApiError::PayloadTooLarge,
                actix_web::error::JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
                other => ApiError::InvalidRequest(other.to_string()),
            }
            .into()
        }))
        .app_data(
            web::QueryConfig::default()
                .error_handler(|err, _| ApiError::InvalidRequest(err.to_string()).into()),
        )
        .app_data(web::PathConfig::default().error_handler(|_, _| ApiError::NotFound.into()));
}

/// A resource whose other methods get 405 through `ApiError` (§1).
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn protocol_docs() -> HttpResponse {
    HttpResponse::Found().insert_header((actix_web::http::header::LOCATION, PROTOCOL_DOCS_URL)).finish()
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// [REF-CHOICE] §1: any other path answers 404 with the JSON body `0` (REF and PY alike).
async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
