//! The wire forms of the two continuation values the storage protocol hands to clients and
//! reads back (storage-api.md §6.7, §6.9): batch ids and `X-Weave-Next-Offset` tokens. The shard
//! works with numbers; this module is the one place that encodes and decodes their text.

use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use weft_actors::shard::Offset;
use weft_actors::SyncTimestamp;

/// Standard alphabet, as REF issues ids; ids arriving without their `=` padding are accepted
/// too.
const BATCH_ID_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The batch id as clients see it: standard base64 of its decimal digits, which only ever
/// yields letters, digits and `=` — safe to append to a query string unencoded (REF's format).
pub fn encode_batch_id(batch: i64) -> String {
    BATCH_ID_BASE64.encode(batch.to_string())
}

/// Like both references: base64 first, then the raw value, as a decimal number.
pub fn decode_batch_id(value: &str) -> Option<i64> {
    let decimal = |text: &str| text.parse::<u64>().ok().and_then(|n| i64::try_from(n).ok());
    BATCH_ID_BASE64
        .decode(value)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| decimal(&text))
        .or_else(|| decimal(value))
}

/// REF's token: `N` (skip N rows, `sort=index`) or `<bound_ms>:<skip>`. Only digits and `:` —
/// safe unencoded in a query string.
pub fn encode_offset(offset: Offset) -> String {
    match offset {
        Offset::Rows(n) => n.to_string(),
        Offset::Timestamp { bound, skip } => format!("{}:{skip}", bound.as_millis()),
    }
}

pub fn decode_offset(value: &str) -> Option<Offset> {
    let number = |text: &str| text.parse::<u64>().ok();
    match value.split_once(':') {
        None => number(value).map(Offset::Rows),
        Some((bound, skip)) => number(bound)
            .and_then(|bound| i64::try_from(bound).ok())
            .zip(number(skip))
            .map(|(bound, skip)| Offset::Timestamp { bound: SyncTimestamp::from_millis(bound), skip }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_ids_are_query_safe_base64_of_digits() {
        assert_eq!(encode_batch_id(1_536_198_976_921), "MTUzNjE5ODk3NjkyMQ==");
        let id = encode_batch_id(9_999_999_999_999);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'='), "{id}");
        for n in [1, 12, 123, 9_999_999_999_999, 1_536_198_976_929] {
            assert_eq!(decode_batch_id(&encode_batch_id(n)), Some(n));
        }
        assert_eq!(decode_batch_id("MTUzNjE5ODk3NjkyMQ"), Some(1_536_198_976_921));
        assert_eq!(decode_batch_id("1536198976921"), Some(1_536_198_976_921));
        assert_eq!(decode_batch_id("YWJj"), None);
    }

    #[test]
    fn offsets_round_trip() {
        let offsets = [
            Offset::Rows(0),
            Offset::Rows(53),
            Offset::Timestamp { bound: SyncTimestamp::from_millis(1_454_709_541_420), skip: 1 },
        ];
        for offset in offsets {
            assert_eq!(decode_offset(&encode_offset(offset)), Some(offset));
        }
        assert_eq!(encode_offset(offsets[2]), "1454709541420:1");
        for bad in ["", "-1", "abc", "1:", ":1", "1:2:3", "1:-2"] {
            assert_eq!(decode_offset(bad), None, "{bad:?}");
        }
    }
}
