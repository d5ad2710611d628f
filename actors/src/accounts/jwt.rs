//! Access tokens of the local issuer (local-accounts.md §5): RS256 JWTs with header
//! `{typ: "at+jwt", kid}` and the claims the tokenserver reads (`sub`, `scope`,
//! `fxa-generation`) plus `iss`, `client_id`, `iat`, `exp`, `jti`. Signed with the one signing
//! key; verified (for the profile endpoint) with every published key, so a token signed before
//! a rotation stays valid until it expires.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::onepw::{hex, random_bytes};

/// An RSA key as the signing-key file holds it: PKCS#1 DER of the private key, and the public
/// JWK members (base64url `n`, `e`).
#[derive(Clone)]
pub struct RsaKey {
    pub kid: String,
    pub pkcs1_der: Vec<u8>,
    pub n: String,
    pub e: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub scope: String,
    #[serde(rename = "fxa-generation")]
    pub generation: i64,
    pub client_id: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

#[derive(Clone)]
pub struct AccessTokens {
    issuer: String,
    kid: String,
    signing: EncodingKey,
    verifying: Vec<DecodingKey>,
}

impl AccessTokens {
    /// `signing` signs; `published` (which includes it) verify.
    pub fn new(
        issuer: String,
        signing: &RsaKey,
        published: &[RsaKey],
    ) -> Result<AccessTokens, jsonwebtoken::errors::Error> {
        let verifying = published
            .iter()
            .map(|k| DecodingKey::from_rsa_components(&k.n, &k.e))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AccessTokens {
            issuer,
            kid: signing.kid.clone(),
            signing: EncodingKey::from_rsa_der(&signing.pkcs1_der),
            verifying,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Mints a token for `sub` valid `ttl` seconds from `now`.
    pub fn issue(
        &self,
        sub: &str,
        scope: &str,
        generation: i64,
        client_id: &str,
        now: i64,
        ttl: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(self.kid.clone());
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: sub.into(),
            scope: scope.into(),
            generation,
            client_id: client_id.into(),
            iat: now,
            exp: now + ttl,
            jti: hex(&random_bytes::<16>()),
        };
        jsonwebtoken::encode(&header, &claims, &self.signing)
    }

    /// The claims of a token this issuer signed and that has not expired, or `None`.
    pub fn verify(&self, token: &str) -> Option<AccessClaims> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_aud = false;
        validation.set_issuer(&[&self.issuer]);
        validation.leeway = 0;
        self.verifying
            .iter()
            .find_map(|key| jsonwebtoken::decode::<AccessClaims>(token, key, &validation).ok())
            .map(|d| d.claims)
    }
}
