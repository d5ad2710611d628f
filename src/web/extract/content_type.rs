//! The `Content-Type` of PUT/POST bodies (storage-api.md §5.1): the media type, compared
//! case-insensitively with parameters ignored, selects JSON (`application/json`, and
//! `text/plain` for backward compatibility) or `application/newlines`; anything else → 415.

use actix_web::http::header::HeaderValue;

use crate::web::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Newlines,
}

/// [DIFF] §5.1: a missing `Content-Type` is 415 as in REF (PY read it as JSON); Firefox always
/// sends one.
pub fn body_format(content_type: Option<&HeaderValue>) -> Result<BodyFormat, ApiError> {
    let media_type = content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .ok_or(ApiError::UnsupportedMediaType)?;
    match media_type.as_str() {
        "application/json" | "text/plain" => Ok(BodyFormat::Json),
        "application/newlines" => Ok(BodyFormat::Newlines),
        _ => Err(ApiError::UnsupportedMediaType),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(value: &'static str) -> Result<BodyFormat, ApiError> {
        body_format(Some(&HeaderValue::from_static(value)))
    }

    #[test]
    fn accepted_types() {
        assert_eq!(format("application/json").unwrap(), BodyFormat::Json);
        assert_eq!(format("application/json; charset=utf-8").unwrap(), BodyFormat::Json);
        assert_eq!(format("Application/JSON").unwrap(), BodyFormat::Json);
        assert_eq!(format("text/plain").unwrap(), BodyFormat::Json);
        assert_eq!(format("text/plain;charset=UTF-8").unwrap(), BodyFormat::Json);
        assert_eq!(format("application/newlines").unwrap(), BodyFormat::Newlines);
    }

    #[test]
    fn other_or_missing_types_are_unsupported() {
        for value in ["application/xml", "text/html", "", "application/jsonx", "multipart/form-data"] {
            assert!(matches!(format(value), Err(ApiError::UnsupportedMediaType)), "{value}");
        }
        assert!(matches!(body_format(None), Err(ApiError::UnsupportedMediaType)));
    }
}
