//! The HTTP side of the built-in tokenserver (tokenserver-api.md): the route `GET
//! /1.0/{application}/{version}`, whose handler parses the request and sends one `GetToken` to
//! the `Tokenserver` actor, and the JSON error bodies of §11 (`error`). `configure` adds the
//! route only when a tokenserver runs, so a storage-only process answers `/1.0/…` with the
//! plain 404 of an unknown path.

mod error;
pub mod handler;

use actix::Addr;
use actix_web::web::{self, Data, ServiceConfig};
use weft_actors::tokenserver::Tokenserver;

pub use self::error::TokenserverHttpError;

/// Registers the token route, talking to `tokenserver`, when one runs.
pub fn configure(cfg: &mut ServiceConfig, tokenserver: Option<&Addr<Tokenserver>>) {
    let Some(addr) = tokenserver else { return };
    cfg.app_data(Data::new(addr.clone()))
        .service(web::resource("/1.0/{application}/{version}").route(web::get().to(handler::get_token)));
}
