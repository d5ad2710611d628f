//! The data directory `weft serve` writes in (`data_dir`): created owner-only whatever the
//! configuration says (also when every secret and database is configured elsewhere, as in a
//! container), checked writable before anything starts, so that a read-only one is one clear
//! line rather than an OS error from whichever file came first; and the list of every file the
//! server writes, for its start-up line.

use std::fs::{DirBuilder, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::live_reload;
use super::startup::{NodePlan, SecretSource, Secrets};
use crate::config::{generated_secrets, Settings};

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error(
        "data_dir {path} is {why}: weft serve writes its pid file, generated secrets and SQLite \
         database there; {remedy} or set data_dir (WEFT_DATA_DIR) to a writable directory"
    )]
    NotWritable { path: String, why: String, remedy: String },
    #[error("data_dir {path}: cannot create it: {source}")]
    Create { path: String, source: std::io::Error },
}

/// Creates the data directory (owner-only, with its missing parents) and proves it writable
/// by creating and removing a file in it. An existing directory keeps its mode.
pub fn prepare(data_dir: &Path) -> Result<(), DataDirError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|source| classify(data_dir, source))?;
    let probe = data_dir.join(format!(".weft-write-test-{}", std::process::id()));
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|source| classify(data_dir, source))
}

fn classify(data_dir: &Path, source: std::io::Error) -> DataDirError {
    let path = data_dir.display().to_string();
    let (why, remedy) = match source.kind() {
        ErrorKind::ReadOnlyFilesystem => {
            ("on a read-only file system".to_string(), "mount it read-write".to_string())
        }
        ErrorKind::PermissionDenied => {
            // SAFETY: getuid(2) has no preconditions and cannot fail.
            let uid = unsafe { libc::getuid() };
            (format!("not writable by this user (uid {uid})"), format!("give uid {uid} write access to it"))
        }
        _ => return DataDirError::Create { path, source },
    };
    DataDirError::NotWritable { path, why, remedy }
}

/// Every file `weft serve` may write with these settings: in the data directory its pid file,
/// reload status and generated secrets, and every SQLite database it serves (each with its
/// `-wal` and `-shm` files), wherever they are.
pub fn written_files(settings: &Settings, plans: &[NodePlan], secrets: &Secrets) -> Vec<String> {
    let dir = &settings.data_dir;
    let mut files: Vec<PathBuf> = vec![dir.join(live_reload::PID_FILE), dir.join(live_reload::STATUS_FILE)];
    if let SecretSource::File { path, .. } = &secrets.source {
        files.push(PathBuf::from(path));
    }
    let hash_secret_configured = !settings.tokenserver.fxa_metrics_hash_secret.is_empty()
        || secrets.file.as_ref().is_some_and(|f| !f.metrics_hash_secret.is_empty());
    if settings.tokenserver.enabled && !hash_secret_configured {
        files.push(dir.join(generated_secrets::METRICS_HASH_FILE_NAME));
    }
    if settings.accounts.enabled {
        files.push(settings.accounts_signing_key_file());
    }
    let mut databases: Vec<String> = Vec::new();
    if settings.storage.enabled {
        databases.extend(plans.iter().map(|p| p.database_url.clone()));
    }
    if settings.tokenserver.enabled {
        databases.push(settings.tokenserver_database_url());
    }
    let mut lines: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    for url in databases {
        if let Some(path) = url.strip_prefix("sqlite:") {
            let line = format!("{path} (+ -wal, -shm)");
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_missing_parents_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/data");
        prepare(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "the probe file is removed");
    }

    #[test]
    fn an_existing_directory_keeps_its_mode() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o750)).unwrap();
        prepare(tmp.path()).unwrap();
        assert_eq!(std::fs::metadata(tmp.path()).unwrap().permissions().mode() & 0o777, 0o750);
    }
}
