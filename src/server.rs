//! The HTTP server: binds `settings.listen`, puts the CORS and `X-Weave-Timestamp` middleware in
//! front of the storage routes, announces the bound address on stdout and serves until stopped.

use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{web::Data, App, HttpServer};

use crate::config::Settings;
use crate::web::cors::cors;
use crate::web::weave_timestamp::weave_timestamp;
use crate::web::{configure, configure_extractors, AppState};

pub async fn serve(settings: Arc<Settings>, state: Data<AppState>) -> std::io::Result<()> {
    let max_request_bytes = usize::try_from(settings.limits.max_request_bytes).unwrap_or(usize::MAX);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(|cfg| configure_extractors(cfg, max_request_bytes))
            .configure(configure)
            .configure(crate::tokenserver::configure)
            .wrap(from_fn(weave_timestamp))
            // Wrapped last, so it runs first: preflights are answered before anything else.
            .wrap(from_fn(cors))
    })
    .bind(&settings.listen)?;
    // The real addresses, so that `listen = "127.0.0.1:0"` reports the port it got.
    for addr in server.addrs() {
        println!("weft: listening on {addr}");
    }
    server.run().await
}
