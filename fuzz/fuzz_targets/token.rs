//! Token strings (tokens-and-hawk.md §3): base64url decoding, the signature check, and the
//! payload parser (fed both through the signature check and directly, as if a signature had
//! verified). None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_actors::token_verifier::token::{parse_payload, signing_secret, verify_token_signature};

fuzz_target!(|data: &[u8]| {
    let secret = signing_secret("fuzz master secret");
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(payload) = verify_token_signature(&secret, text) {
            let _ = parse_payload(&payload);
        }
    }
    if let Ok(payload) = parse_payload(data) {
        let _ = payload.uid;
    }
});
