"""Running Weft inside a root file system (a chroot), as a service manager would.

Owned by: the packaging tests (debian_package.py, container_image.py).

`Server` starts a command chrooted into a root, under a user of that root, with only the
environment given (nothing of the caller's), and keeps its output in a log; `signed_client`
mints a token with Mozilla's `tokenlib` and signs with `hawkauthlib` (tests/interop).
"""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from interop import HawkClient, Results, free_port, log_tail  # noqa: E402,F401

import tokenlib  # noqa: E402

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 40


def user_ids(root, name_or_uid):
    """(uid, gid) of a user of the root's /etc/passwd, by name or number."""
    with open(os.path.join(root, "etc", "passwd"), encoding="utf-8") as f:
        for line in f:
            fields = line.strip().split(":")
            if len(fields) >= 4 and str(name_or_uid) in (fields[0], fields[2]):
                return int(fields[2]), int(fields[3])
    raise LookupError(f"no user {name_or_uid} in {root}/etc/passwd")


def run_in_root(root, argv, user="root", env=None, cwd="/", **popen_args):
    """Popen of argv chrooted into root, as user (groups cleared), in cwd inside the root."""
    uid, gid = user_ids(root, user) if user != "root" else (0, 0)

    def enter():
        os.chroot(root)
        os.chdir(cwd)
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    return subprocess.Popen(argv, env=env or {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                            preexec_fn=enter, **popen_args)


def run_root_command(root, argv, **kwargs):
    """Runs argv in the root to completion: (exit status, output)."""
    proc = run_in_root(root, argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, **kwargs)
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out.decode("utf-8", "replace")


class Server:
    """One `weft serve` (or whatever argv says) in the root; stop() sends SIGTERM."""

    def __init__(self, root, argv, log_path, **kwargs):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = run_in_root(root, argv, stdout=self.log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, **kwargs)

    def wait_for(self, needle, timeout=START_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.output():
                return True
            if self.proc.poll() is not None:
                return needle in self.output()
            time.sleep(0.1)
        return False

    def output(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def line_starting(self, prefix):
        return next((line for line in self.output().splitlines() if line.startswith(prefix)), "")

    def stop(self):
        """SIGTERM, then the exit status (None when it had to be killed) and the seconds taken."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        self.log.close()
        return code, time.monotonic() - started

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def signed_client(public_url, secret, uid):
    """A Hawk client for uid on the node public_url, as Firefox holds after a token request."""
    token = tokenlib.make_token(
        {"uid": uid, "node": public_url, "fxa_uid": "f" * 32, "fxa_kid": "0000000001234-qqo"},
        secret=secret, timeout=3600)
    return HawkClient(public_url, token, tokenlib.get_derived_secret(token, secret=secret))


def mode_owner(path):
    st = os.stat(path)
    return oct(st.st_mode & 0o7777), st.st_uid, st.st_gid
