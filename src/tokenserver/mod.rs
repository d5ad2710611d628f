//! The HTTP side of the built-in tokenserver (tokenserver-api.md): the route `GET
//! /1.0/{application}/{version}`, whose handler parses the request and sends one `GetToken` to
//! the `Tokenserver` actor, and the JSON error bodies of §11 (`error`). Start-up registers the
//! running actor with `install`; `configure` adds the route only when one is installed, so a
//! storage-only process answers `/1.0/…` with the plain 404 of an unknown path.

mod error;
mod handler;

use std::sync::OnceLock;

use actix::Addr;
use actix_web::web::{self, Data, ServiceConfig};
use weft_actors::tokenserver::Tokenserver;

pub use self::error::TokenserverHttpError;

/// The running tokenserver actor. A process-wide cell because route registration is a plain
/// `fn(&mut ServiceConfig)` shared by every worker and by the storage routes' app factory;
/// the actor is started once, before the HTTP server, and lives as long as the process.
static TOKENSERVER: OnceLock<Addr<Tokenserver>> = OnceLock::new();

/// Makes `addr` the actor the token route talks to. Only the first call has an effect.
pub fn install(addr: Addr<Tokenserver>) {
    // A second start in one process (never done) keeps the first actor; nothing to report.
    let _ = TOKENSERVER.set(addr);
}

/// Registers the token route when a tokenserver is installed.
pub fn configure(cfg: &mut ServiceConfig) {
    let Some(addr) = TOKENSERVER.get() else { return };
    cfg.app_data(Data::new(addr.clone()))
        .service(web::resource("/1.0/{application}/{version}").route(web::get().to(handler::get_token)));
}
