//! The shape check of OAuth JWT access tokens (tokenserver-api.md §3.1): splitting, base64url,
//! header and claims JSON. It decides between local and remote verification and must not
//! panic on anything a client sends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_actors::tokenserver::oauth::jwt_shape;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = jwt_shape(text);
});
