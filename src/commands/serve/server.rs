//! The HTTP server: binds `settings.listen`, puts the request telemetry (id, log line, metrics),
//! CORS, `X-Weave-Timestamp` and the request deadline in front of the routes, bounds
//! connections and the time to send headers (`http.*`), starts the metrics listener
//! beside it, announces the bound addresses on stdout and serves until stopped. On SIGTERM it
//! stops accepting, lets in-flight requests finish within `shutdown_timeout_seconds`, then
//! stops the metrics listener and returns.

use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{web::Data, App, HttpServer};

use crate::config::Settings;
use crate::telemetry::health::Saturation;
use crate::telemetry::prometheus;
use crate::telemetry::request::request_telemetry;
use crate::web::cors::cors;
use crate::web::deadline::request_deadline;
use crate::web::weave_timestamp::weave_timestamp;
use crate::web::{configure, configure_extractors, AppState};

pub async fn serve(settings: Arc<Settings>, state: Data<AppState>) -> std::io::Result<()> {
    let max_request_bytes = usize::try_from(settings.limits.max_request_bytes).unwrap_or(usize::MAX);
    let storage_enabled = settings.storage.enabled;
    let account_events = settings.tokenserver.account_events.enabled;
    // One for every worker: `__lbheartbeat__` remembers since when the process is saturated.
    let saturation = Data::new(Saturation::default());
    // actix's own default worker count, made explicit to split `http.max_connections`.
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .app_data(saturation.clone())
            .configure(|cfg| configure_extractors(cfg, max_request_bytes))
            // Before the storage routes: with local accounts, `GET /` is the sign-in page.
            .configure(|cfg| crate::accounts::configure(cfg, app_state.accounts.as_ref()))
            .configure(|cfg| configure(cfg, storage_enabled))
            .configure(|cfg| {
                crate::tokenserver::configure(cfg, app_state.tokenserver.as_ref(), account_events)
            })
            .wrap(from_fn(request_deadline))
            .wrap(from_fn(weave_timestamp))
            // Wrapped last, so it runs first: preflights are answered before anything else.
            .wrap(from_fn(cors))
            // Outermost: every response, preflights included, gets an id, a log line and metrics.
            .wrap(from_fn(request_telemetry))
    })
    .workers(workers)
    // actix counts connections per worker.
    .max_connections(settings.http.max_connections.div_ceil(workers))
    .client_request_timeout(Duration::from_millis(settings.http.header_timeout_ms))
    .shutdown_timeout(settings.shutdown_timeout_seconds)
    .bind(&settings.listen)?;
    let metrics = prometheus::serve(&settings, state)?;
    // The real addresses, so that `listen = "127.0.0.1:0"` reports the port it got.
    for addr in server.addrs() {
        println!("weft: listening on {addr}");
    }
    let result = server.run().await;
    if let Some(metrics) = metrics {
        metrics.stop(true).await;
    }
    result
}
