//! The rule for every configured master secret, wherever it is set (`master_secrets`,
//! `[[nodes]] master_secrets`, the secrets file): long enough, and never one of the published
//! placeholders of the example configurations; and, with a secrets file, no secret left in the
//! main configuration.

use super::{invalid, ConfigError, Settings};

/// Master secrets shorter than this are refused: the generated one has 32 random bytes, and
/// tokenlib secrets are used as text (the bytes of the string are the HKDF input key).
pub const MIN_MASTER_SECRET_BYTES: usize = 32;

/// The example configurations in ops/config: their secrets are placeholders, published in this
/// repository, and must never sign a real token (a test checks that every file is listed).
const EXAMPLE_CONFIGS: [&str; 4] = [
    include_str!("../../ops/config/loadtest-stack.toml"),
    include_str!("../../ops/config/postgres.toml"),
    include_str!("../../ops/config/production.toml"),
    include_str!("../../ops/config/single-box.toml"),
];

/// Why a master secret is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WeakSecret {
    #[error(
        "a secret is shorter than {} bytes (make one with `openssl rand -hex 32`)",
        MIN_MASTER_SECRET_BYTES
    )]
    TooShort,
    #[error("a secret is the placeholder of an example config in ops/config; replace it")]
    Placeholder,
}

/// The rule for every master secret, wherever it is configured: at least 32 bytes, and not one
/// of the published example values.
pub(crate) fn check_master_secret(secret: &str) -> Result<(), WeakSecret> {
    if secret.len() < MIN_MASTER_SECRET_BYTES {
        return Err(WeakSecret::TooShort);
    }
    if example_secrets().iter().any(|p| p == secret) {
        return Err(WeakSecret::Placeholder);
    }
    Ok(())
}

/// A configured secret list: each secret passes `check_master_secret`; `key` names the setting.
pub(crate) fn check_master_secrets(key: &str, secrets: &[String]) -> Result<(), ConfigError> {
    secrets.iter().try_for_each(|secret| check_master_secret(secret).map_err(|e| invalid(key, e.to_string())))
}

/// Every master secret written in the example configurations (top level and `[[nodes]]`).
fn example_secrets() -> Vec<String> {
    fn secrets_of(table: &toml::Table, out: &mut Vec<String>) {
        if let Some(toml::Value::Array(list)) = table.get("master_secrets") {
            out.extend(list.iter().filter_map(|v| v.as_str().map(str::to_string)));
        }
        if let Some(toml::Value::Array(nodes)) = table.get("nodes") {
            for node in nodes.iter().filter_map(toml::Value::as_table) {
                secrets_of(node, out);
            }
        }
    }
    let mut out = Vec::new();
    for text in EXAMPLE_CONFIGS {
        if let Ok(table) = text.parse::<toml::Table>() {
            secrets_of(&table, &mut out);
        }
    }
    out
}

impl Settings {
    /// With a secrets file, every secret lives there: a secret also left in this file would be
    /// one that `weft secret` rotations never touch.
    pub(super) fn validate_secrets_file(&self) -> Result<(), ConfigError> {
        if self.secrets_file.is_empty() {
            return Ok(());
        }
        let move_it = "with secrets_file set, move these secrets into it (`weft secret init` does, \
                       before secrets_file is set) and delete them here";
        if !self.master_secrets.is_empty() {
            return Err(invalid("master_secrets", move_it));
        }
        if let Some(i) = self.nodes.iter().position(|n| !n.master_secrets.is_empty()) {
            return Err(invalid(&format!("nodes[{i}].master_secrets"), move_it));
        }
        if !self.tokenserver.fxa_metrics_hash_secret.is_empty() {
            return Err(invalid(
                "tokenserver.fxa_metrics_hash_secret",
                "with secrets_file set, it is the file's metrics_hash_secret",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::tests::{env, LONG_SECRET};

    #[test]
    fn short_and_placeholder_master_secrets_are_refused_naming_the_key() {
        let err = Settings::load(None, env(&[("WEFT_MASTER_SECRET", "s3cret")])).unwrap_err();
        assert!(err.to_string().starts_with("master_secrets: a secret is shorter than 32 bytes"), "{err}");
        for placeholder in example_secrets() {
            let err = Settings::load(None, env(&[("WEFT_MASTER_SECRET", placeholder.as_str())])).unwrap_err();
            assert!(err.to_string().starts_with("master_secrets: a secret is the placeholder"), "{err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("weft.toml");
        std::fs::write(
            &file,
            format!("[[nodes]]\nurl = \"http://b:1\"\ndatabase_url = \"sqlite:/tmp/b.db\"\nmaster_secrets = [\"{LONG_SECRET}\", \"short\"]\n"),
        )
        .unwrap();
        let err = Settings::load(Some(&file), env(&[])).unwrap_err();
        assert!(err.to_string().starts_with("nodes[0].master_secrets: a secret is shorter"), "{err}");
    }

    #[test]
    fn every_example_config_is_a_source_of_placeholders() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/config");
        let files = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "toml")));
        assert_eq!(files.count(), EXAMPLE_CONFIGS.len(), "list every ops/config/*.toml in EXAMPLE_CONFIGS");
        assert!(example_secrets().iter().any(|s| s.starts_with("CHANGE-ME")));
    }
}
