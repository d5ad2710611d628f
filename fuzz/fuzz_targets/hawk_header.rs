//! The `Authorization: Hawk …` parser and what follows from a parsed header: the normalized
//! request string, the MAC check, the payload-hash check. None may panic; a header the parser
//! accepts has the four required attributes and a decimal `ts`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_actors::token_verifier::hawk::{check_payload_hash, normalized_string, parse_header, verify_mac};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(header) = parse_header(text) else { return };
    assert!(!header.ts.is_empty() && header.ts.bytes().all(|b| b.is_ascii_digit()));
    let normalized = normalized_string(&header, "post", "/1.5/1/storage/x?a=b", "localhost", 8000);
    assert!(normalized.starts_with("hawk.1.header\n"));
    let _ = verify_mac("key", &normalized, &header.mac);
    let _ = check_payload_hash(header.hash.as_deref(), text, data);
});
