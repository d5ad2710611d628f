//! The built-in **test** OAuth signing key of the token scenario: an RSA key whose public half
//! (`--print-test-jwk`) a test server is configured to trust, so the generator can present
//! Mozilla-account-style access tokens (RS256 JWTs, `typ: at+jwt`, tokenserver-api.md §3.1)
//! without any identity provider. The private key is committed on purpose: it is a fixture,
//! it must never be trusted by a real deployment.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::Sha256;

const TEST_KEY_PEM: &str = include_str!("test_oauth_key.pem");
pub const KEY_ID: &str = "weft-loadtest-test-key";
pub const SYNC_SCOPE: &str = "https://identity.mozilla.com/apps/oldsync";

pub struct OauthKey {
    signing: SigningKey<Sha256>,
    jwk: Value,
}

impl OauthKey {
    pub fn load() -> Result<OauthKey, String> {
        let key = RsaPrivateKey::from_pkcs8_pem(TEST_KEY_PEM)
            .map_err(|e| format!("built-in test OAuth key does not parse: {e}"))?;
        let jwk = json!({
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": KEY_ID,
            "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        });
        Ok(OauthKey { signing: SigningKey::<Sha256>::new(key), jwk })
    }

    /// The public JWK to configure on the server under test.
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// A compact RS256 JWT over `claims`.
    pub fn jwt(&self, claims: &Value) -> String {
        let header = json!({ "alg": "RS256", "typ": "at+jwt", "kid": KEY_ID });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.signing.sign(signing_input.as_bytes()).to_bytes();
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;

    #[test]
    fn jwt_verifies_with_the_public_jwk() {
        let key = OauthKey::load().expect("test key");
        let jwt = key.jwt(&json!({ "sub": "abc", "scope": SYNC_SCOPE }));
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let jwk = key.public_jwk();
        let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().expect("n")).expect("n b64");
        let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().expect("e")).expect("e b64");
        let public = rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(&n), rsa::BigUint::from_bytes_be(&e))
            .expect("key");
        let sig =
            Signature::try_from(URL_SAFE_NO_PAD.decode(parts[2]).expect("sig b64").as_slice()).expect("sig");
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(VerifyingKey::<Sha256>::new(public).verify(input.as_bytes(), &sig).is_ok());
    }
}
