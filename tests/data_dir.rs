//! `weft serve` started where a container or a package starts it (issue 24): in an empty
//! directory with every secret given by environment, it creates its data directory owner-only
//! and names every file it writes in one start-up line; with a data directory it cannot write
//! (a read-only mount, or one another user owns) it stops with one clear line.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(30);
const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const HASH_SECRET: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

/// `weft serve` in `cwd` with only these WEFT_* variables (none of the caller's); `wrapper` is
/// a command put in front (unshare, setpriv). Output goes to `cwd`'s sibling `out`.
fn serve(cwd: &Path, out: &Path, env: &[(&str, &str)], wrapper: &[&str]) -> Child {
    let weft = env!("CARGO_BIN_EXE_weft");
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(weft);
            cmd
        }
        None => Command::new(weft),
    };
    cmd.arg("serve").current_dir(cwd);
    for (name, _) in std::env::vars() {
        if name.starts_with("WEFT_") {
            cmd.env_remove(name);
        }
    }
    cmd.envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(fs::File::create(out.join("stdout")).unwrap())
        .stderr(fs::File::create(out.join("stderr")).unwrap())
        .spawn()
        .unwrap()
}

fn read(out: &Path, name: &str) -> String {
    fs::read_to_string(out.join(name)).unwrap_or_default()
}

/// Waits for the child to print `listening` (true) or to exit (false).
fn wait_listening(child: &mut Child, out: &Path) -> bool {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if read(out, "stdout").contains("weft: listening on") {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Waits until the server answers `/__lbheartbeat__` (its SIGTERM handler is installed by then;
/// right after the `listening` line it may not be yet).
fn wait_answering(stdout: &str) {
    let port = stdout
        .lines()
        .find_map(|l| l.strip_prefix("weft: listening on 127.0.0.1:"))
        .expect("a listening line");
    let url = format!("http://127.0.0.1:{port}/__lbheartbeat__");
    let deadline = Instant::now() + START_TIMEOUT;
    while reqwest::blocking::get(&url).map_or(true, |r| !r.status().is_success()) {
        assert!(Instant::now() < deadline, "{url} never answered 200");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(mut child: Child) -> Option<i32> {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap().code()
}

fn loopback_env<'a>() -> Vec<(&'a str, &'a str)> {
    vec![
        ("WEFT_LISTEN", "127.0.0.1:0"),
        ("WEFT_PUBLIC_URL", "http://localhost:8000"),
        ("WEFT_MASTER_SECRET", SECRET),
        ("WEFT_TOKENSERVER_FXA_METRICS_HASH_SECRET", HASH_SECRET),
    ]
}

#[test]
fn empty_directory_every_secret_from_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let (cwd, out) = (tmp.path().join("empty"), tmp.path().join("out"));
    fs::create_dir(&cwd).unwrap();
    fs::create_dir(&out).unwrap();
    let mut child = serve(&cwd, &out, &loopback_env(), &[]);
    let listening = wait_listening(&mut child, &out);
    if listening {
        wait_answering(&read(&out, "stdout"));
    }
    let stdout = read(&out, "stdout");
    let stderr = read(&out, "stderr");
    assert_eq!(stop(child), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(listening, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");

    let data_dir = cwd.join("weft-data");
    let mode = fs::metadata(&data_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the data directory is created owner-only");
    assert!(stdout.contains("weft: master secret from configuration"), "{stdout}");
    let writes: Vec<&str> = stdout.lines().filter(|l| l.starts_with("weft: writes ")).collect();
    assert_eq!(writes.len(), 1, "one line names the files:\n{stdout}");
    assert_eq!(
        writes[0],
        "weft: writes ./weft-data/weft.pid, ./weft-data/reload-status, ./weft-data/weft.db (+ -wal, -shm)",
        "no generated secret: every one is configured"
    );
    // Everything it wrote is named (the -wal and -shm files under the database's name).
    for entry in fs::read_dir(&data_dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let named = name.trim_end_matches("-wal").trim_end_matches("-shm");
        assert!(writes[0].contains(&format!("./weft-data/{named}")), "{name} is not named in {}", writes[0]);
    }
}

/// One line on stderr, naming the directory and what to do, and nothing started.
fn assert_refused(child: Child, out: &Path, expected: &str) {
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) = (read(out, "stdout"), read(out, "stderr"));
    assert_eq!(output.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stdout.contains("listening"), "{stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line:\n{stderr}");
    assert!(lines[0].starts_with(expected), "{:?} does not start with {expected:?}", lines[0]);
    assert!(lines[0].contains("set data_dir (WEFT_DATA_DIR) to a writable directory"), "{}", lines[0]);
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn read_only_data_directory_is_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (data_dir, out) = (tmp.path().join("data"), tmp.path().join("out"));
    fs::create_dir(&data_dir).unwrap();
    fs::create_dir(&out).unwrap();
    let dir = data_dir.to_str().unwrap();
    let mut env = loopback_env();
    env.push(("WEFT_DATA_DIR", dir));
    if is_root() {
        // Root writes through any mode bits: only a read-only mount stops it. A private mount
        // namespace keeps the read-only bind mount to this process.
        let script = r#"mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@""#;
        let child = serve(
            &out,
            &out,
            &env,
            &["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", dir],
        );
        assert_refused(child, &out, &format!("weft: error: data_dir {dir} is on a read-only file system"));
    }
    // A directory of another user (as a service user meets a root-owned volume): as root, drop
    // to nobody; otherwise take the write bit away.
    fs::set_permissions(&data_dir, fs::Permissions::from_mode(0o555)).unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let wrapper: &[&str] =
        if is_root() { &["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] } else { &[] };
    fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).unwrap();
    let child = serve(&out, &out, &env, wrapper);
    // SAFETY: getuid(2) has no preconditions.
    let uid = if is_root() { 65534 } else { unsafe { libc::getuid() } };
    assert_refused(
        child,
        &out,
        &format!("weft: error: data_dir {dir} is not writable by this user (uid {uid})"),
    );
}
