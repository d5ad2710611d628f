//! Verification of Mozilla-account OAuth access tokens (tokenserver-api.md §3): local RS256 JWT
//! verification against the configured JWKs (primary and secondary, for FxA key rotation) or,
//! when none are configured, against the keys FxA publishes; remote verification with FxA's
//! verify endpoint for every token local verification cannot judge; the scope check; and a
//! bounded cache of verified tokens so that a client's retries do not each cost a round trip.
//! With local accounts on, tokens whose `iss` is Weft's own issuer are judged with its keys
//! alone (never sent to FxA), and Mozilla's tokens only when still trusted. FxA's Security Event
//! Tokens (account events) are verified here too, with the same keys.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::events::{AccountEventsConfig, EventClaims};
use super::TokenserverError;

/// The scope a token must carry to get a Sync token.
pub const SYNC_SCOPE: &str = "https://identity.mozilla.com/apps/oldsync";

#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// FxA OAuth base URL; `/v1/jwks` and `/v1/verify` are resolved against it.
    pub server_url: String,
    /// Limit for each request to FxA (JWKS fetch, verify).
    pub timeout: Duration,
    /// Configured public keys, primary first. Empty: fetch FxA's JWKS per request (§3.1).
    pub jwks: Vec<Jwk>,
    /// Required `iss` of JWTs; `None` skips the check.
    pub issuer: Option<String>,
    /// How long a verified token is remembered (never past a JWT's `exp`).
    pub cache_ttl: Duration,
    pub cache_size: usize,
    /// Local accounts' issuer (local-accounts.md §5), when they are on.
    pub local: Option<LocalIssuer>,
}

/// A second issuer trusted beside FxA: Weft's own accounts. A JWT whose `iss` names it is
/// judged with its keys alone, never sent to FxA.
#[derive(Debug, Clone)]
pub struct LocalIssuer {
    pub issuer: String,
    /// Every published key (accepted and signing).
    pub jwks: Vec<Jwk>,
    /// Whether tokens of other issuers (Mozilla accounts) are still verified; off, they are 401.
    pub trust_fxa: bool,
}

/// An RSA public key in JWK form (`kty` RSA, base64url `n` and `e`); other members ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub n: String,
    pub e: String,
}

/// Why the OAuth verifier cannot be set up from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum OAuthSetupError {
    #[error("not a JWK: {0}")]
    NotAJwk(#[source] serde_json::Error),
    #[error("kty is {0:?}, only RSA keys verify RS256")]
    NotRsa(String),
    #[error("unusable RSA key: {0}")]
    UnusableKey(#[source] jsonwebtoken::errors::Error),
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}

impl Jwk {
    /// Parses a JWK's JSON text and checks that it is a usable RSA verification key.
    pub fn parse(json: &str) -> Result<Jwk, OAuthSetupError> {
        let jwk: Jwk = serde_json::from_str(json).map_err(OAuthSetupError::NotAJwk)?;
        jwk.decoding_key().map(|_| jwk)
    }

    fn decoding_key(&self) -> Result<DecodingKey, OAuthSetupError> {
        if self.kty != "RSA" {
            return Err(OAuthSetupError::NotRsa(self.kty.clone()));
        }
        DecodingKey::from_rsa_components(&self.n, &self.e).map_err(OAuthSetupError::UnusableKey)
    }
}

/// Who the token belongs to (§3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthIdentity {
    pub fxa_uid: String,
    /// `None` when not reported (absent, null or 0).
    pub generation: Option<i64>,
}

/// The claims local verification reads; a JWT whose claims do not have this shape is not
/// judged locally (§3 rule 2).
#[derive(Debug, Clone, Deserialize)]
struct Claims {
    sub: String,
    scope: String,
    /// i64, never via a float: MAX_GENERATION must survive exactly (§3.2).
    #[serde(rename = "fxa-generation", default)]
    generation: Option<i64>,
}

/// FxA's `/v1/verify` answer; other members ignored.
#[derive(Debug, Deserialize)]
struct VerifyResponse {
    user: String,
    scope: Vec<String>,
    #[serde(default)]
    generation: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Value>,
}

/// Result of a local attempt: verified, or no verdict (verify remotely).
enum Local {
    Verified { claims: Claims, expires: Option<i64> },
    Undecided,
}

struct CacheEntry {
    identity: OAuthIdentity,
    until: Instant,
}

/// Verifies bearer tokens. Cheap to clone; clones share the HTTP client and the cache.
#[derive(Clone)]
pub struct OAuthVerifier {
    config: Arc<OAuthConfig>,
    keys: Arc<Vec<DecodingKey>>,
    local_keys: Arc<Vec<DecodingKey>>,
    http: reqwest::Client,
    /// SHA-256 of the token → identity. Hashing bounds the memory per entry whatever the
    /// token's length.
    cache: Arc<Mutex<HashMap<[u8; 32], CacheEntry>>>,
}

impl OAuthVerifier {
    pub fn new(config: OAuthConfig) -> Result<OAuthVerifier, OAuthSetupError> {
        let keys = config.jwks.iter().map(Jwk::decoding_key).collect::<Result<Vec<_>, _>>()?;
        let local_keys = match &config.local {
            Some(local) => local.jwks.iter().map(Jwk::decoding_key).collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(concat!("weft/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(OAuthSetupError::HttpClient)?;
        Ok(OAuthVerifier {
            config: Arc::new(config),
            keys: Arc::new(keys),
            local_keys: Arc::new(local_keys),
            http,
            cache: Arc::default(),
        })
    }

    /// Verifies `token` and checks the sync scope. Errors: `InvalidCredentials` (401) when the
    /// token is judged invalid, `VerifierUnavailable` (503) when FxA cannot judge it.
    pub async fn verify(&self, token: &str) -> Result<OAuthIdentity, TokenserverError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(identity) = self.cached(&digest) {
            return Ok(identity);
        }
        let verdict = match &self.config.local {
            Some(local) if issuer_of(token).as_deref() == Some(local.issuer.as_str()) => {
                judge(token, &self.local_keys, Some(&local.issuer))?
            }
            Some(local) if !local.trust_fxa => return Err(invalid("not a token of the local issuer")),
            _ => self.verify_locally(token).await?,
        };
        let (identity, expires) = match verdict {
            Local::Verified { claims, expires } => {
                require_scope(&claims.scope)?;
                (OAuthIdentity { fxa_uid: claims.sub, generation: reported(claims.generation) }, expires)
            }
            Local::Undecided => {
                let answer = self.verify_remotely(token).await?;
                require_scope(&answer.scope.join(","))?;
                (OAuthIdentity { fxa_uid: answer.user, generation: reported(answer.generation) }, None)
            }
        };
        self.remember(digest, &identity, expires);
        Ok(identity)
    }

    fn cached(&self, digest: &[u8; 32]) -> Option<OAuthIdentity> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(digest).filter(|e| e.until > Instant::now()).map(|e| e.identity.clone())
    }

    fn remember(&self, digest: [u8; 32], identity: &OAuthIdentity, expires: Option<i64>) {
        let mut ttl = self.config.cache_ttl;
        if let Some(exp) = expires {
            let left = exp.saturating_sub(now_secs());
            ttl = ttl.min(Duration::from_secs(u64::try_from(left).unwrap_or(0)));
        }
        if ttl.is_zero() || self.config.cache_size == 0 {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= self.config.cache_size {
            // Drop what has expired; if that frees nothing, start over rather than keep
            // bookkeeping for an LRU: a miss only costs one verification.
            let now = Instant::now();
            cache.retain(|_, e| e.until > now);
            if cache.len() >= self.config.cache_size {
                cache.clear();
            }
        }
        cache.insert(digest, CacheEntry { identity: identity.clone(), until: Instant::now() + ttl });
    }

    /// §3.1 with the decision rule of §3: a verdict only for a structurally valid JWT when a
    /// usable key exists; a positive rejection (bad signature with every key, expired, wrong
    /// `typ`, `alg` or issuer) is final.
    async fn verify_locally(&self, token: &str) -> Result<Local, TokenserverError> {
        if jwt_shape(token).is_none() {
            return Ok(Local::Undecided);
        }
        let keys = self.fxa_keys().await;
        if keys.is_empty() {
            return Ok(Local::Undecided);
        }
        judge(token, &keys, self.config.issuer.as_deref())
    }

    /// The keys FxA's JWTs are judged with: the configured ones, else those FxA publishes now.
    async fn fxa_keys(&self) -> Cow<'_, [DecodingKey]> {
        if self.keys.is_empty() {
            Cow::Owned(self.fetch_jwks().await)
        } else {
            Cow::Borrowed(&self.keys)
        }
    }

    /// Verifies a Security Event Token FxA posted (tokenserver-api.md §10.8): RS256 with FxA's
    /// keys, as for access tokens, `aud` and `iss` as configured, `exp` checked when present
    /// (FxA's tokens need not carry one). `InvalidCredentials` (401) when it does not verify;
    /// `VerifierUnavailable` (503) when no FxA key is usable, so that FxA delivers it again
    /// later rather than the event being lost.
    pub async fn verify_event_token(
        &self,
        token: &str,
        config: &AccountEventsConfig,
    ) -> Result<EventClaims, TokenserverError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("event token is not a JWT"))?;
        if header.alg != Algorithm::RS256 {
            return Err(invalid("event token is not signed with RS256"));
        }
        let keys = self.fxa_keys().await;
        if keys.is_empty() {
            return Err(TokenserverError::VerifierUnavailable("no usable FxA key for event tokens".into()));
        }
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&config.audience]);
        validation.set_issuer(&[&config.issuer]);
        validation.set_required_spec_claims(&["aud", "iss", "sub"]);
        for key in keys.iter() {
            match jsonwebtoken::decode::<EventClaims>(token, key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                Err(e) => return Err(invalid(&format!("event token rejected: {e}"))),
            }
        }
        Err(invalid("event token signature does not verify with any key"))
    }

    /// `GET {server}/v1/jwks`, per request, as REF does ([REF-CHOICE] §3.1: a key FxA has just
    /// rotated in is usable at once). Any failure leaves no keys, which means remote verification.
    async fn fetch_jwks(&self) -> Vec<DecodingKey> {
        let url = format!("{}/v1/jwks", self.config.server_url);
        let set = match self.http.get(&url).send().await {
            Ok(resp) if resp.status().is_success() => resp.json::<JwkSet>().await.ok(),
            Ok(resp) => {
                tracing::debug!(status = %resp.status(), "FxA JWKS fetch refused");
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "FxA JWKS fetch failed");
                None
            }
        };
        set.map(|s| s.keys)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .filter_map(|k| k.decoding_key().ok())
            .collect()
    }

    /// `POST {server}/v1/verify` (§3.2). The verifier's 400/401/403 mean the token is invalid
    /// (401); no answer, a timeout, any other status or an answer that is not the documented
    /// JSON mean FxA could not judge it, which is 503 "Resource is not available" (PY and
    /// REF's Python verifier, §3.4) rather than REF's 401: a 401 makes Firefox discard a
    /// valid token and may ask the user to sign in again for a server-side outage.
    async fn verify_remotely(&self, token: &str) -> Result<VerifyResponse, TokenserverError> {
        let url = format!("{}/v1/verify", self.config.server_url);
        let unavailable = |what: String| TokenserverError::VerifierUnavailable(what);
        let resp = self
            .http
            .post(&url)
            .json(&serde_json::json!({ "token": token }))
            .send()
            .await
            .map_err(|e| unavailable(format!("POST {url}: {e}")))?;
        let status = resp.status();
        if matches!(status.as_u16(), 400 | 401 | 403) {
            return Err(invalid(&format!("FxA verify answered {status}")));
        }
        if !status.is_success() {
            return Err(unavailable(format!("FxA verify answered {status}")));
        }
        let body = resp.bytes().await.map_err(|e| unavailable(format!("FxA verify body: {e}")))?;
        serde_json::from_slice(&body)
            .map_err(|e| unavailable(format!("FxA verify answer is not the expected JSON: {e}")))
    }
}

/// The verdict on a structurally valid JWT with `keys` (not empty) and the required issuer.
fn judge(token: &str, keys: &[DecodingKey], issuer: Option<&str>) -> Result<Local, TokenserverError> {
    let header = jwt_shape(token).ok_or_else(|| invalid("not a JWT"))?;
    let typ = header.typ.as_deref().unwrap_or_default();
    let typ = if typ.contains('/') {
        typ.to_ascii_lowercase()
    } else {
        format!("application/{}", typ.to_ascii_lowercase())
    };
    if header.typ.is_none() || typ != "application/at+jwt" {
        return Err(invalid("JWT typ is not at+jwt"));
    }
    if header.alg != Algorithm::RS256 {
        return Err(invalid("JWT is not signed with RS256"));
    }
    let mut validation = Validation::new(Algorithm::RS256);
    // [REF-CHOICE] §3.1: `aud` is not checked; the scope decides what the token is for.
    validation.validate_aud = false;
    // With an issuer configured, `iss` is required: jsonwebtoken only compares it when
    // present, and a token without one must not skip the check.
    match issuer {
        Some(issuer) => {
            validation.set_required_spec_claims(&["exp", "iss"]);
            validation.set_issuer(&[issuer]);
        }
        None => validation.set_required_spec_claims(&["exp"]),
    }
    for key in keys {
        match jsonwebtoken::decode::<ExpClaims>(token, key, &validation) {
            Ok(data) => {
                // The shape was checked by `jwt_shape`; these are the same bytes.
                let claims = claims_of(token).ok_or_else(|| invalid("JWT claims"))?;
                return Ok(Local::Verified { claims, expires: Some(data.claims.exp) });
            }
            Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
            Err(e) => return Err(invalid(&format!("JWT rejected: {e}"))),
        }
    }
    Err(invalid("JWT signature does not verify with any key"))
}

/// The one claim `jsonwebtoken` is asked to deserialise; the rest are read by `claims_of`.
#[derive(Debug, Deserialize)]
struct ExpClaims {
    exp: i64,
}

/// The JWT header if `token` is three base64url parts with a decodable header and claims of the
/// expected shape; `None` otherwise (→ remote verification). Public for the fuzz target.
pub fn jwt_shape(token: &str) -> Option<jsonwebtoken::Header> {
    if token.split('.').count() != 3 {
        return None;
    }
    let header = jsonwebtoken::decode_header(token).ok()?;
    claims_of(token)?;
    Some(header)
}

/// The unverified `iss` claim, to choose which issuer's keys judge the token.
fn issuer_of(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Iss {
        iss: String,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Iss>(&bytes).ok().map(|c| c.iss)
}

fn claims_of(token: &str) -> Option<Claims> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// §3.3: REF splits on `,`; OAuth scopes are space-separated. Both are accepted.
fn require_scope(scope: &str) -> Result<(), TokenserverError> {
    if scope.split([',', ' ']).any(|s| s == SYNC_SCOPE) {
        Ok(())
    } else {
        Err(invalid("token lacks the sync scope"))
    }
}

/// 0 means "not reported" (§3.4).
fn reported(generation: Option<i64>) -> Option<i64> {
    generation.filter(|g| *g != 0)
}

fn invalid(reason: &str) -> TokenserverError {
    TokenserverError::InvalidCredentials(reason.to_string())
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_separators() {
        assert!(require_scope(SYNC_SCOPE).is_ok());
        assert!(require_scope(&format!("profile {SYNC_SCOPE}")).is_ok());
        assert!(require_scope(&format!("profile,{SYNC_SCOPE}")).is_ok());
        assert!(require_scope("profile").is_err());
        assert!(require_scope(&format!("{SYNC_SCOPE}x")).is_err());
    }

    #[test]
    fn shapes() {
        assert!(jwt_shape("0123456789abcdef").is_none());
        assert!(jwt_shape("a.b.c").is_none());
        assert!(Jwk::parse(r#"{"kty":"EC","n":"AQAB","e":"AQAB"}"#).is_err());
        assert!(Jwk::parse("nonsense").is_err());
    }

    #[test]
    fn max_generation_is_exact() {
        let v: VerifyResponse = serde_json::from_str(
            r#"{"user":"u","scope":["s"],"generation":9223372036854775807,"client_id":"x"}"#,
        )
        .unwrap();
        assert_eq!(v.generation, Some(i64::MAX));
        let v: VerifyResponse = serde_json::from_str(r#"{"user":"u","scope":[],"generation":null}"#).unwrap();
        assert_eq!(v.generation, None);
    }
}
