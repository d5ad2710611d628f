//! BSO bodies: one object for PUT (storage-api.md §6.12), a list for POST (§6.8), in JSON
//! (`application/json`, `text/plain`) or, for POST only, `application/newlines`. Validates each
//! BSO against §3.1; a POST keeps the valid items and reports the others with a reason, after
//! REF's byte accounting (`retry bytes`) and count accounting (`retry bso`). Also checks the
//! POST's advisory `X-Weave-*` size headers (§6.8), before the body is looked at.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{FromRequest, HttpRequest};
use regex::Regex;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use weft_actors::shard::BsoInput;

use super::content_type::{body_format, BodyFormat};
use super::request_body::body;
use super::{app_state, is_valid_bso_id};
use crate::config::Limits;
use crate::web::error::ApiError;

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
    pub failed: Vec<(String, Cow<'static, str>)>,
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
    let element = parse_json(body, ElementSeed)?;
    let fields = element.validate(true).map_err(|reason| ApiError::InvalidBso(reason.into_owned()))?;
    if let Some(payload) = &fields.payload {
        if payload.len() as u64 > limits.max_record_payload_bytes {
            return Err(ApiError::InvalidBso("payload larger than max_record_payload_bytes".into()));
        }
        if has_known_bad_iv(collection, payload) {
            return Err(ApiError::InvalidBso("known-bad crypto IV".into()));
        }
    }
    Ok(BsoPutBody {
        sortindex: fields.sortindex,
        payload: fields.payload.map(Cow::into_owned),
        ttl: fields.ttl,
    })
}

/// A POST body. Whole-request rejections (400, body 8): not a list, a line or element that is
/// not a JSON object, an element without a string `id`, a duplicate id, a known-bad crypto IV.
/// Every other problem only fails its item.
///
/// Elements are validated and accounted one at a time as the parser reaches them, into compact
/// typed records: no tree of the whole body is ever built, so a body of many tiny elements
/// costs a small multiple of its size, and the first whole-request problem ends the parse.
pub fn parse_post_body(
    format: BodyFormat,
    body: &[u8],
    collection: &str,
    limits: &Limits,
) -> Result<BsoPostBody, ApiError> {
    let mut post = PostAccounting::new(collection, limits);
    match format {
        BodyFormat::Json => parse_json(body, ElementList(&mut post))?,
        BodyFormat::Newlines => {
            for line in newline_records(body)? {
                let element = parse_json(line, ElementSeed)?;
                post.add(element).map_err(|reason| ApiError::InvalidBso(reason.into_owned()))?;
            }
        }
    }
    Ok(BsoPostBody { bsos: post.bsos, failed: post.failed })
}

/// REF reports unparsable JSON with code 8, like any unusable body ([DIFF] §10.2: PY sent 6).
/// The whole text must be the one value (trailing whitespace only).
fn parse_json<'de, S: DeserializeSeed<'de>>(body: &'de [u8], seed: S) -> Result<S::Value, ApiError> {
    let invalid = |e: serde_json::Error| ApiError::InvalidBso(format!("invalid json: {e}"));
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = seed.deserialize(&mut deserializer).map_err(invalid)?;
    deserializer.end().map_err(invalid)?;
    Ok(value)
}

/// `application/newlines` (§6.8, REF's rule): `""` is zero items; otherwise a final `\n` does
/// not start a further line, a trailing `\r` is dropped from each line, and every line — empty
/// ones included — must be JSON. So `"\n"` is one empty line: 400, not zero items.
fn newline_records(body: &[u8]) -> Result<impl Iterator<Item = &[u8]>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::InvalidBso("body is not UTF-8".into()))?;
    let lines =
        if text.is_empty() { None } else { Some(text.strip_suffix('\n').unwrap_or(text).split('\n')) };
    Ok(lines.into_iter().flatten().map(|line| line.strip_suffix('\r').unwrap_or(line).as_bytes()))
}

fn has_known_bad_iv(collection: &str, payload: &str) -> bool {
    collection == "crypto" && KNOWN_BAD_IV.is_match(payload)
}

/// Why an item or a request is refused; mostly fixed texts, so a refused item costs no
/// allocation beyond its id.
type Reason = Cow<'static, str>;

/// The running state of a POST: REF's byte accounting (`retry bytes`) over the items that pass
/// validation, in body order, where a refused item's bytes stay in the running sum so every
/// later item is refused too (§13.22); then the count accounting (`retry bso`) refusing what
/// comes after `max_post_records` accepted items. Done per element, this is exactly the
/// outcome of doing the passes over the whole list.
struct PostAccounting<'de, 'a> {
    collection: &'a str,
    limits: &'a Limits,
    max_records: usize,
    seen: HashSet<Cow<'de, str>>,
    post_bytes: u64,
    bsos: Vec<BsoInput>,
    failed: Vec<(String, Reason)>,
}

impl<'de, 'a> PostAccounting<'de, 'a> {
    fn new(collection: &'a str, limits: &'a Limits) -> Self {
        PostAccounting {
            collection,
            limits,
            max_records: usize::try_from(limits.max_post_records).unwrap_or(usize::MAX),
            seen: HashSet::new(),
            post_bytes: 0,
            bsos: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// Takes one element; an error refuses the whole request.
    fn add(&mut self, element: Element<'de>) -> Result<(), Reason> {
        let Some(Scalar::Str(id)) = &element.id else {
            return Err("an element has no string id".into());
        };
        if !self.seen.insert(id.clone()) {
            return Err(format!("duplicate id {id:?}").into());
        }
        if let Some(Scalar::Str(payload)) = &element.payload {
            if has_known_bad_iv(self.collection, payload) {
                return Err("known-bad crypto IV".into());
            }
        }
        let id = id.to_string();
        match element.validate(false) {
            Err(reason) => self.failed.push((id, reason)),
            Ok(fields) => {
                let bytes = fields.payload.as_ref().map_or(0, |p| p.len() as u64);
                self.post_bytes += bytes;
                if bytes > self.limits.max_record_payload_bytes
                    || self.post_bytes > self.limits.max_post_bytes
                {
                    self.failed.push((id, "retry bytes".into()));
                } else if self.bsos.len() >= self.max_records {
                    self.failed.push((id, "retry bso".into()));
                } else {
                    self.bsos.push(BsoInput {
                        id,
                        sortindex: fields.sortindex,
                        payload: fields.payload.map(Cow::into_owned),
                        ttl: fields.ttl,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The top-level JSON list of a POST, each element handed to the accounting as it is parsed.
struct ElementList<'p, 'de, 'a>(&'p mut PostAccounting<'de, 'a>);

impl<'de> DeserializeSeed<'de> for ElementList<'_, 'de, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ElementList<'_, 'de, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(element) = seq.next_element_seed(ElementSeed)? {
            self.0.add(element).map_err(de::Error::custom)?;
        }
        Ok(())
    }
}

/// One BSO object as parsed: the last value of each recognised key (as a JSON object read into
/// a map keeps it), and the first unrecognised key in key order, which is all validation needs.
#[derive(Default)]
struct Element<'de> {
    id: Option<Scalar<'de>>,
    sortindex: Option<Scalar<'de>>,
    payload: Option<Scalar<'de>>,
    ttl: Option<Scalar<'de>>,
    unknown: Option<Cow<'de, str>>,
}

/// The validated fields of one BSO.
struct BsoFields<'de> {
    sortindex: Option<i32>,
    payload: Option<Cow<'de, str>>,
    ttl: Option<u32>,
}

impl<'de> Element<'de> {
    /// Checks the object against §3.1; the error is the item's reason (informational only).
    /// `null` for `sortindex`, `payload` or `ttl` is the key being absent ([DIFF] §3.1: REF and
    /// PY; PROTO says it resets). `modified` and `collection` are accepted and ignored. `"id":
    /// null` is accepted in a PUT body, whose URL names the BSO. When several keys are wrong,
    /// the first in key order gives the reason.
    fn validate(self, null_id_allowed: bool) -> Result<BsoFields<'de>, Reason> {
        let id_check = match &self.id {
            None => Ok(()),
            Some(Scalar::Null) if null_id_allowed => Ok(()),
            Some(Scalar::Str(id)) if is_valid_bso_id(id) => Ok(()),
            Some(_) => Err(Reason::from("invalid bso: invalid id")),
        };
        let sortindex = match self.sortindex {
            None | Some(Scalar::Null) => Ok(None),
            Some(value) => value
                .as_i64()
                .filter(|n| (-MAX_SORTINDEX..=MAX_SORTINDEX).contains(n))
                .and_then(|n| i32::try_from(n).ok())
                .map(Some)
                .ok_or(Reason::from("invalid bso: sortindex must be an integer within ±999999999")),
        };
        let payload = match self.payload {
            None | Some(Scalar::Null) => Ok(None),
            Some(Scalar::Str(payload)) => Ok(Some(payload)),
            Some(_) => Err(Reason::from("invalid bso: payload must be a string")),
        };
        let ttl = match self.ttl {
            None | Some(Scalar::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .filter(|n| *n <= MAX_TTL)
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or(Reason::from("invalid bso: ttl must be an integer within 0..999999999")),
        };
        let mut problems = [
            ("id", id_check.err()),
            ("payload", payload.as_ref().err().cloned()),
            ("sortindex", sortindex.as_ref().err().cloned()),
            ("ttl", ttl.as_ref().err().cloned()),
        ]
        .into_iter()
        .filter_map(|(key, problem)| problem.map(|p| (Cow::Borrowed(key), p)))
        .chain(self.unknown.map(|key| {
            let reason = format!("unknown field {key}").into();
            (key, reason)
        }))
        .collect::<Vec<_>>();
        problems.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some((_, reason)) = problems.into_iter().next() {
            return Err(reason);
        }
        Ok(BsoFields { sortindex: sortindex?, payload: payload?, ttl: ttl? })
    }
}

/// Parses one element; anything but a JSON object refuses the whole request.
struct ElementSeed;

impl<'de> DeserializeSeed<'de> for ElementSeed {
    type Value = Element<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Element<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ElementSeed {
    type Value = Element<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Element<'de>, A::Error> {
        let mut element = Element::default();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let slot = match key {
                Key::Id => &mut element.id,
                Key::Sortindex => &mut element.sortindex,
                Key::Payload => &mut element.payload,
                Key::Ttl => &mut element.ttl,
                Key::Ignored => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                Key::Unknown(name) => {
                    if element.unknown.as_ref().is_none_or(|first| name < *first) {
                        element.unknown = Some(name);
                    }
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value()?);
        }
        Ok(element)
    }
}

/// A key of a BSO object; an unknown one keeps its name for the item's reason.
enum Key<'de> {
    Id,
    Sortindex,
    Payload,
    Ttl,
    /// `modified` and `collection`: accepted, ignored.
    Ignored,
    Unknown(Cow<'de, str>),
}

impl<'de> Key<'de> {
    fn of(name: Cow<'de, str>) -> Key<'de> {
        match name.as_ref() {
            "id" => Key::Id,
            "sortindex" => Key::Sortindex,
            "payload" => Key::Payload,
            "ttl" => Key::Ttl,
            "modified" | "collection" => Key::Ignored,
            _ => Key::Unknown(name),
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::of(Cow::Borrowed(name)))
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Key<'de>, E> {
                Ok(Key::of(Cow::Owned(name.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// A field's JSON value, kept only as far as validation needs it: `null`, integers and strings
/// by value (strings borrowed from the body unless they hold escapes); any other value is
/// skipped without being built, however large or nested.
enum Scalar<'de> {
    Null,
    Int(i64),
    UInt(u64),
    Str(Cow<'de, str>),
    Other,
}

impl Scalar<'_> {
    /// The integer, if it is one that fits an i64 (as `serde_json::Value::as_i64`).
    fn as_i64(&self) -> Option<i64> {
        match self {
            Scalar::Int(n) => Some(*n),
            Scalar::UInt(n) => i64::try_from(*n).ok(),
            _ => None,
        }
    }

    /// The integer, if it is a non-negative one (as `serde_json::Value::as_u64`).
    fn as_u64(&self) -> Option<u64> {
        match self {
            Scalar::Int(n) => u64::try_from(*n).ok(),
            Scalar::UInt(n) => Some(*n),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Null)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Int(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::UInt(n))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other)
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Owned(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
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
        body.failed.iter().map(|(id, reason)| (id.as_str(), reason.as_ref())).collect()
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
        assert_eq!(failed(&result)[1], ("a", "retry bytes"));
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
    fn the_last_value_of_a_key_counts_and_nested_values_fail_their_item() {
        let body = post(
            r#"[{"id":"a","payload":1,"payload":"x"},{"id":"b","sortindex":[[1],{"x":[]}]},{"id":"c\u0041","zz":1,"aa":2,"ttl":"x"},{"id":5,"id":"d"}]"#,
        )
        .unwrap();
        assert_eq!(ids(&body), vec!["a", "d"]);
        assert_eq!(body.bsos[0].payload.as_deref(), Some("x"));
        assert_eq!(
            failed(&body),
            vec![
                ("b", "invalid bso: sortindex must be an integer within ±999999999"),
                ("cA", "unknown field aa")
            ]
        );
    }

    #[test]
    fn tiny_elements_without_ids_stop_at_the_first() {
        let body = "[".to_owned() + &vec![r#"{"a":0}"#; 300_000].join(",") + "]";
        assert!(invalid_bso(post(&body)));
        assert!(invalid_bso(post(r#"[{"id":"a"},{"id":"b"}"#)));
        assert!(invalid_bso(post(r#"[{"id":"a"}] x"#)));
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
