//! Path segments of the storage routes (storage-api.md §1). The route patterns already enforce
//! the uid and collection rules; the BSO id is percent-decoded once here and checked against
//! §3.1: an id whose raw (still percent-encoded) form fits the rule but whose decoded form does
//! not is a bad request (400, as REF), any other invalid id an unknown URL (404).

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use percent_encoding::percent_decode_str;

use super::is_valid_bso_id;
use crate::web::error::ApiError;

/// `{collection}`.
pub struct CollectionPath(pub String);

/// `{collection}/{id}`, the id decoded (`%2F` → `/`).
pub struct BsoPath {
    pub collection: String,
    pub id: String,
}

impl FromRequest for CollectionPath {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(collection(req).map(CollectionPath))
    }
}

impl FromRequest for BsoPath {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(bso_path(req))
    }
}

/// The id is the last segment of the path as sent: actix keeps `%2F` encoded when routing, so
/// the route's `{id}` is always the request's last raw segment.
fn bso_path(req: &HttpRequest) -> Result<BsoPath, ApiError> {
    let raw = req.uri().path().rsplit('/').next().ok_or(ApiError::NotFound)?;
    Ok(BsoPath { collection: collection(req)?, id: decode_bso_id(raw)? })
}

fn collection(req: &HttpRequest) -> Result<String, ApiError> {
    req.match_info().get("collection").map(str::to_owned).ok_or(ApiError::NotFound)
}

/// `raw` is the segment as sent on the request line.
pub fn decode_bso_id(raw: &str) -> Result<String, ApiError> {
    let id = percent_decode_str(raw).decode_utf8_lossy();
    if is_valid_bso_id(&id) {
        Ok(id.into_owned())
    } else if is_valid_bso_id(raw) {
        Err(ApiError::InvalidRequest(format!("invalid BSO id {raw:?}")))
    } else {
        Err(ApiError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_arrives_encoded() {
        assert_eq!(decode_bso_id("a%2Fb").unwrap(), "a/b");
        assert_eq!(decode_bso_id("a%2fb").unwrap(), "a/b");
        assert_eq!(decode_bso_id("a%2Bb").unwrap(), "a+b");
        assert_eq!(decode_bso_id("a+b").unwrap(), "a+b");
        assert_eq!(decode_bso_id("a b").unwrap(), "a b");
        assert_eq!(decode_bso_id("%2541").unwrap(), "%41");
    }

    #[test]
    fn decoded_id_longer_than_its_raw_form_allows_is_still_valid() {
        let id = format!("{}%2F", "x".repeat(63));
        assert_eq!(decode_bso_id(&id).unwrap().len(), 64);
    }

    #[test]
    fn invalid_after_decoding_is_400() {
        assert!(matches!(decode_bso_id("a%0Ab"), Err(ApiError::InvalidRequest(_))));
        assert!(matches!(decode_bso_id("tab%09id"), Err(ApiError::InvalidRequest(_))));
        assert!(matches!(decode_bso_id("%C3%A9"), Err(ApiError::InvalidRequest(_))));
    }

    #[test]
    fn invalid_raw_form_is_404() {
        assert!(matches!(decode_bso_id(&"x".repeat(65)), Err(ApiError::NotFound)));
        // 65 characters once decoded, and its raw form is too long as well.
        assert!(matches!(decode_bso_id(&format!("{}%2F", "x".repeat(64))), Err(ApiError::NotFound)));
    }
}
