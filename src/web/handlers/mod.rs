//! Request handlers, one module per resource of storage-api.md §6, and the helpers that write
//! protocol JSON. Timestamps in bodies are written as raw JSON numbers with exactly two
//! decimals (`1.50`, not `1.5`; §3.1, §13.30), which a float serializer would not keep.

pub mod bso;
pub mod collection;
pub mod health;
pub mod info;
mod json_string;
pub mod storage;

use std::collections::BTreeMap;
use std::io::Write;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder};
use weft_actors::shard::Bso;
use weft_actors::SyncTimestamp;

use self::json_string::push_json_string;
use crate::web::error::X_LAST_MODIFIED;

const APPLICATION_JSON: &str = "application/json";
const X_WEAVE_RECORDS: &str = "x-weave-records";
const X_WEAVE_NEXT_OFFSET: &str = "x-weave-next-offset";
const X_WEAVE_QUOTA_REMAINING: &str = "x-weave-quota-remaining";

/// A successful storage response: every one carries `X-Last-Modified` (§5.3).
fn storage_response(status: StatusCode, last_modified: SyncTimestamp) -> HttpResponseBuilder {
    let mut response = HttpResponse::build(status);
    response.insert_header((X_LAST_MODIFIED, last_modified.to_string()));
    response
}

/// `X-Weave-Quota-Remaining`, in KB with two decimals (§8), when the shard reports one.
fn quota_remaining_header(response: &mut HttpResponseBuilder, quota_remaining: Option<u64>) {
    if let Some(bytes) = quota_remaining {
        response.insert_header((X_WEAVE_QUOTA_REMAINING, format!("{:.2}", bytes as f64 / 1024.0)));
    }
}

/// `text` as a JSON string literal, escaped straight from the `&str` (no copy into a `Value`:
/// payloads run to megabytes).
fn json_string(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len() + 2);
    push_json_string(&mut out, text);
    String::from_utf8(out).unwrap_or_else(|_| String::from("\"\""))
}

/// A BSO with REF's key order `id`, `modified`, `payload`, `sortindex`; `sortindex` omitted
/// when never set (§3.1).
fn bso_json(bso: &Bso) -> String {
    let mut out = Vec::with_capacity(bso.payload.len() + bso.id.len() + 64);
    push_bso_json(&mut out, bso);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends a BSO as `bso_json` writes it, so that a page of them is built in one buffer.
fn push_bso_json(out: &mut Vec<u8>, bso: &Bso) {
    out.extend_from_slice(b"{\"id\":");
    push_json_string(out, &bso.id);
    let _ = write!(out, ",\"modified\":{},\"payload\":", bso.modified);
    push_json_string(out, &bso.payload);
    if let Some(sortindex) = bso.sortindex {
        let _ = write!(out, ",\"sortindex\":{sortindex}");
    }
    out.push(b'}');
}

/// `{"name":1454709541.42,…}`.
fn timestamps_json(map: &BTreeMap<String, SyncTimestamp>) -> String {
    let entries: Vec<String> = map.iter().map(|(name, ts)| format!("{}:{ts}", json_string(name))).collect();
    format!("{{{}}}", entries.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bso_keys_in_ref_order_with_two_decimals() {
        let bso = Bso {
            id: "-F_Szdjg3GzX".into(),
            modified: SyncTimestamp::from_millis(1_388_635_807_400),
            payload: "{\"ciphertext\":\"…\"}".into(),
            sortindex: Some(140),
        };
        assert_eq!(
            bso_json(&bso),
            r#"{"id":"-F_Szdjg3GzX","modified":1388635807.40,"payload":"{\"ciphertext\":\"…\"}","sortindex":140}"#
        );
        let bare =
            Bso { id: "a\"b".into(), modified: SyncTimestamp::ZERO, payload: String::new(), sortindex: None };
        assert_eq!(bso_json(&bare), r#"{"id":"a\"b","modified":0.00,"payload":""}"#);
    }

    #[test]
    fn timestamp_maps_keep_two_decimals() {
        let mut map = BTreeMap::new();
        map.insert("bookmarks".to_string(), SyncTimestamp::from_millis(1_500));
        map.insert("meta".to_string(), SyncTimestamp::from_millis(1_454_702_033_870));
        assert_eq!(timestamps_json(&map), r#"{"bookmarks":1.50,"meta":1454702033.87}"#);
        assert_eq!(timestamps_json(&BTreeMap::new()), "{}");
    }

    #[test]
    fn quota_remaining_in_kb() {
        let mut response = HttpResponse::Ok();
        quota_remaining_header(&mut response, Some(1536));
        assert_eq!(response.finish().headers().get(X_WEAVE_QUOTA_REMAINING).unwrap(), "1.50");
    }
}
