#!/usr/bin/env python3
"""The README's two commands, tested as a newcomer runs them.

Owned by: the test tooling (scripts/test runs it as the `first run` step).

What it proves (issue 8): the first command of README.md's "The two commands" block, taken
verbatim from README.md, starts a working server in a throw-away copy of this checkout — it
prints "listening", creates its data directory with an owner-only SQLite file and master
secret, answers a Hawk-signed `GET /1.5/{uid}/info/collections` (signed by Mozilla's
`tokenlib` + `hawkauthlib` with the secret it generated) with 200 `{}`, and exits 0 on SIGTERM.
The second command must be exactly what `.ci/run` executes.

The copy gets its own port through `WEFT_LISTEN` / `WEFT_PUBLIC_URL` (what a user who has
something on port 8000 sets) and, like a wrapper script or a CI job, an unrelated `WEFT_*`
variable, which must not stop the start. `CARGO_TARGET_DIR` points at this checkout's target
directory so that the build cache is reused; the copy lives in target/first-run/.

Usage: first_run.py [REPO_ROOT]
Output: one line per check, then `N passed, M failed`; non-zero exit when any check failed.
"""

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop import HawkClient, Results, free_port, log_tail  # noqa: E402

import tokenlib  # noqa: E402

# The README's command builds a release binary: the first build in a fresh CI clone takes
# minutes on two cores, a cached one seconds.
BUILD_AND_START_TIMEOUT_S = 20 * 60
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30


def readme_commands(repo_root):
    """The commands of the first ```sh block under '## The two commands', comments removed."""
    with open(os.path.join(repo_root, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("## The two commands", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    return [c for c in commands if c]


def copy_checkout(repo_root, dest):
    """Tracked and untracked-but-not-ignored files, as they are in the working tree."""
    listed = subprocess.run(
        ["git", "-C", repo_root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = os.path.join(repo_root, rel)
        if not os.path.isfile(src):
            continue  # deleted in the working tree but still in the index
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel))


def wait_for_line(proc, log_path, needle, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            if needle in f.read():
                return True
        if proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def main(argv):
    repo_root = os.path.abspath(argv[1] if len(argv) > 1 else
                                os.path.join(os.path.dirname(__file__), "..", ".."))
    results = Results()
    commands = readme_commands(repo_root)
    if not results.check("README gives exactly two commands", len(commands) == 2, repr(commands)):
        print(f"{results.passed} passed, {results.failed} failed")
        return 1
    run_command, test_command = commands
    with open(os.path.join(repo_root, ".ci", "run"), encoding="utf-8") as f:
        ci_run = f.read()
    results.check(f".ci/run executes the README's test command ({test_command})",
                  re.search(r"^exec " + re.escape(test_command) + r"\s*$", ci_run, re.M) is not None)

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    # Always the same place, so that cargo finds the copy's crates unchanged (same paths, same
    # mtimes: copy2 keeps them) and a second run does not rebuild them.
    tmp = os.path.join(repo_root, "target", "first-run")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    proc = None
    try:
        copy = os.path.join(tmp, "checkout")
        copy_checkout(repo_root, copy)
        log_path = os.path.join(tmp, "serve.log")
        env = dict(os.environ)
        for name in list(env):
            if name.startswith("WEFT_"):
                del env[name]
        env.update({
            "CARGO_TARGET_DIR": os.path.join(repo_root, "target"),
            "WEFT_LISTEN": f"127.0.0.1:{port}",
            "WEFT_PUBLIC_URL": base_url,
            # A variable a wrapper script might export: not a setting, so not a reason to stop.
            "WEFT_WRAPPER_NOTE": "started by first_run.py",
        })
        print(f"    {run_command}   (in {copy}, port {port})", flush=True)
        started = time.monotonic()
        with open(log_path, "w") as log:
            # cargo run replaces itself with the program (exec), so proc.pid is weft's pid.
            proc = subprocess.Popen(["bash", "-c", run_command], cwd=copy, env=env,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        # cargo prints "Running `…/weft serve`" when the build is done and the program starts.
        built = wait_for_line(proc, log_path, "Running `", BUILD_AND_START_TIMEOUT_S)
        built_at = time.monotonic()
        up = built and wait_for_line(proc, log_path, "weft: listening on", START_TIMEOUT_S)
        status = "still running" if proc.poll() is None else f"exit status {proc.returncode}"
        if not results.check("the README's run command prints 'listening'", up,
                             f"{status}; last lines:\n{log_tail(log_path, 15)}"):
            print(f"{results.passed} passed, {results.failed} failed")
            return 1
        # Both waits poll every 0.2 s: "0 ms" means within one poll of cargo's Running line.
        print(f"    build {built_at - started:.1f} s, then listening after "
              f"{(time.monotonic() - built_at) * 1000:.0f} ms", flush=True)

        data_dir = os.path.join(copy, "weft-data")
        secret_path = os.path.join(data_dir, "master-secret")
        db_path = os.path.join(data_dir, "weft.db")
        results.check("data directory is owner-only (0700)", mode_of(data_dir) == 0o700,
                      oct(mode_of(data_dir)))
        results.check("master secret is owner-only (0600)", mode_of(secret_path) == 0o600,
                      oct(mode_of(secret_path)))
        results.check("SQLite database is owner-only (0600)", mode_of(db_path) == 0o600,
                      oct(mode_of(db_path)))
        for suffix in ("-wal", "-shm"):
            if os.path.exists(db_path + suffix):
                results.check(f"SQLite {suffix} file is owner-only (0600)",
                              mode_of(db_path + suffix) == 0o600, oct(mode_of(db_path + suffix)))

        with open(secret_path, encoding="utf-8") as f:
            secret = f.read().strip()
        uid = 42
        token = tokenlib.make_token(
            {"uid": uid, "node": base_url, "fxa_uid": "f" * 32, "fxa_kid": "0000000001234-qqo"},
            secret=secret, timeout=3600)
        client = HawkClient(base_url, token, tokenlib.get_derived_secret(token, secret=secret))
        r = client.request("GET", f"/1.5/{uid}/info/collections")
        results.check("signed GET info/collections -> 200 {}",
                      r.status_code == 200 and r.json() == {}, f"{r.status_code} {r.text!r}")

        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        results.check("SIGTERM -> exit status 0", code == 0, f"exit status {code}")
        proc = None
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{results.passed} passed, {results.failed} failed")
    return 0 if results.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
