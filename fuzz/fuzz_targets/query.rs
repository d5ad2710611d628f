//! Query strings of the storage routes: percent-decoding, the collection query (§6.7), the
//! batch parameters (§6.9) and id lists. None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft::web::extract::batch_params::parse_batch_params;
use weft::web::extract::collection_query::{parse_bso_query, parse_ids};
use weft::web::extract::query::decode_query;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let pairs = decode_query(text);
    let _ = parse_bso_query(&pairs);
    let _ = parse_batch_params(&pairs);
    for (_, value) in &pairs {
        let _ = parse_ids(value);
    }
});
