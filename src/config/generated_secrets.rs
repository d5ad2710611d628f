//! The generated secrets of a default install. Weft has no built-in secret: when none is
//! configured, the first start writes a strong random one into the data directory, readable
//! by the owner only, and later starts read it back. The master secret lives in
//! `master-secret`, the key of the metrics hashes in `metrics-hash-secret`.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;

pub const FILE_NAME: &str = "master-secret";
pub const METRICS_HASH_FILE_NAME: &str = "metrics-hash-secret";

#[derive(Debug, thiserror::Error)]
pub enum MasterSecretError {
    #[error("data_dir: cannot create {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("master secret file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("master secret file {path} is empty")]
    Empty { path: String },
}

/// Where the secret lives and whether this start created it.
pub struct StoredSecret {
    pub secret: String,
    pub path: PathBuf,
    pub generated: bool,
}

pub fn load_or_generate(data_dir: &Path) -> Result<StoredSecret, MasterSecretError> {
    load_or_create(data_dir, FILE_NAME, None)
}

/// The secret stored in `data_dir/name`; created on first use with `initial` or, without one,
/// a fresh random secret.
pub fn load_or_create(
    data_dir: &Path,
    name: &str,
    initial: Option<&str>,
) -> Result<StoredSecret, MasterSecretError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|source| MasterSecretError::CreateDir { path: data_dir.display().to_string(), source })?;
    let path = data_dir.join(name);
    let io_err = |source| MasterSecretError::Io { path: path.display().to_string(), source };
    // 32 random bytes as 64 hex characters; used as text, like every tokenlib secret.
    let fresh = match initial {
        Some(initial) => initial.to_string(),
        None => {
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
    };
    match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
        Ok(mut file) => {
            file.write_all(fresh.as_bytes()).and_then(|_| file.sync_all()).map_err(io_err)?;
            Ok(StoredSecret { secret: fresh, path, generated: true })
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let secret = fs::read_to_string(&path).map_err(io_err)?.trim().to_string();
            if secret.is_empty() {
                return Err(MasterSecretError::Empty { path: path.display().to_string() });
            }
            Ok(StoredSecret { secret, path, generated: false })
        }
        Err(e) => Err(io_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generates_once_owner_only_then_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate(dir.path()).unwrap();
        assert!(first.generated);
        assert_eq!(first.secret.len(), 64);
        let mode = fs::metadata(&first.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = load_or_generate(dir.path()).unwrap();
        assert!(!second.generated);
        assert_eq!(second.secret, first.secret);
    }

    #[test]
    fn metrics_hash_secret_is_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let master = load_or_generate(dir.path()).unwrap();
        let metrics = load_or_create(dir.path(), METRICS_HASH_FILE_NAME, Some("kept")).unwrap();
        assert!(metrics.generated);
        assert_eq!(metrics.secret, "kept");
        let again = load_or_create(dir.path(), METRICS_HASH_FILE_NAME, Some("other")).unwrap();
        assert_eq!(again.secret, "kept", "created once, then read back");
        assert_ne!(again.secret, master.secret);
        let mode = fs::metadata(&metrics.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
