//! The server's half of FxA's onepw protocol (local-accounts.md §4, §6): Hawk credentials of
//! session and key-fetch tokens, the encrypted key bundle of `GET /v1/account/keys`, and the
//! slow stretch of `authPW` the server stores. The page's half (quick stretch, unwrapBKey, kB,
//! kSync) never runs here: the server cannot compute kB.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The namespace of every onepw HKDF `info`.
pub const NS: &str = "identity.mozilla.com/picl/v1/";

/// `HKDF-SHA256(ikm, salt = empty, info = NS + name, len)`.
pub fn hkdf(ikm: &[u8], name: &str, out: &mut [u8]) {
    let info = format!("{NS}{name}");
    // HKDF-SHA256 can expand up to 8160 bytes; every caller asks for at most 96.
    Hkdf::<Sha256>::new(None, ikm).expand(info.as_bytes(), out).expect("HKDF output length");
}

/// Hawk credentials of a token: `tokenId` (its hex is the Hawk id), `hmacKey` (the raw Hawk
/// key) and, for key-fetch tokens, `keyRequestKey`. `kind` is `sessionToken` or `keyFetchToken`.
/// HKDF's output for 96 bytes starts with its output for 64, so one derivation serves both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenKeys {
    pub token_id: [u8; 32],
    pub hmac_key: [u8; 32],
    pub key_request_key: [u8; 32],
}

pub fn token_keys(token: &[u8; 32], kind: &str) -> TokenKeys {
    let mut out = [0u8; 96];
    hkdf(token, kind, &mut out);
    let mut keys = TokenKeys { token_id: [0; 32], hmac_key: [0; 32], key_request_key: [0; 32] };
    keys.token_id.copy_from_slice(&out[..32]);
    keys.hmac_key.copy_from_slice(&out[32..64]);
    keys.key_request_key.copy_from_slice(&out[64..]);
    keys
}

/// `hex(((kA ‖ wrapKb) XOR respXORKey) ‖ HMAC-SHA256(respHMACKey, ciphertext))`.
pub fn key_bundle(key_request_key: &[u8; 32], ka: &[u8; 32], wrap_kb: &[u8; 32]) -> String {
    let mut keys = [0u8; 96];
    hkdf(key_request_key, "account/keys", &mut keys);
    let (resp_hmac_key, resp_xor_key) = keys.split_at(32);
    let mut ciphertext = [0u8; 64];
    for (i, byte) in ka.iter().chain(wrap_kb.iter()).enumerate() {
        ciphertext[i] = byte ^ resp_xor_key[i];
    }
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(resp_hmac_key).expect("HMAC key");
    mac.update(&ciphertext);
    let mut bundle = hex(&ciphertext);
    bundle.push_str(&hex(&mac.finalize().into_bytes()));
    bundle
}

/// The verifier stored for `authPW`: scrypt(authPW, per-account salt, N = 2^log_n, r = 8,
/// p = 1, 32 bytes) — FxA's parameters with log_n = 16 (64 MiB, the slow part of a sign-in).
pub fn stretch(auth_pw: &[u8; 32], salt: &[u8; 32], log_n: u8) -> [u8; 32] {
    let mut out = [0u8; 32];
    // log_n is validated by the configuration (10..=20) and r, p are constants: valid params.
    let params = scrypt::Params::new(log_n, 8, 1, 32).expect("scrypt parameters");
    scrypt::scrypt(auth_pw, salt, &params, &mut out).expect("scrypt output length");
    out
}

/// `base64url(SHA-256(verifier))` = the S256 PKCE challenge of `verifier`.
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Hex of SHA-256: how codes, refresh tokens and invites are stored.
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Exactly `N` bytes from lower- or upper-case hex, or `None`.
pub fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut out = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting(from: u8) -> [u8; 32] {
        std::array::from_fn(|i| from + i as u8)
    }

    /// local-accounts.md §8 (the onepw protocol's published examples).
    #[test]
    fn token_derivations_match_the_vectors() {
        let kft = token_keys(&counting(0x80), "keyFetchToken");
        assert_eq!(hex(&kft.token_id), "3d0a7c02a15a62a2882f76e39b6494b500c022a8816e048625a495718998ba60");
        assert_eq!(hex(&kft.hmac_key), "87b8937f61d38d0e29cd2d5600b3f4da0aa48ac41de36a0efe84bb4a9872ceb7");
        assert_eq!(
            hex(&kft.key_request_key),
            "14f338a9e8c6324d9e102d4e6ee83b209796d5c74bb734a410e729e014a4a546"
        );
        let st = token_keys(&counting(0xa0), "sessionToken");
        assert_eq!(hex(&st.token_id), "c0a29dcf46174973da1378696e4c82ae10f723cf4f4d9f75e39f4ae3851595ab");
        assert_eq!(hex(&st.hmac_key), "9d8f22998ee7f5798b887042466b72d53e56ab0c094388bf65831f702d2febc0");
    }

    #[test]
    fn key_bundle_matches_the_vector() {
        let kft = token_keys(&counting(0x80), "keyFetchToken");
        assert_eq!(
            key_bundle(&kft.key_request_key, &counting(0x20), &counting(0x40)),
            "ee5c58845c7c9412b11bbd20920c2fddd83c33c9cd2c2de2d66b222613364636\
             c2c0f8cfbb7c630472c0bd88451342c6c05b14ce342c5ad46ad89e84464c993c\
             3927d30230157d0817a077eef4b20d976f7a97363faf3f064c003ada7d01aa70"
        );
    }

    #[test]
    fn pkce_and_hex() {
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(unhex::<2>("0aFf"), Some([0x0a, 0xff]));
        assert_eq!(unhex::<2>("0aF"), None);
        assert_eq!(unhex::<1>("zz"), None);
    }

    #[test]
    fn stretch_is_salted() {
        let a = stretch(&[1; 32], &[2; 32], 10);
        assert_ne!(a, stretch(&[1; 32], &[3; 32], 10));
        assert_eq!(a, stretch(&[1; 32], &[2; 32], 10));
    }
}
