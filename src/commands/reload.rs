//! `weft reload`: makes the running server re-read its configuration and secrets, as SIGHUP
//! does, and prints the outcome the server records. The reload itself runs inside `weft serve`
//! (`commands::serve::live_reload`).

use std::time::Duration;

use crate::commands::serve::live_reload::{read_status, PID_FILE};
use crate::commands::serve::startup;
use crate::config::Settings;

#[derive(Debug, thiserror::Error)]
pub enum ReloadCommandError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read {path} (is `weft serve` running with this data_dir?): {source}")]
    Pid { path: String, source: std::io::Error },
    #[error("the server refused the reload: {0}")]
    Refused(String),
}

/// `weft reload`: checks the configuration and secrets as the server will, signals the server
/// (its pid from `data_dir/weft.pid`), and prints the outcome it records.
pub fn run(settings: &Settings) -> Result<(), ReloadCommandError> {
    startup::plan_nodes(settings).map_err(|e| ReloadCommandError::Invalid(format!("nothing sent: {e}")))?;
    let path = settings.data_dir.join(PID_FILE);
    let pid: i32 = std::fs::read_to_string(&path)
        .map_err(|source| ReloadCommandError::Pid { path: path.display().to_string(), source })?
        .trim()
        .parse()
        .map_err(|_| ReloadCommandError::Invalid(format!("{} does not hold a process id", path.display())))?;
    let before = read_status(&settings.data_dir).filter(|s| s.pid == pid as u32).map_or(0, |s| s.generation);
    // SAFETY: kill(2) with a pid and a signal number has no memory-safety preconditions.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        return Err(ReloadCommandError::Invalid(format!(
            "cannot signal process {pid}: {}",
            std::io::Error::last_os_error()
        )));
    }
    // Opening a new node's pool may wait for its database's connection timeout.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if let Some(status) =
            read_status(&settings.data_dir).filter(|s| s.pid == pid as u32 && s.generation > before)
        {
            if !status.ok {
                return Err(ReloadCommandError::Refused(status.message));
            }
            println!("weft: reloaded process {pid}: {}", status.message);
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(ReloadCommandError::Invalid(format!("process {pid} did not report a reload within 60 s")))
}
