//! The HTTP side of the built-in tokenserver (tokenserver-api.md): the route `GET
//! /1.0/{application}/{version}`, whose handler parses the request and sends one `GetToken` to
//! the `Tokenserver` actor, FxA's account events (`POST /1.0/webhooks/fxa/events`, `events`,
//! only when configured), and the JSON error bodies of §11 (`error`). `configure` adds the
//! routes only when a tokenserver runs, so a storage-only process answers `/1.0/…` with the
//! plain 404 of an unknown path.

mod error;
mod events;
pub mod handler;

use actix::Addr;
use actix_web::web::{self, Data, ServiceConfig};
use weft_actors::tokenserver::Tokenserver;

pub use self::error::TokenserverHttpError;

/// Registers the token route, talking to `tokenserver`, when one runs, and the account-events
/// route when `account_events` is on.
pub fn configure(cfg: &mut ServiceConfig, tokenserver: Option<&Addr<Tokenserver>>, account_events: bool) {
    let Some(addr) = tokenserver else { return };
    cfg.app_data(Data::new(addr.clone()));
    if account_events {
        cfg.service(web::resource("/1.0/webhooks/fxa/events").route(web::post().to(events::post_events)));
    }
    cfg.service(web::resource("/1.0/{application}/{version}").route(web::get().to(handler::get_token)));
}
