//! Query parameters of `GET /storage/{collection}` (storage-api.md §6.7) and of
//! `DELETE /storage/{collection}` (§6.10, where only `ids` counts). Every invalid value → 400
//! (body 0); unknown parameters are ignored.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use weft_actors::shard::{BsoQuery, Offset, Sort};
use weft_actors::SyncTimestamp;

use super::is_valid_bso_id;
use super::query::{decode_query, first};
use crate::web::error::ApiError;
use crate::web::wire::decode_offset;

/// At most this many ids in `ids=` (100 is fine, 101 is a 400; §13.9).
const MAX_IDS: usize = 100;

/// The filters of a collection GET.
pub struct CollectionQuery(pub BsoQuery);

/// `ids` of a collection DELETE: `None` deletes the whole collection. PROTO 1.5 dropped every
/// other DELETE filter (`newer`, `older`, …), so they are ignored even when invalid.
pub struct DeleteIds(pub Option<Vec<String>>);

impl FromRequest for CollectionQuery {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse_bso_query(&decode_query(req.query_string())).map(CollectionQuery))
    }
}

impl FromRequest for DeleteIds {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // [DIFF] §6.10/§14: `ids=` with no id left (empty, or only commas) is `Some([])`:
        // delete nothing and touch the collection, as PY did and §14 recommends. REF deletes
        // the whole collection there, an accident Firefox never triggers.
        ready(first(&decode_query(req.query_string()), "ids").map(parse_ids).transpose().map(DeleteIds))
    }
}

pub fn parse_bso_query(pairs: &[(String, String)]) -> Result<BsoQuery, ApiError> {
    let timestamp = |name: &str| {
        first(pairs, name).map(|v| SyncTimestamp::parse(v).ok_or_else(|| invalid(name, v))).transpose()
    };
    let query = BsoQuery {
        ids: first(pairs, "ids").map(parse_ids).transpose()?.unwrap_or_default(),
        newer: timestamp("newer")?,
        older: timestamp("older")?,
        sort: first(pairs, "sort").map(parse_sort).transpose()?.unwrap_or_default(),
        limit: first(pairs, "limit").map(parse_limit).transpose()?,
        offset: first(pairs, "offset").map(parse_offset).transpose()?,
        // Any value, including none at all (`?full`, `?full=`, `?full=0`), asks for full BSOs.
        full: first(pairs, "full").is_some(),
    };
    check_offset_window(&query)?;
    Ok(query)
}

/// Comma-separated ids: each trimmed, empty ones dropped, at most 100, each valid (§13.9).
pub fn parse_ids(value: &str) -> Result<Vec<String>, ApiError> {
    let ids: Vec<String> =
        value.split(',').map(str::trim).filter(|id| !id.is_empty()).map(str::to_owned).collect();
    if ids.len() > MAX_IDS {
        return Err(ApiError::InvalidRequest(format!("more than {MAX_IDS} ids")));
    }
    match ids.iter().find(|id| !is_valid_bso_id(id)) {
        Some(bad) => Err(invalid("ids", bad)),
        None => Ok(ids),
    }
}

fn parse_sort(value: &str) -> Result<Sort, ApiError> {
    match value {
        // REF also accepts `none` ("no explicit sort"); the default order is `newest` (§14).
        "newest" | "none" => Ok(Sort::Newest),
        "oldest" => Ok(Sort::Oldest),
        "index" => Ok(Sort::Index),
        other => Err(invalid("sort", other)),
    }
}

/// A non-negative integer that fits REF's u32.
fn parse_limit(value: &str) -> Result<u64, ApiError> {
    value.parse::<u32>().map(u64::from).map_err(|_| invalid("limit", value))
}

/// A token from `X-Weave-Next-Offset` (§6.7), in its wire form (`web::wire`).
fn parse_offset(value: &str) -> Result<Offset, ApiError> {
    decode_offset(value).ok_or_else(|| invalid("offset", value))
}

/// REF rejects a timestamp offset whose bound lies outside the request's own window: below
/// `newer`, or (without `newer`) above `older`; `sort=index` pages by rows and is exempt.
fn check_offset_window(query: &BsoQuery) -> Result<(), ApiError> {
    let Some(Offset::Timestamp { bound, .. }) = query.offset else { return Ok(()) };
    if query.sort == Sort::Index {
        return Ok(());
    }
    let outside = match (query.newer, query.older) {
        (Some(newer), _) => bound < newer,
        (None, Some(older)) => bound > older,
        (None, None) => false,
    };
    if outside {
        return Err(ApiError::InvalidRequest("offset outside newer/older".into()));
    }
    Ok(())
}

fn invalid(name: &str, value: &str) -> ApiError {
    ApiError::InvalidRequest(format!("invalid {name}: {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> Result<BsoQuery, ApiError> {
        parse_bso_query(&decode_query(text))
    }

    fn ts(ms: i64) -> SyncTimestamp {
        SyncTimestamp::from_millis(ms)
    }

    fn rejected(text: &str) -> bool {
        matches!(query(text), Err(ApiError::InvalidRequest(_)))
    }

    #[test]
    fn defaults() {
        let q = query("").unwrap();
        assert!(q.ids.is_empty() && q.newer.is_none() && q.older.is_none() && q.limit.is_none());
        assert!(q.offset.is_none() && !q.full);
        assert_eq!(q.sort, Sort::Newest);
    }

    #[test]
    fn unknown_and_empty_components_are_ignored() {
        let q = query("&limit=2&v=Firefox%2F153&&").unwrap();
        assert_eq!(q.limit, Some(2));
        assert_eq!(query("limit=2&").unwrap().limit, Some(2));
        assert_eq!(query("&limit=2").unwrap().limit, Some(2));
    }

    #[test]
    fn ids_are_split_trimmed_and_capped() {
        assert_eq!(query("ids=test-0%2Ctest-1").unwrap().ids, vec!["test-0", "test-1"]);
        assert_eq!(query("ids=1,").unwrap().ids, vec!["1"]);
        assert_eq!(query("ids=%20a%20,%20b").unwrap().ids, vec!["a", "b"]);
        assert_eq!(query("ids=a%20b").unwrap().ids, vec!["a b"]);
        let hundred: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        assert_eq!(query(&format!("ids={}", hundred.join(","))).unwrap().ids.len(), 100);
        let hundred_one: Vec<String> = (0..101).map(|i| i.to_string()).collect();
        assert!(rejected(&format!("ids={}", hundred_one.join(","))));
        assert!(rejected(&format!("ids={}", "x".repeat(65))));
        assert!(rejected("ids=a%09b"));
        assert!(rejected("ids=%C3%A9"));
    }

    #[test]
    fn newer_and_older_are_timestamps() {
        let q = query("newer=1454709541.42&older=1454709541.5").unwrap();
        assert_eq!(q.newer, Some(ts(1_454_709_541_420)));
        assert_eq!(q.older, Some(ts(1_454_709_541_500)));
        for bad in ["newer=-1", "newer=abc", "older=", "newer="] {
            assert!(rejected(bad), "{bad}");
        }
    }

    #[test]
    fn full_takes_any_value() {
        for text in ["full", "full=", "full=1", "full=true", "full=0"] {
            assert!(query(text).unwrap().full, "{text}");
        }
    }

    #[test]
    fn limit_is_a_non_negative_u32() {
        assert_eq!(query("limit=0").unwrap().limit, Some(0));
        assert_eq!(query("limit=4294967295").unwrap().limit, Some(4_294_967_295));
        for bad in ["limit=-1", "limit=1.5", "limit=abc", "limit=", "limit=4294967296"] {
            assert!(rejected(bad), "{bad}");
        }
    }

    #[test]
    fn sort_values() {
        assert_eq!(query("sort=newest").unwrap().sort, Sort::Newest);
        assert_eq!(query("sort=oldest").unwrap().sort, Sort::Oldest);
        assert_eq!(query("sort=index").unwrap().sort, Sort::Index);
        assert_eq!(query("sort=none").unwrap().sort, Sort::Newest);
        for bad in ["sort=", "sort=Newest", "sort=random"] {
            assert!(rejected(bad), "{bad}");
        }
    }

    #[test]
    fn offset_tokens() {
        assert_eq!(query("offset=53").unwrap().offset, Some(Offset::Rows(53)));
        assert_eq!(
            query("offset=1454709541420:1").unwrap().offset,
            Some(Offset::Timestamp { bound: ts(1_454_709_541_420), skip: 1 })
        );
        assert_eq!(
            query("offset=3800%3A2").unwrap().offset,
            Some(Offset::Timestamp { bound: ts(3_800), skip: 2 })
        );
        for bad in
            ["offset=", "offset=-1", "offset=abc", "offset=1:", "offset=:1", "offset=1:2:3", "offset=1:-2"]
        {
            assert!(rejected(bad), "{bad}");
        }
    }

    #[test]
    fn offset_bound_must_lie_in_the_window() {
        assert!(rejected("newer=5.00&offset=4000:1"));
        assert!(query("newer=5.00&offset=5000:1").is_ok());
        assert!(query("newer=5.00&offset=6000:1").is_ok());
        assert!(rejected("older=5.00&offset=6000:1"));
        assert!(query("older=5.00&offset=5000:1").is_ok());
        // With `newer` present only `newer` is compared (REF).
        assert!(query("newer=1.00&older=5.00&offset=6000:1").is_ok());
        assert!(query("sort=index&newer=5.00&offset=4000:1").is_ok());
        assert!(query("newer=5.00&offset=4").is_ok());
    }

    #[test]
    fn delete_ids() {
        let ids = |text: &str| first(&decode_query(text), "ids").map(parse_ids).transpose();
        assert_eq!(ids("").unwrap(), None);
        assert_eq!(ids("ids=").unwrap(), Some(vec![]));
        assert_eq!(ids("ids=,,").unwrap(), Some(vec![]));
        assert_eq!(ids("ids=a,b&newer=garbage").unwrap(), Some(vec!["a".to_string(), "b".to_string()]));
    }
}
