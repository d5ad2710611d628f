//! BSO bodies (storage-api.md §6.8, §6.12): the first byte picks PUT or POST, JSON or
//! newlines, and the collection; the rest is the body. None may panic, and an accepted POST
//! keeps the protocol's invariants: at most `max_post_records` items, distinct valid ids, and
//! no more payload bytes than `max_post_bytes`.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use weft::config::Limits;
use weft::web::extract::bso_body::{parse_post_body, parse_put_body};
use weft::web::extract::content_type::BodyFormat;
use weft::web::extract::is_valid_bso_id;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let format = if selector & 1 == 0 { BodyFormat::Json } else { BodyFormat::Newlines };
    let collection = if selector & 2 == 0 { "bookmarks" } else { "crypto" };
    // Small limits so that the accounting is exercised by small inputs.
    let limits = Limits { max_post_records: 5, max_post_bytes: 64, max_record_payload_bytes: 32, ..Limits::default() };
    if selector & 4 == 0 {
        let _ = parse_put_body(format, body, collection, &limits);
        return;
    }
    let Ok(post) = parse_post_body(format, body, collection, &limits) else { return };
    assert!(post.bsos.len() as u64 <= limits.max_post_records);
    let mut ids = HashSet::new();
    let mut bytes = 0;
    for bso in &post.bsos {
        assert!(is_valid_bso_id(&bso.id), "{:?}", bso.id);
        assert!(ids.insert(bso.id.as_str()), "duplicate {:?}", bso.id);
        bytes += bso.payload.as_ref().map_or(0, String::len) as u64;
    }
    assert!(bytes <= limits.max_post_bytes);
    for (id, _) in &post.failed {
        assert!(ids.insert(id.as_str()), "failed id also accepted or duplicated: {id:?}");
    }
});
