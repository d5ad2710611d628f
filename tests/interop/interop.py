#!/usr/bin/env python3
"""Interoperability test: Weft's storage node against Mozilla's own Python libraries.

Owned by: the test tooling (scripts/test runs it twice, on SQLite and on MariaDB).

What it proves: a token minted by `tokenlib` (the library the Python tokenserver used) and
requests signed by `hawkauthlib` (the Python Hawk client/server library) are accepted by a real
`weft serve` process, and a Sync 1.5 round trip works end to end
(spec: /work/shared/spec/tokens-and-hawk.md §1-§6, storage-api.md §6).

Usage:
    interop.py [WEFT_BINARY [DATABASE]]

    WEFT_BINARY  path to the weft binary (default: $WEFT_BIN, else target/debug/weft)
    DATABASE     `sqlite` (default; a file in the temp dir),
                 `mysql://user[:pass]@host:port` (base URL without a database: a database
                 `weft_test_interop_<random>` is created with the `mariadb` client and dropped
                 afterwards), or a full `mysql://…/dbname` / `sqlite:PATH` URL used as is.
                 Default: $WEFT_INTEROP_DATABASE, else `sqlite`.

Everything the test writes lives in one temporary directory, removed at the end. The server is
always stopped (try/finally). Output: one line per check, then `N passed, M failed`; the exit
status is non-zero when any check failed.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

try:
    import hawkauthlib
    import requests
    import tokenlib
except ImportError as exc:  # pragma: no cover - environment problem, reported plainly
    print(f"interop: missing Python library ({exc}); run ./scripts/test, which installs "
          "tokenlib, hawkauthlib and requests", file=sys.stderr)
    print("0 passed, 1 failed")
    sys.exit(2)

STARTUP_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 15.0
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   - {name}", flush=True)
        else:
            self.failed += 1
            suffix = f": {detail}" if detail else ""
            print(f"FAIL - {name}{suffix}", flush=True)
        return ok


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- MariaDB helpers

def mariadb_cli_args(url):
    """`mariadb` client arguments for a mysql:// URL (user, password, host, port)."""
    parsed = urllib.parse.urlsplit(url)
    args = ["mariadb", "--batch", "--skip-column-names",
            "-h", parsed.hostname or "127.0.0.1", "-P", str(parsed.port or 3306),
            "-u", urllib.parse.unquote(parsed.username or "root")]
    if parsed.password:
        args.append("-p" + urllib.parse.unquote(parsed.password))
    return args


def mariadb_exec(url, sql):
    subprocess.run(mariadb_cli_args(url) + ["-e", sql], check=True, timeout=60,
                   stdin=subprocess.DEVNULL)


def prepare_database(spec, tmpdir):
    """Returns (database_url, cleanup callable or None)."""
    if spec in ("", "sqlite"):
        return f"sqlite:{tmpdir}/weft.db", None
    if spec.startswith("sqlite:"):
        return spec, None
    if spec.startswith("mysql://"):
        parsed = urllib.parse.urlsplit(spec)
        if parsed.path.strip("/"):
            return spec, None  # a full URL naming its database: use it as given
        name = "weft_test_interop_" + secrets.token_hex(4)
        base = spec.rstrip("/")
        mariadb_exec(base, f"CREATE DATABASE `{name}`")
        return f"{base}/{name}", lambda: mariadb_exec(base, f"DROP DATABASE IF EXISTS `{name}`")
    raise SystemExit(f"interop: unsupported database spec {spec!r} "
                     "(use sqlite, sqlite:PATH or mysql://user@host:port[/db])")


# --------------------------------------------------------------------------- server process

def start_server(binary, env_overrides, log_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WEFT_") or k == "WEFT_LOG"}
    env.update(env_overrides)
    log = open(log_path, "wb")
    try:
        proc = subprocess.Popen([binary, "serve"], env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        log.close()
    return proc


def wait_until_up(proc, base_url):
    """True once the server answers HTTP on /__lbheartbeat__ (any status) within the bound."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False, f"weft exited with status {proc.returncode} during startup"
        try:
            requests.get(base_url + "/__lbheartbeat__", timeout=2)
            return True, ""
        except requests.RequestException:
            time.sleep(0.2)
    return False, f"no HTTP answer on {base_url}/__lbheartbeat__ within {STARTUP_TIMEOUT_S:.0f} s"


def stop_server(proc):
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def log_tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return "\n".join(data[-lines:])


# --------------------------------------------------------------------------- Hawk client

class HawkClient:
    """Sends requests signed by hawkauthlib (which signs a requests.PreparedRequest in place)."""

    def __init__(self, base_url, token, key):
        self.base_url = base_url
        self.token = token
        self.key = key
        self.session = requests.Session()

    def request(self, method, path, body=None, key=None, token=None, sign=True):
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        prepared = requests.Request(method, self.base_url + path, data=data,
                                    headers=headers).prepare()
        if sign:
            hawkauthlib.sign_request(prepared, token or self.token, key or self.key)
        return self.session.send(prepared, timeout=REQUEST_TIMEOUT_S, allow_redirects=False)


def body_json(resp):
    try:
        return resp.json()
    except ValueError:
        return None


def describe(resp):
    text = resp.text if len(resp.text) <= 300 else resp.text[:300] + "…"
    return f"status {resp.status_code}, body {text!r}"


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------- the checks

def run_checks(results, base_url, secret):
    uid = secrets.randbelow(10**9) + 1
    token = tokenlib.make_token(
        {"uid": uid, "node": base_url,
         "fxa_uid": secrets.token_hex(16), "fxa_kid": "0000000001234-qqo"},
        secret=secret, timeout=3600)
    key = tokenlib.get_derived_secret(token, secret=secret)
    client = HawkClient(base_url, token, key)
    prefix = f"/1.5/{uid}"
    coll = f"{prefix}/storage/bookmarks"

    def attempt(name, fn):
        try:
            fn()
        except requests.RequestException as exc:
            results.check(name, False, f"request failed: {exc}")

    # 1. PUT one BSO.
    def put_one():
        r = client.request("PUT", f"{coll}/abc", {"payload": "hello", "sortindex": 5})
        ok = r.status_code == 200 and is_number(body_json(r))
        results.check("PUT storage/bookmarks/abc -> 200 with a timestamp body", ok, describe(r))
        results.check("responses carry X-Weave-Timestamp",
                      "X-Weave-Timestamp" in r.headers, f"headers {dict(r.headers)}")
    attempt("PUT storage/bookmarks/abc -> 200 with a timestamp body", put_one)

    # 2. POST two BSOs.
    def post_two():
        r = client.request("POST", coll, [{"id": "def", "payload": "world"},
                                          {"id": "ghi", "payload": "again", "sortindex": 1}])
        b = body_json(r)
        ok = (r.status_code == 200 and isinstance(b, dict)
              and sorted(b.get("success") or []) == ["def", "ghi"] and not b.get("failed"))
        results.check("POST two BSOs -> 200, both in success", ok, describe(r))
    attempt("POST two BSOs -> 200, both in success", post_two)

    # 3. GET the collection with full=1.
    def get_full():
        r = client.request("GET", coll + "?full=1")
        b = body_json(r)
        got = {}
        if isinstance(b, list):
            got = {item.get("id"): item.get("payload") for item in b if isinstance(item, dict)}
        want = {"abc": "hello", "def": "world", "ghi": "again"}
        results.check("GET storage/bookmarks?full=1 -> all three BSOs with payloads",
                      r.status_code == 200 and got == want, describe(r))
    attempt("GET storage/bookmarks?full=1 -> all three BSOs with payloads", get_full)

    # 4. GET the single item.
    def get_one():
        r = client.request("GET", f"{coll}/abc")
        b = body_json(r)
        ok = (r.status_code == 200 and isinstance(b, dict) and b.get("id") == "abc"
              and b.get("payload") == "hello" and b.get("sortindex") == 5)
        results.check("GET storage/bookmarks/abc -> payload and sortindex match", ok, describe(r))
    attempt("GET storage/bookmarks/abc -> payload and sortindex match", get_one)

    # 5. DELETE the item, then GET it.
    def delete_one():
        r = client.request("DELETE", f"{coll}/abc")
        results.check("DELETE storage/bookmarks/abc -> 200", r.status_code == 200, describe(r))
        r = client.request("GET", f"{coll}/abc")
        results.check("GET deleted storage/bookmarks/abc -> 404", r.status_code == 404,
                      describe(r))
    attempt("DELETE storage/bookmarks/abc -> 200", delete_one)

    # 6. info/collections.
    def info_collections():
        r = client.request("GET", f"{prefix}/info/collections")
        b = body_json(r)
        ok = (r.status_code == 200 and isinstance(b, dict) and is_number(b.get("bookmarks")))
        results.check("GET info/collections -> lists bookmarks", ok, describe(r))
    attempt("GET info/collections -> lists bookmarks", info_collections)

    # 7. Authentication failures.
    def wrong_key():
        wrong = tokenlib.get_derived_secret(token, secret=secret + "-wrong")
        r = client.request("GET", f"{prefix}/info/collections", key=wrong)
        results.check("request signed with a wrong key -> 401", r.status_code == 401,
                      describe(r))
    attempt("request signed with a wrong key -> 401", wrong_key)

    def foreign_token():
        other_secret = secrets.token_hex(32)
        other = tokenlib.make_token({"uid": uid, "node": base_url}, secret=other_secret)
        other_key = tokenlib.get_derived_secret(other, secret=other_secret)
        r = client.request("GET", f"{prefix}/info/collections", token=other, key=other_key)
        results.check("token signed with another master secret -> 401", r.status_code == 401,
                      describe(r))
    attempt("token signed with another master secret -> 401", foreign_token)

    def unsigned():
        r = client.request("GET", f"{prefix}/info/collections", sign=False)
        results.check("request without Authorization -> 401", r.status_code == 401, describe(r))
    attempt("request without Authorization -> 401", unsigned)

    # 8. Wipe the user's storage.
    def delete_storage():
        r = client.request("DELETE", f"{prefix}/storage")
        results.check("DELETE storage -> 200", r.status_code == 200, describe(r))
        r = client.request("GET", f"{prefix}/info/collections")
        b = body_json(r)
        results.check("GET info/collections after wipe -> {}",
                      r.status_code == 200 and b == {}, describe(r))
    attempt("DELETE storage -> 200", delete_storage)


def main(argv):
    binary = argv[1] if len(argv) > 1 else os.environ.get(
        "WEFT_BIN", os.path.join(REPO_ROOT, "target", "debug", "weft"))
    db_spec = argv[2] if len(argv) > 2 else os.environ.get("WEFT_INTEROP_DATABASE", "sqlite")
    results = Results()
    label = "mysql" if db_spec.startswith("mysql") else "sqlite"
    print(f"interop ({label}): weft={binary}", flush=True)

    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        results.check("weft binary exists", False, f"{binary} is not an executable file")
        print(f"{results.passed} passed, {results.failed} failed")
        return 1

    tmpdir = tempfile.mkdtemp(prefix="weft-interop-")
    cleanup_db = None
    proc = None
    try:
        database_url, cleanup_db = prepare_database(db_spec, tmpdir)
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        secret = secrets.token_hex(32)
        log_path = os.path.join(tmpdir, "weft.log")
        proc = start_server(binary, {
            "WEFT_LISTEN": f"127.0.0.1:{port}",
            "WEFT_PUBLIC_URL": base_url,
            "WEFT_DATA_DIR": tmpdir,
            "WEFT_DATABASE_URL": database_url,
            "WEFT_MASTER_SECRET": secret,
        }, log_path)
        up, why = wait_until_up(proc, base_url)
        if results.check("weft serve starts and answers HTTP", up, why):
            run_checks(results, base_url, secret)
        if results.failed:
            tail = log_tail(log_path)
            if tail:
                print("---- last lines of the weft log ----")
                print(tail)
                print("------------------------------------")
    except subprocess.CalledProcessError as exc:
        results.check("test database created", False, str(exc))
    finally:
        if proc is not None:
            stop_server(proc)
        if cleanup_db is not None:
            try:
                cleanup_db()
            except (subprocess.SubprocessError, OSError) as exc:
                print(f"warning: could not drop the interop database: {exc}", file=sys.stderr)
        shutil.rmtree(tmpdir, ignore_errors=True)

    print(f"{results.passed} passed, {results.failed} failed")
    return 0 if results.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
