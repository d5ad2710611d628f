//! The local issuer's RS256 signing keys (local-accounts.md §5, §6): a JSON file, owner-only,
//! generated on first start. Rotation works like master secrets, with a phase in which a new
//! key is published and accepted before anything is signed with it, so that a verifier that
//! caches the JWKS (another tokenserver) knows it before it meets a token signed with it:
//!
//! 1. `weft account rotate-signing-key` adds a `next` key: published, accepted, not signing.
//! 2. Run again (after a restart and at least the JWKS caches' lifetime): `next` signs, the old
//!    signing key becomes `retired` (still accepted until its tokens expire), and keys retired
//!    by the previous rotation are dropped.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use weft_actors::accounts::RsaKey;

const RSA_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("accounts signing key file {path}: {message}")]
    File { path: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Next,
    Signing,
    Retired,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    state: KeyState,
    created_at: i64,
    /// Standard base64 of the PKCS#1 DER private key.
    private_key_pkcs1: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct KeyFile {
    keys: Vec<StoredKey>,
}

/// The keys in force: the signing one and every published one (signing included).
pub struct SigningKeys {
    pub signing: RsaKey,
    pub published: Vec<RsaKey>,
    pub generated: bool,
}

impl SigningKeys {
    /// The public JWK set of `/v1/jwks` and the openid configuration's `jwks_uri`.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .published
            .iter()
            .map(|k| serde_json::json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": k.kid, "n": k.n, "e": k.e}))
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

fn file_error(path: &Path, message: impl ToString) -> SigningKeyError {
    SigningKeyError::File { path: path.display().to_string(), message: message.to_string() }
}

/// Why a key could not be made or read back from its stored form.
#[derive(Debug, thiserror::Error)]
enum KeyMaterialError {
    #[error(transparent)]
    Rsa(#[from] rsa::Error),
    #[error(transparent)]
    Pkcs1(#[from] rsa::pkcs1::Error),
    #[error("key {kid}: {source}")]
    Stored { kid: String, source: Box<KeyMaterialError> },
    #[error(transparent)]
    Base64(#[from] base64::DecodeError),
}

fn generate(state: KeyState) -> Result<StoredKey, KeyMaterialError> {
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS)?;
    let der = key.to_pkcs1_der()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut id = [0u8; 6];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
    Ok(StoredKey {
        kid: format!("weft-{now}-{}", URL_SAFE_NO_PAD.encode(id)),
        state,
        created_at: now,
        private_key_pkcs1: STANDARD.encode(der.as_bytes()),
    })
}

fn rsa_key(stored: &StoredKey) -> Result<RsaKey, KeyMaterialError> {
    let of_stored = |source: KeyMaterialError| KeyMaterialError::Stored {
        kid: stored.kid.clone(),
        source: Box::new(source),
    };
    let der = STANDARD.decode(&stored.private_key_pkcs1).map_err(|e| of_stored(e.into()))?;
    let key = rsa::RsaPrivateKey::from_pkcs1_der(&der).map_err(|e| of_stored(e.into()))?;
    Ok(RsaKey {
        kid: stored.kid.clone(),
        n: URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        e: URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        pkcs1_der: der,
    })
}

fn read(path: &Path) -> Result<Option<KeyFile>, SigningKeyError> {
    match fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| file_error(path, e)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(file_error(path, e)),
    }
}

/// Writes the file owner-only, through a temporary file renamed over it (never half-written).
fn write(path: &Path, file: &KeyFile, create_new: bool) -> Result<(), SigningKeyError> {
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| file_error(path, e))?;
    }
    let text = serde_json::to_string_pretty(file).map_err(|e| file_error(path, e))?;
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| file_error(&tmp, e))?;
    out.write_all(text.as_bytes()).and_then(|_| out.sync_all()).map_err(|e| file_error(&tmp, e))?;
    if create_new && path.exists() {
        let _ = fs::remove_file(&tmp);
        return Err(file_error(path, "appeared while being generated"));
    }
    fs::rename(&tmp, path).map_err(|e| file_error(path, e))
}

fn in_force(path: &Path, file: &KeyFile, generated: bool) -> Result<SigningKeys, SigningKeyError> {
    let signing = file
        .keys
        .iter()
        .find(|k| k.state == KeyState::Signing)
        .ok_or_else(|| file_error(path, "no key in state \"signing\""))?;
    let published =
        file.keys.iter().map(rsa_key).collect::<Result<Vec<_>, _>>().map_err(|e| file_error(path, e))?;
    Ok(SigningKeys { signing: rsa_key(signing).map_err(|e| file_error(path, e))?, published, generated })
}

/// Reads the keys, generating the file with one signing key on first start.
pub fn load_or_generate(path: &Path) -> Result<SigningKeys, SigningKeyError> {
    if let Some(file) = read(path)? {
        return in_force(path, &file, false);
    }
    let file = KeyFile { keys: vec![generate(KeyState::Signing).map_err(|e| file_error(path, e))?] };
    write(path, &file, true)?;
    in_force(path, &file, true)
}

/// One rotation step (see the module comment); answers a line describing what it did.
pub fn rotate(path: &Path) -> Result<String, SigningKeyError> {
    let mut file =
        read(path)?.ok_or_else(|| file_error(path, "does not exist; start weft with accounts on"))?;
    let message = if file.keys.iter().any(|k| k.state == KeyState::Next) {
        file.keys.retain(|k| k.state != KeyState::Retired);
        for key in &mut file.keys {
            key.state = match key.state {
                KeyState::Signing => KeyState::Retired,
                _ => KeyState::Signing,
            };
        }
        "the next key now signs; the previous one stays accepted. Restart weft."
    } else {
        file.keys.push(generate(KeyState::Next).map_err(|e| file_error(path, e))?);
        "added a next key (published and accepted, not signing yet). Restart weft; run this again later to sign with it."
    };
    write(path, &file, false)?;
    Ok(message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_owner_only_and_rotated_in_two_phases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let first = load_or_generate(&path).unwrap();
        assert!(first.generated);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let again = load_or_generate(&path).unwrap();
        assert!(!again.generated);
        assert_eq!(again.signing.kid, first.signing.kid);

        rotate(&path).unwrap();
        let phase1 = load_or_generate(&path).unwrap();
        assert_eq!(phase1.signing.kid, first.signing.kid, "a next key must not sign yet");
        assert_eq!(phase1.published.len(), 2);
        assert_eq!(phase1.jwks()["keys"].as_array().unwrap().len(), 2);

        rotate(&path).unwrap();
        let phase2 = load_or_generate(&path).unwrap();
        assert_ne!(phase2.signing.kid, first.signing.kid);
        assert!(phase2.published.iter().any(|k| k.kid == first.signing.kid), "old key still accepted");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        rotate(&path).unwrap();
        rotate(&path).unwrap();
        let phase4 = load_or_generate(&path).unwrap();
        assert!(!phase4.published.iter().any(|k| k.kid == first.signing.kid), "retired keys drop out");
    }
}
