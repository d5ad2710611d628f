//! The suite's own, independent implementation of tokenlib tokens and Hawk request signing
//! (tokens-and-hawk.md §2, §3, §6). It deliberately shares no code with the server so that a
//! bug in the server's verifier cannot be mirrored here; `tests/hawk_vectors.rs` proves it
//! against the published vectors of §9.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

const SIGNING_INFO: &[u8] = b"services.mozilla.com/tokenlib/v1/signing";
const DERIVE_INFO_PREFIX: &str = "services.mozilla.com/tokenlib/v1/derive/";

/// HKDF-SHA256 with a 32-byte output; `salt = None` is the RFC default (32 zero bytes).
pub fn hkdf32(ikm: &[u8], salt: Option<&[u8]>, info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(salt, ikm).expand(info, &mut out).expect("32 bytes is a valid HKDF-SHA256 length");
    out
}

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The master secret is used as its UTF-8 bytes, never decoded (§1).
pub fn signing_secret(master_secret: &str) -> [u8; 32] {
    hkdf32(master_secret.as_bytes(), None, SIGNING_INFO)
}

/// `base64url_with_padding(payload || HMAC(signing_secret, payload))` over the exact bytes given,
/// so tests can mint PY-style (spaced) or REF-style (compact) JSON alike.
pub fn mint_token(master_secret: &str, payload: &str) -> String {
    let mut bytes = payload.as_bytes().to_vec();
    bytes.extend_from_slice(&hmac_sha256(&signing_secret(master_secret), payload.as_bytes()));
    URL_SAFE.encode(bytes)
}

/// The Hawk key string handed to clients: base64url (padded) of HKDF(master, salt text,
/// prefix + whole token string).
pub fn derived_key(master_secret: &str, salt: &str, token: &str) -> String {
    let info = format!("{DERIVE_INFO_PREFIX}{token}");
    URL_SAFE.encode(hkdf32(master_secret.as_bytes(), Some(salt.as_bytes()), info.as_bytes()))
}

/// `hash` attribute value for a body (§6.5): the media type is lower-cased, parameters dropped.
pub fn payload_hash(content_type: &str, body: &[u8]) -> String {
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let mut h = Sha256::new();
    h.update(b"hawk.1.payload\n");
    h.update(media.as_bytes());
    h.update(b"\n");
    h.update(body);
    h.update(b"\n");
    STANDARD.encode(h.finalize())
}

/// Everything that enters the normalized request string of §6.2.
#[derive(Debug, Clone)]
pub struct HawkParams<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub ts: i64,
    pub nonce: &'a str,
    pub hash: Option<&'a str>,
    pub ext: Option<&'a str>,
}

/// `base64(HMAC-SHA256(key = ASCII bytes of the key string, normalized string))`.
pub fn mac(key: &str, p: &HawkParams) -> String {
    let normalized = format!(
        "hawk.1.header\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
        p.ts,
        p.nonce,
        p.method.to_ascii_uppercase(),
        p.target,
        p.host,
        p.port,
        p.hash.unwrap_or(""),
        p.ext.unwrap_or("")
    );
    STANDARD.encode(hmac_sha256(key.as_bytes(), normalized.as_bytes()))
}

/// A complete `Authorization` header value for token `id` signed with `key`.
pub fn authorization(id: &str, key: &str, p: &HawkParams) -> String {
    let mut header =
        format!("Hawk id=\"{id}\", ts=\"{}\", nonce=\"{}\", mac=\"{}\"", p.ts, p.nonce, mac(key, p));
    if let Some(hash) = p.hash {
        header.push_str(&format!(", hash=\"{hash}\""));
    }
    if let Some(ext) = p.ext {
        header.push_str(&format!(", ext=\"{ext}\""));
    }
    header
}

/// A random nonce in the shape hawkauthlib produces (base64 of 5 random bytes).
pub fn random_nonce() -> String {
    STANDARD.encode(rand::random::<[u8; 5]>())
}

/// Six lowercase hex characters, as tokenlib generates salts.
pub fn random_salt() -> String {
    let b = rand::random::<[u8; 3]>();
    format!("{:02x}{:02x}{:02x}", b[0], b[1], b[2])
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs()
        as i64
}
