//! The secrets file (`secrets_file`): every node's master secrets, kept apart from the main
//! configuration so that the configuration can be shared and reviewed while the secrets stay
//! readable by their owner only. Like ssh with a private key, Weft refuses a secrets file that
//! its group or other users can read.
//!
//! Each secret is *accepted* (it verifies tokens) or *signing* (it verifies, and the
//! tokenserver signs new tokens with it; exactly one per list). A rotation adds the new secret
//! as accepted, reloads every webhead, promotes it to signing (the old one stays accepted and
//! remembers when it stopped signing), and retires the old one once no token it signed can
//! still be valid (tokens-and-hawk.md §5.2, ops-model.md §3.3). The `default` list serves
//! every node without a list of its own, as Mozilla's tokenserver signs every node's tokens
//! with its master secret.
//!
//! ```toml
//! metrics_hash_secret = "…"
//! [[default]]
//! secret = "…"
//! state = "signing"
//! added_at = 1764480000
//! [[nodes."https://sync-2.example.com"]]
//! secret = "…"
//! state = "accepted"
//! added_at = 1764480000
//! signed_until = 1764483600
//! ```
//!
//! The file is only ever replaced whole (written beside it, then renamed), so a reload never
//! reads half of it.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{check_master_secret, WeakSecret};
use crate::node::canonical_origin;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secrets file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("secrets file {path} is readable by group or others (mode {mode:03o}); run `chmod 600 {path}`")]
    Permissions { path: String, mode: u32 },
    /// Not TOML of the expected shape.
    #[error("secrets file {path}: {message}")]
    Invalid { path: String, message: String },
    /// Well-formed, but breaks a rule of the lists.
    #[error("secrets file {path}: {source}")]
    Rules { path: String, source: InvalidSecrets },
    /// A procedure step refused: the message says why and what to do instead.
    #[error("{0}")]
    Refused(String),
}

/// A rule of the secret lists that the file breaks; `at` names the list or entry
/// (`default`, `nodes."https://…"[1]`, `metrics_hash_secret`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidSecrets {
    #[error("{at}: {source}")]
    Weak { at: String, source: WeakSecret },
    #[error("{at}: the list is empty")]
    EmptyList { at: String },
    #[error("{at}: the same secret twice")]
    Duplicate { at: String },
    #[error("{at}: a signing secret has no signed_until")]
    SigningUntil { at: String },
    #[error("{at}: exactly one secret must be state = \"signing\", found {found}")]
    SigningCount { at: String, found: usize },
    #[error("nodes: {0:?} is not an http(s) origin")]
    NotAnOrigin(String),
    #[error("nodes: {0:?} and {1:?} name the same node")]
    SameNode(String, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretState {
    Accepted,
    Signing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretEntry {
    /// Used as text (its UTF-8 bytes), like every tokenlib master secret.
    pub secret: String,
    pub state: SecretState,
    /// Unix seconds when the secret was added.
    pub added_at: u64,
    /// Unix seconds when the secret stopped signing; absent for a secret that never signed or
    /// still signs. Tokens it signed are valid until this + token lifetime + expired grace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_until: Option<u64>,
}

impl SecretEntry {
    /// A short name for the secret in command output and logs; never the secret itself.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.secret)
    }
}

/// The first 8 hex characters of the secret's SHA-256.
pub fn fingerprint(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsFile {
    /// Key of `hashed_fxa_uid` / `hashed_device_id`; never rotated (a new key would change
    /// every user's hash). Empty: the one in the data directory.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metrics_hash_secret: String,
    /// The list of every node without one of its own.
    #[serde(default)]
    pub default: Vec<SecretEntry>,
    /// Lists of nodes with their own secrets, by node URL.
    #[serde(default)]
    pub nodes: BTreeMap<String, Vec<SecretEntry>>,
}

/// 32 random bytes as 64 hex characters.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The master secrets of a list in the verifier's order: accepted ones as written, the signing
/// one last.
pub fn master_list(entries: &[SecretEntry]) -> Vec<String> {
    let accepted = entries.iter().filter(|e| e.state == SecretState::Accepted);
    let signing = entries.iter().filter(|e| e.state == SecretState::Signing);
    accepted.chain(signing).map(|e| e.secret.clone()).collect()
}

impl SecretsFile {
    /// Reads and validates the file; refuses one readable by group or others.
    pub fn read(path: &Path) -> Result<SecretsFile, SecretsError> {
        let shown = path.display().to_string();
        let io = |source| SecretsError::Io { path: shown.clone(), source };
        let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretsError::Permissions { path: shown, mode });
        }
        let text = fs::read_to_string(path).map_err(io)?;
        let file: SecretsFile = toml::from_str(&text)
            .map_err(|e| SecretsError::Invalid { path: shown.clone(), message: e.message().to_string() })?;
        file.validate().map_err(|source| SecretsError::Rules { path: shown, source })?;
        Ok(file)
    }

    /// Writes the file owner-only, atomically (a temporary file beside it, then a rename).
    pub fn write(&self, path: &Path) -> Result<(), SecretsError> {
        self.validate().map_err(|source| SecretsError::Rules { path: path.display().to_string(), source })?;
        let text = toml::to_string(self).map_err(|e| SecretsError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let tmp = temporary_path(path);
        let io = |source| SecretsError::Io { path: tmp.display().to_string(), source };
        let _ = fs::remove_file(&tmp);
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io)?;
        file.write_all(HEADER.as_bytes())
            .and_then(|_| file.write_all(text.as_bytes()))
            .and_then(|_| file.sync_all())
            .map_err(io)?;
        fs::rename(&tmp, path).map_err(|source| SecretsError::Io { path: path.display().to_string(), source })
    }

    /// Every list: each secret long enough, none twice, exactly one signing; node names are
    /// http(s) origins written once (in any spelling).
    pub fn validate(&self) -> Result<(), InvalidSecrets> {
        check_list("default", &self.default)?;
        let mut seen = BTreeMap::new();
        for (url, entries) in &self.nodes {
            let canonical = canonical_origin(url).ok_or_else(|| InvalidSecrets::NotAnOrigin(url.clone()))?;
            if let Some(other) = seen.insert(canonical, url) {
                return Err(InvalidSecrets::SameNode(other.clone(), url.clone()));
            }
            check_list(&format!("nodes.{url:?}"), entries)?;
        }
        if !self.metrics_hash_secret.is_empty() {
            check_master_secret(&self.metrics_hash_secret)
                .map_err(|source| InvalidSecrets::Weak { at: "metrics_hash_secret".into(), source })?;
        }
        Ok(())
    }

    /// The list of `node` (canonicalised), or the default list for `None`.
    pub fn list(&self, node: Option<&str>) -> Option<&Vec<SecretEntry>> {
        match node {
            None => Some(&self.default),
            Some(url) => {
                self.nodes.iter().find(|(k, _)| canonical_origin(k).as_deref() == Some(url)).map(|(_, v)| v)
            }
        }
    }

    /// The canonical node URL → the list, for every node with its own list.
    pub fn node_lists(&self) -> impl Iterator<Item = (String, &Vec<SecretEntry>)> {
        self.nodes.iter().map(|(url, list)| (canonical_origin(url).unwrap_or_else(|| url.clone()), list))
    }

    fn list_mut(&mut self, node: Option<&str>) -> &mut Vec<SecretEntry> {
        let Some(url) = node else { return &mut self.default };
        let key = self
            .nodes
            .keys()
            .find(|k| canonical_origin(k).as_deref() == Some(url))
            .cloned()
            .unwrap_or_else(|| url.to_string());
        self.nodes.entry(key).or_default()
    }

    /// Rotation step 1: adds a fresh secret as accepted (as signing when the list was empty:
    /// nothing can hold a token of a list that never signed). Re-running while an added secret
    /// waits for promotion adds nothing and answers the waiting one.
    pub fn add(&mut self, node: Option<&str>, now: u64) -> Added {
        let list = self.list_mut(node);
        if let Some(waiting) =
            list.iter().find(|e| e.state == SecretState::Accepted && e.signed_until.is_none())
        {
            return Added::AlreadyWaiting(waiting.fingerprint());
        }
        let state = if list.is_empty() { SecretState::Signing } else { SecretState::Accepted };
        let entry = SecretEntry { secret: generate_secret(), state, added_at: now, signed_until: None };
        let fp = entry.fingerprint();
        list.push(entry);
        match state {
            SecretState::Signing => Added::Signing(fp),
            SecretState::Accepted => Added::Accepted(fp),
        }
    }

    /// Rotation step 2: the secret waiting for promotion signs; the one that signed stays
    /// accepted and records when it stopped. Re-running with nothing waiting changes nothing.
    pub fn promote(&mut self, node: Option<&str>, now: u64) -> Result<Promoted, SecretsError> {
        let list = self.list_mut(node);
        let Some(waiting) =
            list.iter().position(|e| e.state == SecretState::Accepted && e.signed_until.is_none())
        else {
            let signing = list.iter().find(|e| e.state == SecretState::Signing).map(SecretEntry::fingerprint);
            return match signing {
                Some(fp) => Ok(Promoted::Nothing(fp)),
                None => {
                    Err(SecretsError::Refused("this list has no secret: run `weft secret add` first".into()))
                }
            };
        };
        let mut previous = None;
        for entry in list.iter_mut().filter(|e| e.state == SecretState::Signing) {
            entry.state = SecretState::Accepted;
            entry.signed_until = Some(now);
            previous = Some(entry.fingerprint());
        }
        list[waiting].state = SecretState::Signing;
        Ok(Promoted::Signing { new: list[waiting].fingerprint(), previous })
    }

    /// Rotation step 3: removes every secret that stopped signing at least `wait` seconds ago
    /// (token lifetime + expired-token grace); with `force`, those that stopped signing more
    /// recently too. Never removes the signing secret or one waiting for promotion.
    pub fn retire(
        &mut self,
        node: Option<&str>,
        now: u64,
        wait: u64,
        force: bool,
    ) -> Result<Vec<String>, SecretsError> {
        let list = self.list_mut(node);
        if let Some(young) =
            list.iter().filter_map(|e| e.signed_until.map(|t| (e, t))).find(|(_, t)| t + wait > now)
        {
            if !force {
                let (entry, until) = young;
                return Err(SecretsError::Refused(format!(
                    "secret {} stopped signing {} s ago; tokens it signed stay valid for token lifetime + \
                     expired-token grace = {wait} s, so it can be retired in {} s (at Unix time {}). \
                     `--force` retires it now and makes clients holding those tokens fail with 401 once.",
                    entry.fingerprint(),
                    now.saturating_sub(until),
                    until + wait - now,
                    until + wait,
                )));
            }
        }
        let mut retired = Vec::new();
        list.retain(|e| {
            let gone = e.signed_until.is_some();
            if gone {
                retired.push(e.fingerprint());
            }
            !gone
        });
        Ok(retired)
    }
}

/// What `add` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    Accepted(String),
    /// The list was empty; its first secret signs at once.
    Signing(String),
    AlreadyWaiting(String),
}

/// What `promote` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Promoted {
    Signing {
        new: String,
        previous: Option<String>,
    },
    /// Nothing waited; this one already signs.
    Nothing(String),
}

const HEADER: &str =
    "# Weft secrets: owner-only (chmod 600). Change with `weft secret add|promote|retire`,\n\
                      # then `weft reload` every webhead (ops/runbooks/rotate-secret.md).\n";

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

fn check_list(name: &str, entries: &[SecretEntry]) -> Result<(), InvalidSecrets> {
    if entries.is_empty() {
        // Only the default list may be empty: a node list exists to hold that node's secrets.
        return if name == "default" { Ok(()) } else { Err(InvalidSecrets::EmptyList { at: name.into() }) };
    }
    for (i, entry) in entries.iter().enumerate() {
        let at = || format!("{name}[{i}]");
        check_master_secret(&entry.secret).map_err(|source| InvalidSecrets::Weak { at: at(), source })?;
        if entries[..i].iter().any(|e| e.secret == entry.secret) {
            return Err(InvalidSecrets::Duplicate { at: at() });
        }
        if entry.state == SecretState::Signing && entry.signed_until.is_some() {
            return Err(InvalidSecrets::SigningUntil { at: at() });
        }
    }
    match entries.iter().filter(|e| e.state == SecretState::Signing).count() {
        1 => Ok(()),
        found => Err(InvalidSecrets::SigningCount { at: name.into(), found }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "https://sync-2.example.com";

    #[test]
    fn rotation_add_promote_retire() {
        let mut file = SecretsFile::default();
        let Added::Signing(first) = file.add(Some(NODE), 100) else { panic!("first secret signs") };
        let Added::Accepted(second) = file.add(Some(NODE), 200) else { panic!("then accepted") };
        // Re-running adds nothing.
        assert_eq!(file.add(Some(NODE), 250), Added::AlreadyWaiting(second.clone()));
        let list = file.list(Some(NODE)).unwrap();
        assert_eq!(master_list(list).last(), Some(&list[0].secret), "the first one still signs");

        let promoted = file.promote(Some(NODE), 300).unwrap();
        assert_eq!(promoted, Promoted::Signing { new: second.clone(), previous: Some(first.clone()) });
        assert_eq!(file.promote(Some(NODE), 301).unwrap(), Promoted::Nothing(second.clone()));
        let list = file.list(Some(NODE)).unwrap();
        assert_eq!(master_list(list), vec![list[0].secret.clone(), list[1].secret.clone()]);

        // Too early: refused with the time it becomes safe, and nothing changes.
        let err = file.retire(Some(NODE), 400, 1000, false).unwrap_err().to_string();
        assert!(err.contains("in 900 s") && err.contains(&first), "{err}");
        assert_eq!(file.list(Some(NODE)).unwrap().len(), 2);
        assert_eq!(file.retire(Some(NODE), 1300, 1000, false).unwrap(), vec![first]);
        assert_eq!(file.retire(Some(NODE), 1301, 1000, false).unwrap(), Vec::<String>::new());
        file.validate().unwrap();
    }

    #[test]
    fn force_retires_early_but_never_the_signing_secret() {
        let mut file = SecretsFile::default();
        file.add(None, 0);
        file.add(None, 0);
        file.promote(None, 10).unwrap();
        assert_eq!(file.retire(None, 11, 10_800, true).unwrap().len(), 1);
        assert_eq!(file.default.len(), 1);
        assert_eq!(file.default[0].state, SecretState::Signing);
    }

    #[test]
    fn validation_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        let mut file = SecretsFile::default();
        file.add(None, 1);
        file.add(Some("HTTPS://Sync-2.Example.com:443"), 1);
        file.write(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let read = SecretsFile::read(&path).unwrap();
        assert_eq!(read, file);
        assert!(read.list(Some(NODE)).is_some(), "found by canonical name");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = SecretsFile::read(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();

        let short = "[[default]]\nsecret = \"short\"\nstate = \"signing\"\nadded_at = 1\n";
        fs::write(&path, short).unwrap();
        assert!(SecretsFile::read(&path).unwrap_err().to_string().contains("shorter than 32"));
        let two = format!(
            "[[default]]\nsecret = \"{}\"\nstate = \"signing\"\nadded_at = 1\n[[default]]\nsecret = \"{}\"\nstate = \"signing\"\nadded_at = 1\n",
            generate_secret(),
            generate_secret()
        );
        fs::write(&path, two).unwrap();
        assert!(SecretsFile::read(&path).unwrap_err().to_string().contains("exactly one"));
        let placeholder = "[[default]]\nsecret = \"CHANGE-ME-64-hex-characters-from-openssl-rand-hex-32\"\nstate = \"signing\"\nadded_at = 1\n";
        fs::write(&path, placeholder).unwrap();
        assert!(SecretsFile::read(&path).unwrap_err().to_string().contains("placeholder"));
    }
}
