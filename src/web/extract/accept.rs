//! Output format of `GET /storage/{collection}` from the `Accept` header (storage-api.md §6.7),
//! negotiated as REF does: entries ordered by q-value, the first `*/*` or `application/json`
//! selects JSON, the first `application/newlines` selects newlines; a missing, empty or
//! unparsable header selects JSON; a header listing only other types → 406. Only this route
//! negotiates.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};

use crate::web::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Json,
    Newlines,
}

impl FromRequest for OutputFormat {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(negotiate(req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok())))
    }
}

pub fn negotiate(accept: Option<&str>) -> Result<OutputFormat, ApiError> {
    let Some(mut entries) = accept.and_then(parse_accept) else { return Ok(OutputFormat::Json) };
    if entries.is_empty() {
        return Ok(OutputFormat::Json);
    }
    // Stable: entries of equal quality keep the client's order. Like REF, `q=0` only sorts an
    // entry last; it does not exclude it.
    entries.sort_by(|a, b| b.1.total_cmp(&a.1));
    // [QUIRK] §6.7: `text/plain` is not acceptable (406), as in REF. Types are compared without
    // their parameters, where REF compares the full text and so refuses
    // `application/json; charset=utf-8`; Firefox sends neither.
    entries
        .iter()
        .find_map(|(media_type, _)| match media_type.as_str() {
            "*/*" | "application/json" => Some(OutputFormat::Json),
            "application/newlines" => Some(OutputFormat::Newlines),
            _ => None,
        })
        .ok_or(ApiError::NotAcceptable)
}

/// `(lower-cased type/subtype, q)` per entry; `None` when any entry does not parse.
fn parse_accept(text: &str) -> Option<Vec<(String, f32)>> {
    let mut entries = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let mut parts = entry.split(';');
        let media_type = parts.next()?.trim().to_ascii_lowercase();
        let (kind, subtype) = media_type.split_once('/')?;
        if !is_token(kind) || !is_token(subtype) {
            return None;
        }
        let mut quality = 1.0;
        for param in parts {
            let (name, value) = param.split_once('=')?;
            if name.trim().eq_ignore_ascii_case("q") {
                quality = value.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q))?;
            }
        }
        entries.push((media_type, quality));
    }
    Some(entries)
}

/// An HTTP token (RFC 9110 §5.6.2).
fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(accept: &str) -> Result<OutputFormat, ApiError> {
        negotiate(Some(accept))
    }

    #[test]
    fn defaults_to_json() {
        assert_eq!(negotiate(None).unwrap(), OutputFormat::Json);
        assert_eq!(format("").unwrap(), OutputFormat::Json);
        assert_eq!(format("*/*").unwrap(), OutputFormat::Json);
        assert_eq!(format("application/json").unwrap(), OutputFormat::Json);
        // What Firefox sends.
        assert_eq!(format("application/json;q=0.9,*/*;q=0.2").unwrap(), OutputFormat::Json);
    }

    #[test]
    fn newlines_when_asked() {
        assert_eq!(format("application/newlines").unwrap(), OutputFormat::Newlines);
        assert_eq!(format("Application/Newlines").unwrap(), OutputFormat::Newlines);
        assert_eq!(format("application/json;q=0.5, application/newlines").unwrap(), OutputFormat::Newlines);
        assert_eq!(format("application/newlines, application/json").unwrap(), OutputFormat::Newlines);
        assert_eq!(format("x/yy, application/newlines;q=0.1").unwrap(), OutputFormat::Newlines);
    }

    #[test]
    fn q_value_orders() {
        assert_eq!(format("application/newlines;q=0.4, application/json;q=0.8").unwrap(), OutputFormat::Json);
        assert_eq!(format("text/plain, */*;q=0.1").unwrap(), OutputFormat::Json);
        assert_eq!(format("application/newlines;q=0, x/yy").unwrap(), OutputFormat::Newlines);
    }

    #[test]
    fn only_other_types_are_not_acceptable() {
        for accept in ["x/yy", "text/plain", "text/html, application/xml", "application/*"] {
            assert!(matches!(format(accept), Err(ApiError::NotAcceptable)), "{accept}");
        }
    }

    #[test]
    fn unparsable_selects_json() {
        for accept in ["garbage", "application/json;q=abc, x/yy", "x/yy;q=2", "x/, y/z", "x/yy;level"] {
            assert_eq!(format(accept).unwrap(), OutputFormat::Json, "{accept}");
        }
    }
}
