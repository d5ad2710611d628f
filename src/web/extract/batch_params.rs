//! `?batch=` and `&commit=` of a collection POST (storage-api.md §6.9). An empty or `true` batch opens a new batch; any other value names one, as standard
//! base64 of its decimal number or as the bare decimal. `commit` must be `true`
//! (case-insensitive) and needs `batch`. Every violation → 400 (body 0).

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use weft_actors::shard::BatchMode;

use super::query::{decode_query, first};
use crate::web::error::ApiError;
use crate::web::wire::decode_batch_id;

#[derive(Debug, PartialEq, Eq)]
pub struct BatchParams {
    pub batch: Option<BatchMode>,
    pub commit: bool,
}

impl FromRequest for BatchParams {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse_batch_params(&decode_query(req.query_string())))
    }
}

/// `pairs` come from `decode_query`: already percent-decoded and split at the first `=`, so
/// `MQ%3D%3D` and `MQ==` both arrive as `MQ==` (§13.37).
pub fn parse_batch_params(pairs: &[(String, String)]) -> Result<BatchParams, ApiError> {
    let batch = first(pairs, "batch").map(parse_batch).transpose()?;
    let commit = match first(pairs, "commit") {
        None => false,
        Some(value) if value.eq_ignore_ascii_case("true") => true,
        Some(value) => return Err(ApiError::InvalidRequest(format!("invalid commit: {value:?}"))),
    };
    if commit && batch.is_none() {
        return Err(ApiError::InvalidRequest("commit without batch".into()));
    }
    Ok(BatchParams { batch, commit })
}

fn parse_batch(value: &str) -> Result<BatchMode, ApiError> {
    if value.is_empty() || value.eq_ignore_ascii_case("true") {
        return Ok(BatchMode::Create);
    }
    decode_batch_id(value)
        .map(BatchMode::Append)
        .ok_or_else(|| ApiError::InvalidRequest(format!("invalid batch: {value:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::wire::encode_batch_id;

    fn params(text: &str) -> Result<BatchParams, ApiError> {
        parse_batch_params(&decode_query(text))
    }

    fn ok(batch: Option<BatchMode>, commit: bool) -> BatchParams {
        BatchParams { batch, commit }
    }

    #[test]
    fn no_batch() {
        assert_eq!(params("").unwrap(), ok(None, false));
        assert_eq!(params("full=1").unwrap(), ok(None, false));
    }

    #[test]
    fn new_batch() {
        for text in ["batch=true", "batch=TRUE", "batch=True", "batch", "batch="] {
            assert_eq!(params(text).unwrap(), ok(Some(BatchMode::Create), false), "{text}");
        }
        assert_eq!(params("batch=true&commit=true").unwrap(), ok(Some(BatchMode::Create), true));
    }

    #[test]
    fn existing_batch_verbatim_or_encoded() {
        let id = Some(BatchMode::Append(1_536_198_976_921));
        assert_eq!(params("batch=MTUzNjE5ODk3NjkyMQ==").unwrap(), ok(id.clone(), false));
        assert_eq!(params("batch=MTUzNjE5ODk3NjkyMQ%3D%3D&commit=true").unwrap(), ok(id.clone(), true));
        assert_eq!(params("batch=MTUzNjE5ODk3NjkyMQ&commit=TRUE").unwrap(), ok(id.clone(), true));
        assert_eq!(params("batch=1536198976921").unwrap(), ok(id, false));
        assert_eq!(params("batch=MQ==").unwrap(), ok(Some(BatchMode::Append(1)), false));
    }

    #[test]
    fn invalid_batch_ids() {
        for text in ["batch=abc", "batch=-1", "batch=%2B%2B%2B%2B", "batch=YWJj", "batch=1.5"] {
            assert!(matches!(params(text), Err(ApiError::InvalidRequest(_))), "{text}");
        }
    }

    #[test]
    fn commit_rules() {
        for text in [
            "commit=true",
            "batch=true&commit=false",
            "batch=true&commit=",
            "batch=true&commit",
            "batch=MQ==&commit=1",
        ] {
            assert!(matches!(params(text), Err(ApiError::InvalidRequest(_))), "{text}");
        }
    }

    #[test]
    fn issued_ids_round_trip_verbatim() {
        for n in [1, 12, 123, 9_999_999_999_999, 1_536_198_976_929] {
            let id = encode_batch_id(n);
            assert_eq!(decode_batch_id(&id), Some(n), "{id}");
            assert_eq!(
                params(&format!("batch={id}&commit=true")).unwrap(),
                ok(Some(BatchMode::Append(n)), true)
            );
        }
    }
}
