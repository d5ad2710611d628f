//! What the clients upload: BSO ids in Firefox's GUID shape and payloads shaped like Firefox's
//! encrypted records (`{"ciphertext":…,"IV":…,"hmac":…}`, storage-api.md §12) of a chosen size.
//! Payload text is cut from one pool of random base64 made at start, so generating load costs
//! the generator almost no CPU and is reproducible from the seed.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde::Serialize;

/// Size of the random base64 pool payloads are cut from.
const POOL_BYTES: usize = 1 << 20;
/// Framing of an encrypted record around its ciphertext: the keys, a 24-character IV and a
/// 64-character hex HMAC.
const RECORD_OVERHEAD: usize = r#"{"ciphertext":"","IV":"","hmac":""}"#.len() + 24 + 64;

pub struct PayloadPool {
    base64: String,
}

/// One BSO of an upload, serialised as the JSON Firefox sends.
#[derive(Debug, Clone, Serialize)]
pub struct Bso {
    pub id: String,
    pub payload: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sortindex: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
}

impl PayloadPool {
    pub fn new(seed: u64) -> PayloadPool {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x005e_ed0f_9a71_0ad5);
        let mut bytes = vec![0u8; POOL_BYTES / 4 * 3];
        rng.fill_bytes(&mut bytes);
        PayloadPool { base64: STANDARD.encode(bytes) }
    }

    /// A payload of (about, never less than the framing) `bytes` bytes.
    pub fn payload(&self, rng: &mut impl Rng, bytes: usize) -> String {
        let text_len = bytes.saturating_sub(RECORD_OVERHEAD).clamp(4, self.base64.len() - 100);
        let pick = |rng: &mut dyn RngCore, len: usize| {
            let start = rng.gen_range(0..self.base64.len() - len);
            &self.base64[start..start + len]
        };
        let ciphertext = pick(rng, text_len);
        let iv = pick(rng, 22);
        let hmac: String = (0..64).map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)])).collect();
        format!(r#"{{"ciphertext":"{ciphertext}","IV":"{iv}==","hmac":"{hmac}"}}"#)
    }

    /// `count` new records with random ids.
    pub fn records(&self, rng: &mut impl Rng, count: usize, bytes: usize) -> Vec<Bso> {
        (0..count)
            .map(|_| Bso {
                id: random_id(rng),
                payload: self.payload(rng, bytes),
                sortindex: None,
                ttl: None,
            })
            .collect()
    }
}

/// A 12-character base64url id, like Firefox's record GUIDs.
pub fn random_id(rng: &mut impl Rng) -> String {
    let bytes: [u8; 9] = rng.gen();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The 64-bit fingerprint of a payload that the verify ledger keeps instead of the payload.
pub fn digest(payload: &str) -> u64 {
    // `DefaultHasher::new()` uses fixed keys, so equal payloads give equal digests in a run.
    let mut h = DefaultHasher::new();
    payload.hash(&mut h);
    h.finish()
}

/// The JSON body of a POST.
pub fn body(records: &[Bso]) -> String {
    // A Vec of plain strings and numbers always serialises.
    serde_json::to_string(records).unwrap_or_else(|_| "[]".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_asked_size_and_shape() {
        let pool = PayloadPool::new(7);
        let mut rng = StdRng::seed_from_u64(1);
        for size in [64, 500, 4096] {
            let p = pool.payload(&mut rng, size);
            let v: serde_json::Value = serde_json::from_str(&p).expect("payload is JSON");
            assert!(v["ciphertext"].is_string() && v["IV"].is_string() && v["hmac"].is_string());
            if size >= RECORD_OVERHEAD + 4 {
                assert_eq!(p.len(), size, "{p}");
            }
        }
        let id = random_id(&mut rng);
        assert_eq!(id.len(), 12);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn same_seed_same_pool() {
        let (a, b) = (PayloadPool::new(3), PayloadPool::new(3));
        let p = |pool: &PayloadPool| pool.payload(&mut StdRng::seed_from_u64(9), 500);
        assert_eq!(p(&a), p(&b));
    }
}
