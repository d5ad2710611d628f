//! Client credentials as a Firefox holds them after talking to the tokenserver: a tokenlib
//! token minted from the node's master secret (tokens-and-hawk.md §2, §3), or the one a
//! tokenserver issued with the node it named (`--tokenserver`), and the Hawk `Authorization`
//! header computed over each request (§6), with no payload hash and no `ext`, exactly as
//! Firefox signs (storage-api.md §12.1).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::Url;
use sha2::{Digest, Sha256};
use weft_actors::token_verifier::hawk::authorization;
use weft_actors::token_verifier::{mint_token, TokenPayload};

/// One user's storage credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub uid: u64,
    token: String,
    key: String,
    /// The node's origin from the tokenserver's `api_endpoint`; `None`: the target.
    origin: Option<String>,
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// 32 hex characters standing for the user's Mozilla-account uid, stable per uid.
pub fn fxa_uid(uid: u64) -> String {
    hex(&Sha256::digest(format!("weft-loadtest fxa {uid}").as_bytes())[..16])
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Credentials {
    /// Mints a token for `uid` on `node`, valid for `lifetime_s` seconds from now, as the
    /// tokenserver would (the token verifier's own minting code, so both sides agree).
    pub fn mint(master_secret: &str, node: &str, uid: u64, lifetime_s: u64) -> Credentials {
        let fxa_uid = fxa_uid(uid);
        let payload = TokenPayload {
            uid,
            node: node.to_string(),
            expires: (unix_now() + lifetime_s) as f64,
            salt: String::new(),
            hashed_fxa_uid: fxa_uid.clone(),
            fxa_uid,
            fxa_kid: "0000000000001-AAAAAAAAAAAAAAAAAAAAAA".into(),
            hashed_device_id: String::new(),
        };
        let (token, key) = mint_token(master_secret, &payload);
        Credentials { uid, token, key, origin: None }
    }

    /// Credentials handed out by a tokenserver (its `id` and `key`), for the node at `origin`
    /// (`None`: the target).
    pub fn issued(uid: u64, token: String, key: String, origin: Option<String>) -> Credentials {
        Credentials { uid, token, key, origin }
    }

    /// The origin of the node these credentials are for, when it is not the target.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// The `Authorization` value for `method` on `url` (the token verifier's own signing code).
    pub fn authorization(&self, method: &str, url: &Url, nonce: &[u8; 6]) -> String {
        authorization(&self.token, &self.key, method, url, unix_now(), &STANDARD.encode(nonce))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_actors::token_verifier::hawk::{normalized_string, parse_header, verify_mac};
    use weft_actors::token_verifier::token::derived_key;

    #[test]
    fn header_verifies_like_the_server_checks_it() {
        let creds = Credentials::mint("secret", "http://127.0.0.1:8000", 42, 60);
        let url = Url::parse("http://127.0.0.1:8000/1.5/42/storage/history?batch=MTIz&commit=true")
            .expect("test URL");
        let value = creds.authorization("POST", &url, &[1, 2, 3, 4, 5, 6]);
        let parsed = parse_header(&value).expect("parses");
        assert_eq!(parsed.id, creds.token);
        let salt = {
            let payload = weft_actors::token_verifier::token::verify_token_signature(
                &weft_actors::token_verifier::token::signing_secret("secret"),
                &parsed.id,
            )
            .expect("signed with the secret");
            weft_actors::token_verifier::token::parse_payload(&payload).expect("payload").salt
        };
        let key = derived_key("secret", &salt, &parsed.id);
        let normalized = normalized_string(
            &parsed,
            "POST",
            "/1.5/42/storage/history?batch=MTIz&commit=true",
            "127.0.0.1",
            8000,
        );
        assert!(verify_mac(&key, &normalized, &parsed.mac));
    }
}
