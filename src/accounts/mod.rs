//! The HTTP side of local accounts (local-accounts.md): the discovery documents, the sign-in
//! page, and the account, OAuth and profile routes of §5 with FxA's shapes. Handlers parse the
//! request (JSON body, Hawk header, bearer token) and send one `AccountsRequest` to the
//! `Accounts` actor; `client_address.rs` says which client a request is for the rate limits,
//! `settings.rs` has the routes behind the account page (device sign-out, password change,
//! deletion); `error.rs` is the one place account errors become HTTP. `signing_key.rs` keeps
//! the issuer's key file (the `weft account` commands are `crate::commands::account`).
//! Registered only when
//! `accounts.enabled`.

mod client_address;
mod error;
mod handlers;
mod page;
mod settings;
pub mod signing_key;

use actix_web::http::StatusCode;
use actix_web::web::{self, Data, ServiceConfig};
use actix_web::HttpResponseBuilder;
use weft_actors::accounts::AccountsAddr;

use crate::config::trust_proxy_headers::TrustProxyHeaders;
use crate::node::split_host_port;

/// What the handlers share.
pub struct AccountsState {
    pub actor: AccountsAddr,
    /// The public origin without a trailing `/`: the issuer, the WebChannel origin, the base of
    /// every discovery URL.
    pub origin: String,
    /// Host and port of `origin`, which the Hawk MACs of FxA clients bind (they sign the URLs
    /// the discovery document gave them, whatever proxy sits in between).
    pub hawk_host: String,
    pub hawk_port: u16,
    pub jwks: serde_json::Value,
    pub trust_proxy_headers: TrustProxyHeaders,
}

impl AccountsState {
    pub fn new(
        actor: AccountsAddr,
        public_url: &str,
        jwks: serde_json::Value,
        trust_proxy_headers: TrustProxyHeaders,
    ) -> AccountsState {
        let origin = public_url.trim_end_matches('/').to_string();
        let (scheme, rest) = origin.split_once("://").unwrap_or(("https", &origin));
        let (host, port) = split_host_port(rest).unwrap_or((rest, None));
        let port = port.unwrap_or(if scheme.eq_ignore_ascii_case("https") { 443 } else { 80 });
        AccountsState {
            actor,
            hawk_host: host.to_string(),
            hawk_port: port,
            origin,
            jwks,
            trust_proxy_headers,
        }
    }
}

/// A JSON response with the `Timestamp` header (seconds) FxA clients correct their clock with.
pub(crate) fn json_response(status: StatusCode) -> HttpResponseBuilder {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut builder = HttpResponseBuilder::new(status);
    builder.insert_header(("Timestamp", now.to_string())).insert_header(("Cache-Control", "no-store"));
    builder
}

/// Registers the accounts routes when local accounts are on. Must come before the storage
/// routes: `GET /` is the sign-in page here, not the redirect to the protocol documentation.
pub fn configure(cfg: &mut ServiceConfig, state: Option<&Data<AccountsState>>) {
    let Some(state) = state else { return };
    use handlers as h;
    cfg.app_data(state.clone())
        .service(web::resource("/").route(web::get().to(page::index)))
        .service(web::resource("/settings").route(web::get().to(page::settings)))
        .service(web::resource("/settings/{rest:.*}").route(web::get().to(page::settings)))
        .service(web::resource("/connect_another_device").route(web::get().to(page::settings)))
        .service(web::resource("/weft-accounts/common.js").route(web::get().to(page::common_script)))
        .service(web::resource("/weft-accounts/settings.js").route(web::get().to(page::settings_script)))
        .service(web::resource("/weft-accounts/signin.js").route(web::get().to(page::script)))
        .service(web::resource("/weft-accounts/signin.css").route(web::get().to(page::style)))
        .service(
            web::resource("/.well-known/fxa-client-configuration")
                .route(web::get().to(h::client_configuration)),
        )
        .service(
            web::resource("/.well-known/openid-configuration").route(web::get().to(h::openid_configuration)),
        )
        .service(web::resource("/v1/jwks").route(web::get().to(h::jwks)))
        .service(web::resource("/oauth/v1/jwks").route(web::get().to(h::jwks)))
        .service(web::resource("/v1/account/create").route(web::post().to(h::create)))
        .service(web::resource("/v1/account/login").route(web::post().to(h::login)))
        .service(web::resource("/v1/account/reset").route(web::post().to(h::reset)))
        .service(web::resource("/v1/account/credentials/status").route(web::post().to(h::credentials_status)))
        .service(web::resource("/v1/account/keys").route(web::get().to(h::keys)))
        .service(web::resource("/v1/account/scoped-key-data").route(web::post().to(h::scoped_key_data)))
        .service(web::resource("/v1/account/status").route(web::get().to(h::account_status)))
        .service(web::resource("/v1/account/device").route(web::post().to(h::device)))
        .service(web::resource("/v1/account/devices").route(web::get().to(h::devices)))
        .service(web::resource("/v1/account/attached_clients").route(web::get().to(h::attached_clients)))
        .service(web::resource("/v1/account/devices/notify").route(web::post().to(h::notify)))
        .service(web::resource("/v1/account/device/commands").route(web::get().to(h::device_commands)))
        .service(web::resource("/v1/account/devices/invoke_command").route(web::post().to(h::invoke_command)))
        .service(web::resource("/v1/session/status").route(web::get().to(h::session_status)))
        .service(web::resource("/v1/session/destroy").route(web::post().to(h::session_destroy)))
        .service(web::resource("/v1/recovery_email/status").route(web::get().to(h::email_status)))
        .service(web::resource("/v1/oauth/authorization").route(web::post().to(h::authorization)))
        .service(web::resource("/v1/oauth/token").route(web::post().to(h::token)))
        .service(web::resource("/v1/oauth/destroy").route(web::post().to(h::destroy)))
        .service(web::resource("/profile/v1/profile").route(web::get().to(h::profile)))
        .service(web::resource("/v1/account/device/destroy").route(web::post().to(settings::device_destroy)))
        .service(
            web::resource("/v1/password/change/start").route(web::post().to(settings::password_change_start)),
        )
        .service(
            web::resource("/v1/password/change/finish")
                .route(web::post().to(settings::password_change_finish)),
        )
        .service(web::resource("/v1/account/destroy").route(web::post().to(settings::account_destroy)));
}
