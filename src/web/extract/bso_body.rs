//! BSO bodies: one object for PUT (storage-api.md §6.12), a list for POST (§6.8), in JSON
//! (`application/json`, `text/plain`) or, for POST only, `application/newlines`. Validates each
//! BSO against §3.1; a POST keeps the valid items and reports the others with a reason, after
//! REF's byte accounting (`retry bytes`) and count accounting (`retry bso`). Also checks the
//! POST's advisory `X-Weave-*` size headers (§6.8), before the body is looked at.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{FromRequest, HttpRequest};
use regex::Regex;
use serde_json::{Map, Value};
use weft_actors::shard::BsoInput;

use super::content_type::{body_format, BodyFormat};
use super::request_body::body;
use super::{app_state, is_valid_bso_id};
use crate::config::Limits;
use crate::error::ApiError;

/// `sortindex` range, inclusive (§3.1).
const MAX_SORTINDEX: i64 = 999_999_999;
/// `ttl` range, inclusive (§3.1).
const MAX_TTL: u64 = 999_999_999;

/// A client bug signature: an all-zero IV in the `crypto` collection (§6.8). Both references
/// reject the whole request.
static KNOWN_BAD_IV: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"IV":\s*"AAAAAAAAAAAAAAAAAAAAAA=="#).expect("constant regex"));

/// The fields of a PUT body. The id in the URL is authoritative; an `id` in the body must be
/// valid but is otherwise ignored.
#[derive(Debug, PartialEq, Eq)]
pub struct BsoPutBody {
    pub sortindex: Option<i32>,
    pub payload: Option<String>,
    pub ttl: Option<u32>,
}

impl BsoPutBody {
    pub fn into_input(self, id: String) -> BsoInput {
        BsoInput { id, sortindex: self.sortindex, payload: self.payload, ttl: self.ttl }
    }
}

/// A POST body: the items to write, in body order, and the items refused with their reason.
#[derive(Debug, PartialEq, Eq)]
pub struct BsoPostBody {
    pub bsos: Vec<BsoInput>,
    pub failed: Vec<(String, String)>,
}

type BodyFuture<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

impl FromRequest for BsoPutBody {
    type Error = ApiError;
    type Future = BodyFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let format = body_format(req.headers().get(header::CONTENT_TYPE))?;
            let body = body(&req)?;
            let limits = &app_state(&req)?.settings.limits;
            parse_put_body(format, &body, collection(&req), limits)
        })
    }
}

impl FromRequest for BsoPostBody {
    type Error = ApiError;
    type Future = BodyFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let limits = &app_state(&req)?.settings.limits;
            check_size_limit_headers(req.headers(), limits)?;
            let format = body_format(req.headers().get(header::CONTENT_TYPE))?;
            let body = body(&req)?;
            parse_post_body(format, &body, collection(&req), limits)
        })
    }
}

fn collection(req: &HttpRequest) -> &str {
    req.match_info().get("collection").unwrap_or_default()
}

/// `X-Weave-Records`, `X-Weave-Bytes`, `X-Weave-Total-Records`, `X-Weave-Total-Bytes`: each,
/// when present, a non-negative integer (else 400, body 0) within its limit, inclusive (else
/// 400, body 17). [DIFF] §6.8: like both references, all four are checked on every POST,
/// batch or not.
pub fn check_size_limit_headers(headers: &HeaderMap, limits: &Limits) -> Result<(), ApiError> {
    let checks = [
        ("x-weave-records", limits.max_post_records),
        ("x-weave-bytes", limits.max_post_bytes),
        ("x-weave-total-records", limits.max_total_records),
        ("x-weave-total-bytes", limits.max_total_bytes),
    ];
    for (name, limit) in checks {
        let Some(value) = headers.get(name) else { continue };
        let announced: u64 = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| ApiError::InvalidRequest(format!("invalid {name}")))?;
        if announced > limit {
            return Err(ApiError::SizeLimitExceeded(format!("{name} {announced} > {limit}")));
        }
    }
    Ok(())
}

/// A PUT body: one JSON object. Anything unusable → 400, body 8, including a payload over
/// `max_record_payload_bytes` ([DIFF] §6.12: both references say 400/8 where PROTO hints 413).
pub fn parse_put_body(
    format: BodyFormat,
    body: &[u8],
    collection: &str,
    limits: &Limits,
) -> Result<BsoPutBody, ApiError> {
    // REF rejects `application/newlines` on PUT as an invalid body, not as a media type (§5.1).
    if format == BodyFormat::Newlines {
        return Err(ApiError::InvalidBso("application/newlines is not a PUT body".into()));
    }
    let Value::Object(object) = parse_json(body)? else {
        return Err(ApiError::InvalidBso("not a JSON object".into()));
    };
    let fields = validate_fields(&object).map_err(ApiError::InvalidBso)?;
    if let Some(payload) = &fields.payload {
        if payload.len() as u64 > limits.max_record_payload_bytes {
            return Err(ApiError::InvalidBso("payload larger than max_record_payload_bytes".into()));
        }
        reject_known_bad_iv(collection, payload)?;
    }
    Ok(BsoPutBody { sortindex: fields.sortindex, payload: fields.payload, ttl: fields.ttl })
}

/// A POST body. Whole-request rejections (400, body 8): not a list, a line or element that is
/// not a JSON object, an element without a string `id`, a duplicate id, a known-bad crypto IV.
/// Every other problem only fails its item.
pub fn parse_post_body(
    format: BodyFormat,
    body: &[u8],
    collection: &str,
    limits: &Limits,
) -> Result<BsoPostBody, ApiError> {
    let elements = match format {
        BodyFormat::Json => match parse_json(body)? {
            Value::Array(elements) => elements,
            _ => return Err(ApiError::InvalidBso("not a JSON list".into())),
        },
        BodyFormat::Newlines => parse_newlines(body)?,
    };

    let mut seen = HashSet::new();
    let mut items = Vec::with_capacity(elements.len());
    for element in elements {
        let Value::Object(object) = element else {
            return Err(ApiError::InvalidBso("an element is not a JSON object".into()));
        };
        let Some(Value::String(id)) = object.get("id") else {
            return Err(ApiError::InvalidBso("an element has no string id".into()));
        };
        if !seen.insert(id.clone()) {
            return Err(ApiError::InvalidBso(format!("duplicate id {id:?}")));
        }
        if let Some(Value::String(payload)) = object.get("payload") {
            reject_known_bad_iv(collection, payload)?;
        }
        items.push((id.clone(), object));
    }

    // Byte accounting over the items that pass validation, in body order (REF): the running sum
    // keeps a refused item's bytes, so every later item is refused too (§13.22).
    let mut bsos = Vec::with_capacity(items.len());
    let mut failed = Vec::new();
    let mut post_bytes: u64 = 0;
    for (id, object) in items {
        match validate_fields(&object) {
            Err(reason) => failed.push((id, reason)),
            Ok(fields) => {
                let bytes = fields.payload.as_ref().map_or(0, |p| p.len() as u64);
                post_bytes += bytes;
                if bytes > limits.max_record_payload_bytes || post_bytes > limits.max_post_bytes {
                    failed.push((id, "retry bytes".to_owned()));
                } else {
                    bsos.push(BsoInput {
                        id,
                        sortindex: fields.sortindex,
                        payload: fields.payload,
                        ttl: fields.ttl,
                    });
                }
            }
        }
    }
    // Count accounting after the byte pass: the excess at the end is refused.
    let max_records = usize::try_from(limits.max_post_records).unwrap_or(usize::MAX);
    if bsos.len() > max_records {
        failed.extend(bsos.split_off(max_records).into_iter().map(|bso| (bso.id, "retry bso".to_owned())));
    }
    Ok(BsoPostBody { bsos, failed })
}

/// REF reports unparsable JSON with code 8, like any unusable body ([DIFF] §10.2: PY sent 6).
fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::InvalidBso(format!("invalid json: {e}")))
}

/// `application/newlines` (§6.8, REF's rule): `""` is zero items; otherwise a final `\n` does
/// not start a further line, a trailing `\r` is dropped from each line, and every line — empty
/// ones included — must be JSON. So `"\n"` is one empty line: 400, not zero items.
fn parse_newlines(body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::InvalidBso("body is not UTF-8".into()))?;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .map(|line| parse_json(line.strip_suffix('\r').unwrap_or(line).as_bytes()))
        .collect()
}

fn reject_known_bad_iv(collection: &str, payload: &str) -> Result<(), ApiError> {
    if collection == "crypto" && KNOWN_BAD_IV.is_match(payload) {
        return Err(ApiError::InvalidBso("known-bad crypto IV".into()));
    }
    Ok(())
}

/// The recognised keys of one BSO, validated.
struct BsoFields {
    sortindex: Option<i32>,
    payload: Option<String>,
    ttl: Option<u32>,
}

/// Checks one BSO object against §3.1; the error is the item's reason (informational only).
/// `null` for `sortindex`, `payload` or `ttl` is the key being absent ([DIFF] §3.1: REF and PY;
/// PROTO says it resets). `modified` and `collection` are accepted and ignored.
fn validate_fields(object: &Map<String, Value>) -> Result<BsoFields, String> {
    let mut fields = BsoFields { sortindex: None, payload: None, ttl: None };
    for (key, value) in object {
        match (key.as_str(), value) {
            ("modified" | "collection", _) | ("sortindex" | "payload" | "ttl", Value::Null) => {}
            ("id", Value::String(id)) if is_valid_bso_id(id) => {}
            // A PUT body may carry `"id": null`; a POST element never gets here without a string id.
            ("id", Value::Null) => {}
            ("id", _) => return Err("invalid bso: invalid id".into()),
            ("sortindex", _) => {
                let sortindex = value
                    .as_i64()
                    .filter(|n| (-MAX_SORTINDEX..=MAX_SORTINDEX).contains(n))
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or("invalid bso: sortindex must be an integer within ±999999999")?;
                fields.sortindex = Some(sortindex);
            }
            ("payload", Value::String(payload)) => fields.payload = Some(payload.clone()),
            ("payload", _) => return Err("invalid bso: payload must be a string".into()),
            ("ttl", _) => {
                let ttl = value
                    .as_u64()
                    .filter(|n| *n <= MAX_TTL)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or("invalid bso: ttl must be an integer within 0..999999999")?;
                fields.ttl = Some(ttl);
            }
            (other, _) => return Err(format!("unknown field {other}")),
        }
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn limits() -> Limits {
        Limits::default()
    }

    fn small_limits(max_post_records: u64, max_post_bytes: u64, max_record_payload_bytes: u64) -> Limits {
        Limits { max_post_records, max_post_bytes, max_record_payload_bytes, ..Limits::default() }
    }

    fn put(body: &str) -> Result<BsoPutBody, ApiError> {
        parse_put_body(BodyFormat::Json, body.as_bytes(), "bookmarks", &limits())
    }

    fn post(body: &str) -> Result<BsoPostBody, ApiError> {
        parse_post_body(BodyFormat::Json, body.as_bytes(), "bookmarks", &limits())
    }

    fn newlines(body: &str) -> Result<BsoPostBody, ApiError> {
        parse_post_body(BodyFormat::Newlines, body.as_bytes(), "bookmarks", &limits())
    }

    fn ids(body: &BsoPostBody) -> Vec<&str> {
        body.bsos.iter().map(|b| b.id.as_str()).collect()
    }

    fn failed(body: &BsoPostBody) -> Vec<(&str, &str)> {
        body.failed.iter().map(|(id, reason)| (id.as_str(), reason.as_str())).collect()
    }

    fn invalid_bso<T: std::fmt::Debug>(result: Result<T, ApiError>) -> bool {
        matches!(result, Err(ApiError::InvalidBso(_)))
    }

    #[test]
    fn put_reads_every_field() {
        let body = put(
            r#"{"id":"ignored","payload":"x","sortindex":-5,"ttl":3600,"modified":1.5,"collection":"c"}"#,
        );
        assert_eq!(
            body.unwrap(),
            BsoPutBody { sortindex: Some(-5), payload: Some("x".into()), ttl: Some(3600) }
        );
        let input = put(r#"{"ttl":10}"#).unwrap().into_input("a/b".into());
        assert_eq!(input, BsoInput { id: "a/b".into(), sortindex: None, payload: None, ttl: Some(10) });
    }

    #[test]
    fn null_means_absent() {
        let body = put(r#"{"payload":null,"sortindex":null,"ttl":null,"id":null}"#).unwrap();
        assert_eq!(body, BsoPutBody { sortindex: None, payload: None, ttl: None });
    }

    #[test]
    fn put_rejects_invalid_bodies_with_8() {
        for body in [
            "",
            "[]",
            "\"x\"",
            "{",
            r#"{"payload":42}"#,
            r#"{"sortindex":"12"}"#,
            r#"{"sortindex":2.6}"#,
            r#"{"sortindex":1000000000}"#,
            r#"{"ttl":"4"}"#,
            r#"{"ttl":-1}"#,
            r#"{"ttl":1000000000}"#,
            r#"{"id":"A\n"}"#,
            r#"{"id":""}"#,
            r#"{"id":42}"#,
            r#"{"foo":1}"#,
        ] {
            assert!(invalid_bso(put(body)), "{body:?} should be refused");
        }
        let newline_put = parse_put_body(BodyFormat::Newlines, b"{}", "bookmarks", &limits());
        assert!(invalid_bso(newline_put));
    }

    #[test]
    fn field_ranges_are_inclusive() {
        assert_eq!(put(r#"{"sortindex":999999999}"#).unwrap().sortindex, Some(999_999_999));
        assert_eq!(put(r#"{"sortindex":-999999999}"#).unwrap().sortindex, Some(-999_999_999));
        assert!(invalid_bso(put(r#"{"sortindex":-1000000000}"#)));
        assert_eq!(put(r#"{"ttl":0}"#).unwrap().ttl, Some(0));
        assert_eq!(put(r#"{"ttl":999999999}"#).unwrap().ttl, Some(999_999_999));
        assert!(put(&format!(r#"{{"id":"{}"}}"#, "x".repeat(64))).is_ok());
        assert!(invalid_bso(put(&format!(r#"{{"id":"{}"}}"#, "x".repeat(65)))));
    }

    #[test]
    fn put_payload_limit_counts_utf8_bytes() {
        let limits = small_limits(100, 10, 4);
        assert!(parse_put_body(BodyFormat::Json, r#"{"payload":"abcd"}"#.as_bytes(), "c", &limits).is_ok());
        assert!(invalid_bso(parse_put_body(
            BodyFormat::Json,
            r#"{"payload":"ééé"}"#.as_bytes(),
            "c",
            &limits
        )));
    }

    #[test]
    fn known_bad_iv_only_in_crypto() {
        let body = r#"{"payload":"{\"IV\": \"AAAAAAAAAAAAAAAAAAAAAA==\"}"}"#;
        assert!(invalid_bso(parse_put_body(BodyFormat::Json, body.as_bytes(), "crypto", &limits())));
        assert!(parse_put_body(BodyFormat::Json, body.as_bytes(), "bookmarks", &limits()).is_ok());
        let list = r#"[{"id":"keys","payload":"{\"IV\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}"}]"#;
        assert!(invalid_bso(parse_post_body(BodyFormat::Json, list.as_bytes(), "crypto", &limits())));
        let good = r#"[{"id":"keys","payload":"{\"IV\":\"AAAAAAAAAAAAAAAAAAAAAB==\"}"}]"#;
        assert!(parse_post_body(BodyFormat::Json, good.as_bytes(), "crypto", &limits()).is_ok());
    }

    #[test]
    fn post_json_must_be_a_list() {
        assert_eq!(post("[]").unwrap(), BsoPostBody { bsos: vec![], failed: vec![] });
        for body in ["{}", "", "\"x\"", "42", "[", "null"] {
            assert!(invalid_bso(post(body)), "{body:?}");
        }
    }

    #[test]
    fn whole_request_rejections() {
        for body in [
            r#"[{"id":"a"}, 5]"#,
            r#"[{"id":"a"}, []]"#,
            r#"[{"payload":"x"}]"#,
            r#"[{"id":42}]"#,
            r#"[{"id":null}]"#,
            r#"[{"id":"a"},{"id":"a","payload":"y"}]"#,
        ] {
            assert!(invalid_bso(post(body)), "{body:?}");
        }
    }

    #[test]
    fn per_item_failures_keep_the_rest() {
        let body = post(
            r#"[{"id":"a","payload":"x"},{"id":"b","ttl":-1},{"id":"c","foo":1},{"id":"A\n"},{"id":"d","sortindex":"1"},{"id":"e","modified":1,"collection":"x"}]"#,
        )
        .unwrap();
        assert_eq!(ids(&body), vec!["a", "e"]);
        let reasons = failed(&body);
        assert_eq!(reasons.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec!["b", "c", "A\n", "d"]);
        assert_eq!(reasons[1].1, "unknown field foo");
        assert!(reasons
            .iter()
            .all(|(_, r)| r.starts_with("invalid bso: ") || r.starts_with("unknown field")));
    }

    #[test]
    fn byte_accounting_keeps_the_refused_bytes() {
        let limits = small_limits(100, 10, 10);
        let body = r#"[{"id":"a","payload":"1234"},{"id":"b","payload":"1234567"},{"id":"c","payload":"1"},{"id":"d"}]"#;
        let result = parse_post_body(BodyFormat::Json, body.as_bytes(), "c", &limits).unwrap();
        assert_eq!(ids(&result), vec!["a"]);
        assert_eq!(failed(&result), vec![("b", "retry bytes"), ("c", "retry bytes"), ("d", "retry bytes")]);
    }

    #[test]
    fn byte_accounting_skips_invalid_items_and_checks_each_record() {
        let limits = small_limits(100, 10, 3);
        let body = r#"[{"id":"x","payload":5},{"id":"a","payload":"1234"},{"id":"b","payload":"123"}]"#;
        let result = parse_post_body(BodyFormat::Json, body.as_bytes(), "c", &limits).unwrap();
        assert_eq!(ids(&result), vec!["b"]);
        assert_eq!(result.failed[1], ("a".to_string(), "retry bytes".to_string()));
        let exact = r#"[{"id":"a","payload":"12345"},{"id":"b","payload":"12345"}]"#;
        let result =
            parse_post_body(BodyFormat::Json, exact.as_bytes(), "c", &small_limits(100, 10, 10)).unwrap();
        assert_eq!(ids(&result), vec!["a", "b"]);
    }

    #[test]
    fn count_accounting_refuses_the_tail() {
        let limits = small_limits(2, 100, 100);
        let body = r#"[{"id":"a"},{"id":"b","ttl":-1},{"id":"c"},{"id":"d"},{"id":"e"}]"#;
        let result = parse_post_body(BodyFormat::Json, body.as_bytes(), "c", &limits).unwrap();
        assert_eq!(ids(&result), vec!["a", "c"]);
        assert_eq!(&failed(&result)[1..], &[("d", "retry bso"), ("e", "retry bso")]);
    }

    #[test]
    fn newline_bodies() {
        assert_eq!(newlines("").unwrap().bsos.len(), 0);
        assert!(invalid_bso(newlines("\n")));
        assert!(invalid_bso(newlines("{}")));
        assert!(invalid_bso(newlines("[]")));
        assert_eq!(ids(&newlines("{\"id\":\"a\"}").unwrap()), vec!["a"]);
        assert_eq!(ids(&newlines("{\"id\":\"a\"}\n{\"id\":\"b\"}\n").unwrap()), vec!["a", "b"]);
        assert_eq!(ids(&newlines("{\"id\":\"a\"}\r\n{\"id\":\"b\"}\r\n").unwrap()), vec!["a", "b"]);
        assert!(invalid_bso(newlines("{\"id\":\"a\"}\n\n")));
        assert!(invalid_bso(newlines("{\"id\":\"a\"}\n\n{\"id\":\"b\"}")));
        assert!(invalid_bso(newlines("{\"id\":\"a\"}\nnot json")));
        assert!(invalid_bso(parse_post_body(BodyFormat::Newlines, b"\xff", "c", &limits())));
    }

    #[test]
    fn json_edge_bodies() {
        assert!(post("[]").is_ok());
        assert!(invalid_bso(post("{}")));
        assert!(invalid_bso(post("")));
    }

    fn headers(list: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in list {
            map.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn size_limit_headers() {
        let limits = limits();
        assert!(check_size_limit_headers(&headers(&[]), &limits).is_ok());
        let at_limits = headers(&[
            ("x-weave-records", "100"),
            ("x-weave-bytes", "2621440"),
            ("x-weave-total-records", "10000"),
            ("x-weave-total-bytes", "262144000"),
        ]);
        assert!(check_size_limit_headers(&at_limits, &limits).is_ok());
        for over in [
            ("x-weave-records", "101"),
            ("x-weave-bytes", "2621441"),
            ("x-weave-total-records", "10001"),
            ("x-weave-total-bytes", "262144001"),
        ] {
            let result = check_size_limit_headers(&headers(&[over]), &limits);
            assert!(matches!(result, Err(ApiError::SizeLimitExceeded(_))), "{over:?}");
        }
        for bad in ["-1", "abc", "1.5", ""] {
            let result = check_size_limit_headers(&headers(&[("x-weave-records", bad)]), &limits);
            assert!(matches!(result, Err(ApiError::InvalidRequest(_))), "{bad:?}");
        }
    }
}
