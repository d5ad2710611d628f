//! `X-If-Modified-Since` / `X-If-Unmodified-Since` (storage-api.md §5.4): at most one of them,
//! each a non-negative timestamp; both present, or a value that does not parse → 400 (body 0).
//! The shard compares them with the target resource's timestamp.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header::HeaderMap;
use actix_web::{FromRequest, HttpRequest};
use weft_actors::shard::Precondition;
use weft_actors::SyncTimestamp;

use crate::web::error::ApiError;

pub struct PreconditionHeader(pub Precondition);

impl FromRequest for PreconditionHeader {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse_precondition(req.headers()).map(PreconditionHeader))
    }
}

pub fn parse_precondition(headers: &HeaderMap) -> Result<Precondition, ApiError> {
    let timestamp = |name: &str| {
        headers
            .get(name)
            .map(|value| {
                value
                    .to_str()
                    .ok()
                    .and_then(SyncTimestamp::parse)
                    .ok_or_else(|| ApiError::InvalidRequest(format!("invalid {name}")))
            })
            .transpose()
    };
    match (timestamp("x-if-modified-since")?, timestamp("x-if-unmodified-since")?) {
        (Some(_), Some(_)) => Err(ApiError::InvalidRequest(
            "X-If-Modified-Since and X-If-Unmodified-Since are exclusive".into(),
        )),
        (Some(ts), None) => Ok(Precondition::IfModifiedSince(ts)),
        (None, Some(ts)) => Ok(Precondition::IfUnmodifiedSince(ts)),
        (None, None) => Ok(Precondition::None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(list: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in list {
            map.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        map
    }

    fn ts(ms: i64) -> SyncTimestamp {
        SyncTimestamp::from_millis(ms)
    }

    #[test]
    fn one_header_at_a_time() {
        assert_eq!(parse_precondition(&headers(&[])).unwrap(), Precondition::None);
        assert_eq!(
            parse_precondition(&headers(&[("x-if-modified-since", "1454709541.42")])).unwrap(),
            Precondition::IfModifiedSince(ts(1_454_709_541_420))
        );
        assert_eq!(
            parse_precondition(&headers(&[("x-if-unmodified-since", "0")])).unwrap(),
            Precondition::IfUnmodifiedSince(ts(0))
        );
    }

    #[test]
    fn both_headers_are_rejected_even_if_one_would_pass() {
        let both = headers(&[("x-if-modified-since", "1.00"), ("x-if-unmodified-since", "99999999999.00")]);
        assert!(matches!(parse_precondition(&both), Err(ApiError::InvalidRequest(_))));
    }

    #[test]
    fn bad_values_are_rejected() {
        for bad in ["-1", "abc", "", "NaN"] {
            let map = headers(&[("x-if-unmodified-since", bad)]);
            assert!(matches!(parse_precondition(&map), Err(ApiError::InvalidRequest(_))), "{bad:?}");
        }
    }
}
