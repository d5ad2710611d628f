//! tokenlib-format tokens (tokens-and-hawk.md §2, §3): the key derivations from a node's master
//! secret, minting a signed token with its derived Hawk key, checking a token's signature and
//! parsing its payload, and the canonical form of node URLs that tokens are bound to (§5.3).
//!
//! Everything here is a pure function; the actor in `actor.rs` owns the secrets and caches.

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::AuthError;

const SIGNING_INFO: &[u8] = b"services.mozilla.com/tokenlib/v1/signing";
const DERIVE_INFO_PREFIX: &[u8] = b"services.mozilla.com/tokenlib/v1/derive/";
/// Length of the HMAC-SHA256 signature appended to the payload.
const SIGNATURE_LEN: usize = 32;

/// The fields of a token payload that Weft reads or writes (§3.2).
///
/// `uid`, `node`, `expires` and `salt` are required when parsing, as REF requires them; the
/// identity strings default to `""` because purge-job and older tokens omit some of them.
/// Unknown fields (e.g. `tokenserver_origin`) are ignored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TokenPayload {
    pub uid: u64,
    pub node: String,
    /// Unix seconds; issuers write integers or floats, serde_json reads both into an f64.
    pub expires: f64,
    pub salt: String,
    #[serde(default)]
    pub fxa_uid: String,
    #[serde(default)]
    pub fxa_kid: String,
    #[serde(default)]
    pub hashed_fxa_uid: String,
    #[serde(default)]
    pub hashed_device_id: String,
}

/// What `mint_token` serialises: REF's compact JSON with REF's key order (§3.1), so that a
/// token minted here is byte-for-byte what REF's tokenserver would issue (vector §9.5).
#[derive(Serialize)]
struct MintedPayload<'a> {
    node: &'a str,
    fxa_kid: &'a str,
    fxa_uid: &'a str,
    hashed_device_id: &'a str,
    hashed_fxa_uid: &'a str,
    expires: Expires,
    uid: u64,
    tokenserver_origin: &'static str,
    salt: &'a str,
}

/// REF writes `expires` as an integer; a whole-number f64 would serialise as `1884968439.0`.
#[derive(Serialize)]
#[serde(untagged)]
enum Expires {
    Whole(i64),
    Fractional(f64),
}

impl From<f64> for Expires {
    fn from(expires: f64) -> Expires {
        // The range check keeps the `as` cast exact; anything outside it is not a real expiry
        // time anyway and is written as the float it is.
        if expires.fract() == 0.0 && expires.abs() < 9.0e15 {
            Expires::Whole(expires as i64)
        } else {
            Expires::Fractional(expires)
        }
    }
}

/// An HMAC-SHA256 instance keyed with `key`.
fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length (long keys are hashed), so this cannot fail.
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// The 32-byte HMAC key for token signatures, derived from a node's master secret (§2). The
/// master secret is used as its UTF-8 bytes, never decoded.
pub fn signing_secret(master_secret: &str) -> [u8; 32] {
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(None, master_secret.as_bytes())
        .expand(SIGNING_INFO, &mut okm)
        // HKDF-SHA256 can produce up to 255 * 32 bytes; 32 is always valid.
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    okm
}

/// The per-token Hawk key (§2): HKDF over the master secret with the salt *text* as salt and
/// the whole token string (padding included) in the info, returned as base64url with padding
/// (44 characters). Clients and server both key Hawk's HMAC with the bytes of this string.
pub fn derived_key(master_secret: &str, salt: &str, token: &str) -> String {
    let mut info = Vec::with_capacity(DERIVE_INFO_PREFIX.len() + token.len());
    info.extend_from_slice(DERIVE_INFO_PREFIX);
    info.extend_from_slice(token.as_bytes());
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(salt.as_bytes()), master_secret.as_bytes())
        .expand(&info, &mut okm)
        // HKDF-SHA256 can produce up to 255 * 32 bytes; 32 is always valid.
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    URL_SAFE.encode(okm)
}

/// Mints a token for `payload` signed with `master_secret`, and returns it with its derived
/// Hawk key. If `payload.salt` is empty a fresh salt is generated, as tokenlib does. Used by the
/// tokenserver, the tests and the load generator.
pub fn mint_token(master_secret: &str, payload: &TokenPayload) -> (String, String) {
    let generated_salt;
    let salt = if payload.salt.is_empty() {
        generated_salt = random_salt();
        generated_salt.as_str()
    } else {
        payload.salt.as_str()
    };
    let minted = MintedPayload {
        node: &payload.node,
        fxa_kid: &payload.fxa_kid,
        fxa_uid: &payload.fxa_uid,
        hashed_device_id: &payload.hashed_device_id,
        hashed_fxa_uid: &payload.hashed_fxa_uid,
        expires: payload.expires.into(),
        uid: payload.uid,
        tokenserver_origin: "rust",
        salt,
    };
    // Serialising a struct of strings and numbers to a Vec has no failure path in serde_json
    // (non-finite floats become `null`).
    let mut bytes = serde_json::to_vec(&minted).expect("token payload serialises");
    let mut mac = hmac_sha256(&signing_secret(master_secret));
    mac.update(&bytes);
    bytes.extend_from_slice(&mac.finalize().into_bytes());
    let token = URL_SAFE.encode(&bytes);
    let key = derived_key(master_secret, salt, &token);
    (token, key)
}

/// Six lowercase hex characters from three random bytes, like tokenlib's salt.
fn random_salt() -> String {
    let bytes: [u8; 3] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes a token string: base64url with canonical padding required, and longer than a bare
/// signature (§3.1). Split from the signature check so that a verifier holding several
/// secrets decodes only once.
pub(super) fn decode_token(token: &str) -> Option<Vec<u8>> {
    let decoded = URL_SAFE.decode(token).ok()?;
    (decoded.len() > SIGNATURE_LEN).then_some(decoded)
}

/// The payload part of a decoded token if its trailing 32-byte signature verifies with
/// `signing_secret` (constant-time comparison, via `verify_slice`).
pub(super) fn signed_payload<'a>(signing_secret: &[u8; 32], decoded: &'a [u8]) -> Option<&'a [u8]> {
    let split = decoded.len().checked_sub(SIGNATURE_LEN)?;
    let (payload, signature) = decoded.split_at(split);
    let mut mac = hmac_sha256(signing_secret);
    mac.update(payload);
    mac.verify_slice(signature).ok()?;
    Some(payload)
}

/// Checks a token's signature and returns the exact payload bytes it covers, or `None` if the
/// token is not valid base64url, too short, or not signed with `signing_secret`. The payload
/// must be parsed only after this succeeds (§10.5).
pub fn verify_token_signature(signing_secret: &[u8; 32], token: &str) -> Option<Vec<u8>> {
    let decoded = decode_token(token)?;
    signed_payload(signing_secret, &decoded).map(<[u8]>::to_vec)
}

/// Parses verified payload bytes; any missing required field or wrong type is `BadPayload`.
pub fn parse_payload(payload: &[u8]) -> Result<TokenPayload, AuthError> {
    serde_json::from_slice(payload).map_err(|_| AuthError::BadPayload)
}

/// The canonical form of a node URL (§5.3): scheme and host lower-cased, the scheme's default
/// port (`:80` for http, `:443` for https) removed, trailing `/` removed; any path is kept as
/// is. Tokens name their node in whatever spelling the tokenserver was configured with, so both
/// sides are compared in this form.
pub fn canonical_node(url: &str) -> String {
    let url = url.trim_end_matches('/');
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL; leave it as is so that it can only ever equal itself.
        return url.to_owned();
    };
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => Some("80"),
        "https" => Some("443"),
        _ => None,
    };
    // `rsplit_once` so that an IPv6 literal's colons are not taken for the port separator;
    // for `[::1]` the "port" would be `1]`, which is not the default port.
    let host = match (authority.rsplit_once(':'), default_port) {
        (Some((host, port)), Some(default)) if port == default => host,
        _ => authority.as_str(),
    };
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "Ted Koppel is a robot";

    const REF_TOKEN: &str = "eyJ1aWQiOiAxLCAibm9kZSI6ICJodHRwOi8vbG9jYWxob3N0OjUwMDAiLCAiZXhwaXJlcyI6IDE4ODQ5Njg0MzkuMCwgImZ4YV91aWQiOiAiMzE5Yjk4Zjk5NjFmZjFkYmRkMDczMTNjZDZiYTkyNWEiLCAiZnhhX2tpZCI6ICJkZTY5N2FkNjZkODQ1YjI4NzNjOWQ3ZTEzYjg5NzFhZiIsICJoYXNoZWRfZnhhX3VpZCI6ICIwZThkZjVkNDEzOThhMzg5OTEzYmQ4NDAyNDM1NjQ5NTE4YWY0NjQ5M2RhMWQ0YTQzN2E0NmRjMTc4NGM1MDFhIiwgImhhc2hlZF9kZXZpY2VfaWQiOiAiMmJjYjkyZjRkNDY5OGMzZDdiMDgzYTNjNjk4YTE2Y2NkNzhiYzJhOGQyMGE5NmU0YmIxMjhkZGNlYWY0ZTBiNiIsICJzYWx0IjogIjJiMzA3YiJ9lXaC5pIOenf7qL1AWlgKFvYH63nakyniTXP-7acS5cw=";
    const REF_PAYLOAD: &str = r#"{"uid": 1, "node": "http://localhost:5000", "expires": 1884968439.0, "fxa_uid": "319b98f9961ff1dbdd07313cd6ba925a", "fxa_kid": "de697ad66d845b2873c9d7e13b8971af", "hashed_fxa_uid": "0e8df5d41398a389913bd8402435649518af46493da1d4a437a46dc1784c501a", "hashed_device_id": "2bcb92f4d4698c3d7b083a3c698a16ccd78bc2a8d20a96e4bb128ddceaf4e0b6", "salt": "2b307b"}"#;

    const COMPACT_TOKEN: &str = "eyJub2RlIjoiaHR0cHM6Ly9zeW5jLmV4YW1wbGUuY29tIiwiZnhhX2tpZCI6IjAwMDAwMDAwMDEyMzQtcXFvIiwiZnhhX3VpZCI6IjMxOWI5OGY5OTYxZmYxZGJkZDA3MzEzY2Q2YmE5MjVhIiwiaGFzaGVkX2RldmljZV9pZCI6IjNhNDFjY2NiZGQ2NjZlYmM0MTk5ZjFmOWQxMjQ5ZDQ0IiwiaGFzaGVkX2Z4YV91aWQiOiI0ZDAwZWNhZTY0Yjk4ZGQ3ZGM3ZGVhNjhkMGRkNjE1ZCIsImV4cGlyZXMiOjE4ODQ5Njg0MzksInVpZCI6NDIsInRva2Vuc2VydmVyX29yaWdpbiI6InJ1c3QiLCJzYWx0IjoiYTFiMmMzIn32LKcRiyZKh22GJxqF_zCpvXnIuXJi0K4lN2EnLCi0rA==";
    const COMPACT_PAYLOAD: &str = r#"{"node":"https://sync.example.com","fxa_kid":"0000000001234-qqo","fxa_uid":"319b98f9961ff1dbdd07313cd6ba925a","hashed_device_id":"3a41cccbdd666ebc4199f1f9d1249d44","hashed_fxa_uid":"4d00ecae64b98dd7dc7dea68d0dd615d","expires":1884968439,"uid":42,"tokenserver_origin":"rust","salt":"a1b2c3"}"#;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn compact_payload() -> TokenPayload {
        TokenPayload {
            uid: 42,
            node: "https://sync.example.com".into(),
            expires: 1884968439.0,
            salt: "a1b2c3".into(),
            fxa_uid: "319b98f9961ff1dbdd07313cd6ba925a".into(),
            fxa_kid: "0000000001234-qqo".into(),
            hashed_fxa_uid: "4d00ecae64b98dd7dc7dea68d0dd615d".into(),
            hashed_device_id: "3a41cccbdd666ebc4199f1f9d1249d44".into(),
        }
    }

    #[test]
    fn signing_secret_vector() {
        assert_eq!(
            hex(&signing_secret(SECRET)),
            "ca50531355a39e0d3e20e0d998b389fde44fdb5ad41a300869dec7fdff788784"
        );
    }

    #[test]
    fn ref_fixture_token_verifies_and_parses() {
        let decoded = decode_token(REF_TOKEN).unwrap();
        assert_eq!(decoded.len(), 386);
        assert_eq!(hex(&decoded[354..]), "957682e6920e7a77fba8bd405a580a16f607eb79da9329e24d73feeda712e5cc");
        let payload = verify_token_signature(&signing_secret(SECRET), REF_TOKEN).unwrap();
        assert_eq!(payload, REF_PAYLOAD.as_bytes());
        let parsed = parse_payload(&payload).unwrap();
        assert_eq!(
            parsed,
            TokenPayload {
                uid: 1,
                node: "http://localhost:5000".into(),
                expires: 1884968439.0,
                salt: "2b307b".into(),
                fxa_uid: "319b98f9961ff1dbdd07313cd6ba925a".into(),
                fxa_kid: "de697ad66d845b2873c9d7e13b8971af".into(),
                hashed_fxa_uid: "0e8df5d41398a389913bd8402435649518af46493da1d4a437a46dc1784c501a".into(),
                hashed_device_id: "2bcb92f4d4698c3d7b083a3c698a16ccd78bc2a8d20a96e4bb128ddceaf4e0b6".into(),
            }
        );
        assert_eq!(
            derived_key(SECRET, &parsed.salt, REF_TOKEN),
            "dSi3EoZyHwgDp-O9OG1jRHtmbGl2M1bwcWsi04C4F58="
        );
    }

    #[test]
    fn compact_vector_is_minted_byte_for_byte() {
        let (token, key) = mint_token(SECRET, &compact_payload());
        assert_eq!(token, COMPACT_TOKEN);
        assert_eq!(key, "HRcZqvJahwm3tetV3Hl34aapzRJJz3UIwTq3uQ8vI4o=");
        assert_eq!(key.len(), 44);
        let payload = verify_token_signature(&signing_secret(SECRET), COMPACT_TOKEN).unwrap();
        assert_eq!(payload, COMPACT_PAYLOAD.as_bytes());
        assert_eq!(parse_payload(&payload).unwrap(), compact_payload());
        assert_eq!(
            derived_key(SECRET, "a1b2c3", COMPACT_TOKEN),
            "HRcZqvJahwm3tetV3Hl34aapzRJJz3UIwTq3uQ8vI4o="
        );
    }

    #[test]
    fn mint_generates_salt_and_keeps_fractional_expiry() {
        let payload = TokenPayload {
            uid: 7,
            node: "http://localhost:8000".into(),
            expires: 1700000000.5,
            ..TokenPayload::default()
        };
        let (token, key) = mint_token(SECRET, &payload);
        let parsed =
            parse_payload(&verify_token_signature(&signing_secret(SECRET), &token).unwrap()).unwrap();
        assert_eq!(parsed.salt.len(), 6);
        assert!(parsed.salt.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(parsed.expires, 1700000000.5);
        assert_eq!(parsed.uid, 7);
        assert_eq!(key, derived_key(SECRET, &parsed.salt, &token));
    }

    #[test]
    fn wrong_secret_fails() {
        assert!(verify_token_signature(&signing_secret("wibble"), REF_TOKEN).is_none());
        assert!(verify_token_signature(&signing_secret("wibble"), COMPACT_TOKEN).is_none());
    }

    #[test]
    fn tampered_token_fails() {
        let mut decoded = decode_token(COMPACT_TOKEN).unwrap();
        // "uid":42 -> "uid":43
        let pos = decoded.windows(8).position(|w| w == b"\"uid\":42").unwrap();
        decoded[pos + 7] = b'3';
        let tampered = URL_SAFE.encode(&decoded);
        assert!(verify_token_signature(&signing_secret(SECRET), &tampered).is_none());

        let mut decoded = decode_token(COMPACT_TOKEN).unwrap();
        let last = decoded.len() - 1;
        decoded[last] ^= 1;
        let tampered = URL_SAFE.encode(&decoded);
        assert!(verify_token_signature(&signing_secret(SECRET), &tampered).is_none());
    }

    #[test]
    fn short_token_fails() {
        let secret = signing_secret(SECRET);
        // Exactly 32 bytes: a valid HMAC of the empty payload, still refused (§3.1).
        let mut mac = hmac_sha256(&secret);
        mac.update(b"");
        let bare = URL_SAFE.encode(mac.finalize().into_bytes());
        assert!(verify_token_signature(&secret, &bare).is_none());
        assert!(verify_token_signature(&secret, "").is_none());
        assert!(verify_token_signature(&secret, "abcd").is_none());
    }

    #[test]
    fn non_canonical_encoding_fails() {
        let secret = signing_secret(SECRET);
        // Padding removed.
        let unpadded = COMPACT_TOKEN.trim_end_matches('=');
        assert!(verify_token_signature(&secret, unpadded).is_none());
        // Extra padding.
        assert!(verify_token_signature(&secret, &format!("{COMPACT_TOKEN}=")).is_none());
        // Standard alphabet instead of URL-safe.
        let standard = REF_TOKEN.replace('-', "+").replace('_', "/");
        assert!(verify_token_signature(&secret, &standard).is_none());
        // Non-zero trailing bits in the last character before the padding: "rA==" -> "rB==".
        let trailing = format!("{}B==", &COMPACT_TOKEN[..COMPACT_TOKEN.len() - 3]);
        assert!(URL_SAFE.decode(&trailing).is_err());
        assert!(verify_token_signature(&secret, &trailing).is_none());
    }

    #[test]
    fn payload_requires_fields() {
        let full = r#"{"uid":1,"node":"https://a","expires":1,"salt":"abcdef"}"#;
        let parsed = parse_payload(full.as_bytes()).unwrap();
        assert_eq!(parsed.fxa_uid, "");
        assert_eq!(parsed.expires, 1.0);
        for missing in [
            r#"{"node":"https://a","expires":1,"salt":"abcdef"}"#,
            r#"{"uid":1,"expires":1,"salt":"abcdef"}"#,
            r#"{"uid":1,"node":"https://a","salt":"abcdef"}"#,
            r#"{"uid":1,"node":"https://a","expires":1}"#,
            r#"{"uid":-1,"node":"https://a","expires":1,"salt":"abcdef"}"#,
            r#"{"uid":"1","node":"https://a","expires":1,"salt":"abcdef"}"#,
            r#"{"uid":1,"node":"https://a","expires":"1","salt":"abcdef"}"#,
            "not json",
        ] {
            assert_eq!(parse_payload(missing.as_bytes()), Err(AuthError::BadPayload));
        }
    }

    #[test]
    fn canonical_node_forms() {
        for (input, canonical) in [
            ("https://sync.example.com", "https://sync.example.com"),
            ("HTTPS://Sync.Example.COM:443/", "https://sync.example.com"),
            ("http://localhost:80", "http://localhost"),
            ("http://localhost:443", "http://localhost:443"),
            ("https://localhost:80", "https://localhost:80"),
            ("http://localhost:5000/", "http://localhost:5000"),
            ("https://h.example/Storage/", "https://h.example/Storage"),
            ("https://[::1]:443", "https://[::1]"),
            ("https://[::1]", "https://[::1]"),
        ] {
            assert_eq!(canonical_node(input), canonical, "{input}");
        }
    }
}
