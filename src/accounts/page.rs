//! The account pages (local-accounts.md §3, §4; issue 21): the sign-in page (`/`) and the
//! account page (`/settings`, anything under it, `/connect_another_device`: what Firefox's
//! "Manage account", "Manage devices" and "Connect another device" open), their scripts (one
//! shared, one each) and one style sheet, compiled into the binary and served from Weft's own
//! origin — no third-party script, no CDN — under a Content-Security-Policy that allows nothing
//! else and no framing.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder};

const INDEX: &str = include_str!("page/index.html");
const SETTINGS: &str = include_str!("page/settings.html");
const COMMON_SCRIPT: &str = include_str!("page/common.js");
const SCRIPT: &str = include_str!("page/signin.js");
const SETTINGS_SCRIPT: &str = include_str!("page/settings.js");
const STYLE: &str = include_str!("page/signin.css");

/// Only this origin's script, style and fetches; no plugins, frames, forms elsewhere, or
/// inline code; never inside a frame (no click-jacking of the password field).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self' data:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

fn static_response(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponseBuilder::new(StatusCode::OK)
        .insert_header(("Content-Type", content_type))
        .insert_header(("Content-Security-Policy", CSP))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

pub async fn index() -> HttpResponse {
    static_response("text/html; charset=utf-8", INDEX)
}

/// `/settings`, `/settings/…` and `/connect_another_device`: one document, whose script shows
/// the part the path asks for.
pub async fn settings() -> HttpResponse {
    static_response("text/html; charset=utf-8", SETTINGS)
}

pub async fn common_script() -> HttpResponse {
    static_response("text/javascript; charset=utf-8", COMMON_SCRIPT)
}

pub async fn settings_script() -> HttpResponse {
    static_response("text/javascript; charset=utf-8", SETTINGS_SCRIPT)
}

pub async fn script() -> HttpResponse {
    static_response("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> HttpResponse {
    static_response("text/css; charset=utf-8", STYLE)
}
