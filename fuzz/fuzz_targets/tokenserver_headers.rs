//! The tokenserver's request headers (tokenserver-api.md §2): `Authorization: Bearer …`,
//! `X-KeyID` and `X-Client-State`, as raw bytes separated by newlines. None may panic; an
//! accepted X-KeyID has a hex client state of at most 32 bytes.
#![no_main]

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use libfuzzer_sys::fuzz_target;
use weft::tokenserver::handler::{bearer_token, key_id};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let names = [AUTHORIZATION, HeaderName::from_static("x-keyid"), HeaderName::from_static("x-client-state")];
    let mut headers = HeaderMap::new();
    for name in names {
        let Some(value) = parts.next() else { break };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.insert(name, value);
        }
    }
    let _ = bearer_token(&headers);
    if let Ok(key) = key_id(&headers) {
        assert!(key.client_state.len() <= 64 && key.client_state.bytes().all(|b| b.is_ascii_hexdigit()));
    }
});
