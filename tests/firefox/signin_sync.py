#!/usr/bin/env python3
"""Local accounts with a real Firefox (local-accounts.md §7), loopback only, bounded in time.

Starts `weft serve` with local accounts on (SQLite or MariaDB), makes an invite, and drives a
headless Debian firefox-esr through Marionette:

1. profile A, with only the prefs `weft serve` printed, runs the onepw test vectors
   (local-accounts.md §8) through the page's own script, then opens the invite link `weft
   account invite` printed and does what the page says ("Sign in to sync": a fresh profile
   does not listen to Weft's page before); it types the password once (and its repeat), the
   page creates the account and hands the session to Firefox over the WebChannel; Firefox
   syncs. A bookmark and a history visit are added and synced.
2. Firefox's kSync is compared with one derived independently here (that sign-in's session is
   "another device" for step 3), and a login is timed for the server's CPU cost of the stretch.
3. The account page (issue 21): A opens Firefox's "Manage account", sees its device, changes
   the password in the page; A keeps syncing, the other session gets 401.
4. profile B (fresh) signs in with the NEW password and must get both back, with A's kSync.
5. Send Tab (issue 25): A sends a tab to B with the Send Tab menu's call; B gets it at "Sync
   Now" (no push service); a command B did not register is refused; the URL is not in a dump.
   A dump of the whole database must contain neither kB nor kSync (nor either password).
6. "Sign out" of B on A's page: B's next token request fails and B shows signed out; B signs
   in again on Weft's page opened directly. "Delete account" on A's page: A is signed out, and
   the purge and the deleter (run every 2 s here) leave no row of the account's storage.
7. A loopback proxy receives every non-loopback request Firefox makes; it must record none.

Prints the request sequence Firefox made during sign-in and first sync, and the measured CPU
time of one sign-in. Exit status 0 on success. Stops only the processes it started.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import socket
import socketserver
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from marionette_driver.by import By
from marionette_driver.marionette import Marionette

HERE = os.path.dirname(os.path.abspath(__file__))
OLDSYNC = "https://identity.mozilla.com/apps/oldsync"
NS = b"identity.mozilla.com/picl/v1/"
EMAIL = "firefox-test@example.org"
PASSWORD = "correct horse battery staple"
BOOKMARK_URL = "https://weft.example/bookmarked-by-profile-a"
VISIT_URL = "https://weft.example/visited-by-profile-a"
TEST_DEADLINE_S = 300


def log(*args):
    print("[firefox-test]", *args, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, predicate, timeout, interval=0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# ---------------------------------------------------------------- stray-request proxy

class StrayProxy(socketserver.ThreadingTCPServer):
    """Answers every request 502 and records its request line: Firefox must send none."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.recorded = []

        class Handler(socketserver.StreamRequestHandler):
            def handle(inner):
                inner.connection.settimeout(5)
                try:
                    line = inner.rfile.readline(4096).decode("latin-1").strip()
                except OSError:
                    return
                if line:
                    self.recorded.append(line)
                try:
                    inner.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self):
        return self.server_address[1]


# ---------------------------------------------------------------- onepw, independently

def hkdf(ikm, info, length):
    prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + NS + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def derive(email, password, client_salt=None):
    """(authPW, unwrapBKey): quick stretch v1, or v2 with the account's clientSalt."""
    if client_salt:
        qs = hashlib.pbkdf2_hmac("sha256", password.encode(), client_salt.encode(), 650000, 32)
    else:
        qs = hashlib.pbkdf2_hmac("sha256", password.encode(), NS + b"quickStretch:" + email.encode(), 1000, 32)
    return hkdf(qs, b"authPW", 32), hkdf(qs, b"unwrapBkey", 32)


def hawk_header(method, url, token_hex, kind):
    out = hkdf(bytes.fromhex(token_hex), kind.encode(), 96)
    token_id, key = out[:32].hex(), out[32:64]
    parsed = urllib.parse.urlsplit(url)
    ts, nonce = str(int(time.time())), base64.b64encode(secrets.token_bytes(6)).decode()
    target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    normalized = f"hawk.1.header\n{ts}\n{nonce}\n{method}\n{target}\n{parsed.hostname}\n{parsed.port}\n\n\n"
    mac = base64.b64encode(hmac.new(key, normalized.encode(), hashlib.sha256).digest()).decode()
    return f'Hawk id="{token_id}", ts="{ts}", nonce="{nonce}", mac="{mac}"', out[64:]


def http_json(method, url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


# ---------------------------------------------------------------- weft

class Weft:
    def __init__(self, binary, backend, mysql_url, workdir, extra_env=None):
        self.binary, self.backend, self.workdir = binary, backend, workdir
        self.port = free_port()
        self.origin = f"http://localhost:{self.port}"
        self.mysql = None
        if backend == "mysql":
            self.mysql_db = f"weft_test_firefox_{os.getpid()}"
            m = re.match(r"mysql://([^:@/]+)(?::([^@/]*))?@([^:/]+)(?::(\d+))?", mysql_url)
            self.mysql = dict(user=m.group(1), password=m.group(2), host=m.group(3), port=m.group(4) or "3306")
            self.mariadb(f"DROP DATABASE IF EXISTS {self.mysql_db}; CREATE DATABASE {self.mysql_db}")
            self.database_url = f"{mysql_url.rstrip('/')}/{self.mysql_db}"
        else:
            self.database_url = f"sqlite:{workdir}/weft.db"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WEFT_")}
        self.env.update(
            WEFT_LISTEN=f"127.0.0.1:{self.port}",
            WEFT_PUBLIC_URL=self.origin,
            WEFT_DATA_DIR=f"{workdir}/data",
            WEFT_DATABASE_URL=self.database_url,
            WEFT_ACCOUNTS_ENABLED="true",
            WEFT_LOG_FORMAT="json",
        )
        self.env.update(extra_env or {})
        self.log_path = f"{workdir}/weft.log"
        self.proc = None

    def mariadb_args(self, tool):
        args = [tool, "-h", self.mysql["host"], "-P", self.mysql["port"], "-u", self.mysql["user"]]
        if self.mysql["password"]:
            args.append(f"-p{self.mysql['password']}")
        return args

    def mariadb(self, sql):
        subprocess.run(self.mariadb_args("mariadb") + ["-e", sql], check=True, timeout=30)

    def command(self, *args):
        out = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise AssertionError(f"weft {' '.join(args)} failed: {out.stderr}")
        return out.stdout

    def start(self):
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen([self.binary, "serve"], env=self.env, stdout=self.log_file, stderr=self.log_file)
        wait_for("weft to listen", lambda: "listening on" in open(self.log_path).read(), 30)

    def printed_prefs(self):
        """The (name, value) pairs `weft serve` printed for Firefox's about:config."""
        prefix = "weft: in Firefox (about:config) set "
        return [tuple(line[len(prefix):].strip().split(" = ", 1))
                for line in open(self.log_path) if line.startswith(prefix)]

    def query(self, sql):
        """The rows of one SELECT on the test's database, each a list of strings."""
        if self.backend == "mysql":
            out = subprocess.run(self.mariadb_args("mariadb") + ["-N", "-B", self.mysql_db, "-e", sql],
                                 capture_output=True, text=True, timeout=30, check=True)
            return [line.split("\t") for line in out.stdout.splitlines()]
        db = sqlite3.connect(self.database_url[len("sqlite:"):], timeout=10)
        try:
            return [[str(v) for v in row] for row in db.execute(sql)]
        finally:
            db.close()

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def requests(self):
        """(method, route, status) of every request logged so far, in order."""
        out = []
        for line in open(self.log_path):
            if not line.startswith("{"):
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("message") == "request":
                out.append((event.get("method"), event.get("route"), event.get("status")))
        return out

    def dump(self):
        if self.backend == "mysql":
            out = subprocess.run(self.mariadb_args("mariadb-dump") + ["--skip-comments", self.mysql_db],
                                 capture_output=True, timeout=60, check=True)
            return out.stdout
        db = sqlite3.connect(self.database_url[len("sqlite:"):])
        try:
            return "\n".join(db.iterdump()).encode()
        finally:
            db.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.mysql:
            try:
                self.mariadb(f"DROP DATABASE IF EXISTS {self.mysql_db}")
            except (subprocess.SubprocessError, OSError) as e:
                log("could not drop", self.mysql_db, e)


# ---------------------------------------------------------------- firefox

ASYNC = """
const resolve = arguments[arguments.length - 1];
(async () => { %s })().then(v => resolve({ok: v === undefined ? null : v}), e => resolve({error: String(e) + "\\n" + (e && e.stack)}));
"""


def user_pref(name, value):
    """A user.js line; `true`/`false` as booleans, every other value as a string."""
    literal = value if value in ("true", "false") else json.dumps(value)
    return f'user_pref("{name}", {literal});'


class Firefox:
    def __init__(self, name, weft, proxy, workdir, account_prefs=None):
        """`account_prefs`: (name, value) pairs for the account server, by default the two a
        loopback http Weft needs; a test passes the ones `weft serve` printed."""
        self.name = name
        self.profile = os.path.join(workdir, f"profile-{name}")
        self.home = os.path.join(workdir, f"home-{name}")
        os.makedirs(self.profile)
        os.makedirs(self.home)
        self.port = free_port()
        prefs = open(os.path.join(HERE, "hermetic-user.js")).read()
        prefs += "\n".join([
            f'user_pref("marionette.port", {self.port});',
            # A readable device name on Weft's account page (Firefox's default names the OS
            # user, which the throw-away HOME lacks). The older pref, which Firefox moves into
            # identity.fxaccounts.account.device.name: a sign-in clears that one.
            f'user_pref("services.sync.client.name", "Firefox {name.upper()} (test)");',
            *(user_pref(n, v) for n, v in account_prefs or [("identity.fxaccounts.autoconfig.uri", weft.origin),
                                                             ("identity.fxaccounts.allowHttp", "true")]),
            f'user_pref("network.proxy.http_port", {proxy.port});',
            f'user_pref("network.proxy.ssl_port", {proxy.port});',
            f'user_pref("network.security.ports.banned.override", "{weft.port}");',
            # Not in the shared hermetic profile: Firefox 153 fetches the Widevine CDM from
            # Google's update service (seen by the stray-request proxy).
            'user_pref("media.gmp-manager.chromium-update-url", "http://127.0.0.1:9/");',
            'user_pref("media.gmp-manager.updateEnabled", false);',
        ]) + "\n"
        with open(os.path.join(self.profile, "user.js"), "w") as f:
            f.write(prefs)
        env = dict(os.environ, HOME=self.home, MOZ_HEADLESS="1", MOZ_CRASHREPORTER_DISABLE="1",
                   MOZ_DISABLE_AUTO_SAFE_MODE="1", MOZ_REMOTE_SETTINGS_DEVTOOLS="1")
        self.log_path = os.path.join(workdir, f"firefox-{name}.log")
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            ["firefox-esr", "--headless", "--marionette", "--remote-allow-system-access", "--no-remote",
             "--profile", self.profile],
            env=env, stdout=self.log_file, stderr=self.log_file)

        def port_open():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_for(f"Firefox {name}'s Marionette port", port_open, 60)
        self.m = Marionette(host="127.0.0.1", port=self.port)
        self.m.start_session()
        self.m.timeout.script = 90
        self.m.timeout.page_load = 30

    def chrome(self, body, *args):
        self.m.set_context(self.m.CONTEXT_CHROME)
        result = self.m.execute_async_script(ASYNC % body, script_args=args)
        if "error" in result:
            raise AssertionError(f"chrome script failed in profile {self.name}: {result['error']}")
        return result["ok"]

    def content(self, body, *args):
        self.m.set_context(self.m.CONTEXT_CONTENT)
        result = self.m.execute_async_script(ASYNC % body, script_args=args)
        if "error" in result:
            raise AssertionError(f"page script failed in profile {self.name}: {result['error']}")
        return result["ok"]

    def connect_url(self):
        # What Firefox's "Sign in to sync" opens; with the autoconfig pref set it first fetches
        # /.well-known/fxa-client-configuration from Weft (local-accounts.md §2).
        return self.chrome("""
            const { FxAccountsConfig } = ChromeUtils.importESModule("resource://gre/modules/FxAccountsConfig.sys.mjs");
            return await FxAccountsConfig.promiseConnectAccountURI("weft-test");
        """)

    def sign_in(self, email, password, invite=None, screenshot=None, url=None):
        """Signs in on Weft's page: by default the one Firefox's "Sign in to sync" opens; with
        `url`, Weft's page opened directly (the page then asks Firefox to begin the flow)."""
        url = url or self.connect_url()
        log(f"profile {self.name}: sign-in page {url.split('?')[0]}")
        self.m.set_context(self.m.CONTEXT_CONTENT)
        self.m.navigate(url)
        wait_for("the sign-in form", lambda: self.m.find_elements(By.ID, "email"), 20)
        if invite:
            if self.m.find_element(By.ID, "invite").is_displayed() is False:
                self.m.find_element(By.ID, "toggle").click()
            self.m.find_element(By.ID, "invite").send_keys(invite)
        self.m.find_element(By.ID, "email").send_keys(email)
        self.m.find_element(By.ID, "password").send_keys(password)
        if invite:
            self.m.find_element(By.ID, "password2").send_keys(password)
        if screenshot:
            self.screenshot(screenshot, "the sign-in page")
        self.m.find_element(By.ID, "submit").click()
        self.wait_page_state("weftSignedIn", "true", f"profile {self.name} to sign in", 90)

    def sign_up_from_invite_link(self, link, password, screenshot=None):
        """What a new user does with the link `weft account invite` printed: opens it in this
        Firefox, does what the page says, types the password (and its repeat) once and submits;
        the account is created and Firefox signed in, in that one flow. A Firefox that has not
        read Weft's configuration yet (a fresh profile) does not answer the page, which then
        asks for "Sign in to sync": that page opens with the invite filled in. Returns which
        way it went."""
        log(f"profile {self.name}: opens the invite link {link.split('?')[0]}?invite=…")
        self.m.set_context(self.m.CONTEXT_CONTENT)
        self.m.navigate(link)
        wait_for("the create-account form", lambda: self.m.find_elements(By.ID, "password2"), 20)
        listening = wait_for("the page to ask Firefox", lambda: self.m.execute_script(
            "return document.body.dataset.weftFirefox"), 20)
        if listening == "listening":
            way = "on the invite link's page"
        else:
            hint = self.m.find_element(By.ID, "firefox-hint")
            assert hint.is_displayed() and "Sign in to sync" in hint.text, "the page does not say what to do"
            way = "on the page Firefox's \"Sign in to sync\" opened, as the invite link's page asked"
            url = self.connect_url()
            self.m.set_context(self.m.CONTEXT_CONTENT)
            self.m.navigate(url)
            wait_for("the create-account form", lambda: self.m.find_elements(By.ID, "password2"), 20)
        prefilled = self.m.execute_script(
            "return [document.getElementById('invite').value, document.getElementById('email').value,"
            " document.getElementById('password2').offsetParent !== null]")
        assert prefilled[0] and prefilled[1] == EMAIL and prefilled[2], \
            f"the invite link did not open the create form with the invite and email filled in: {prefilled}"
        self.m.find_element(By.ID, "password").send_keys(password)
        self.m.find_element(By.ID, "password2").send_keys(password)
        if screenshot:
            self.screenshot(screenshot, "the sign-in page, creating an account from an invite")
        self.m.find_element(By.ID, "submit").click()
        self.wait_page_state("weftSignedIn", "true", f"profile {self.name} to sign up and sign in", 90)
        log(f"profile {self.name}: signed up and signed in {way}, the password typed once (and its repeat)")
        return way

    def screenshot(self, path, what):
        """The whole page in the current tab (no browser chrome), as PNG."""
        self.m.set_context(self.m.CONTEXT_CONTENT)
        with open(path, "wb") as f:
            f.write(self.m.screenshot(format="binary"))
        log(f"screenshot of {what}: {path}")

    def wait_page_state(self, key, value, what, timeout):
        """Waits until Weft's page sets `document.body.dataset[key]` to `value`; fails at once
        with the page's words when it reports an error."""
        def outcome():
            state = self.m.execute_script(
                "return [document.body.dataset[arguments[0]] || '', document.getElementById('status').className,"
                " document.getElementById('status').textContent]", script_args=[key])
            if state[1] == "error":
                raise AssertionError(f"profile {self.name}: the page reports: {state[2]}")
            return state[0] == value

        wait_for(what, outcome, timeout, interval=0.5)

    def wait_first_sync(self):
        return self.chrome("""
            const { Weave } = ChromeUtils.importESModule("resource://services-sync/main.sys.mjs");
            const deadline = Date.now() + 80000;
            while (Date.now() < deadline) {
              const last = Services.prefs.getStringPref("services.sync.lastSync", "");
              if (last && Weave.Status.sync === "success.sync") return last;
              await new Promise(r => setTimeout(r, 250));
            }
            throw new Error("no first sync: status " + Weave.Status.service + " / " + Weave.Status.sync + " / login " + Weave.Status.login);
        """)

    def sync(self):
        return self.chrome("""
            const { Weave } = ChromeUtils.importESModule("resource://services-sync/main.sys.mjs");
            await new Promise((resolve, reject) => {
              const topics = ["weave:service:sync:finish", "weave:service:sync:error"];
              const observer = (subject, topic) => {
                for (const t of topics) Services.obs.removeObserver(observer, t);
                topic.endsWith("finish") ? resolve() : reject(new Error("sync error: " + Weave.Status.sync));
              };
              for (const t of topics) Services.obs.addObserver(observer, t);
              Weave.Service.sync({ why: "user" });
            });
        """)

    def quit(self):
        try:
            self.m.delete_session()
        except Exception:  # noqa: BLE001 - the browser may already be gone
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


VECTORS_SCRIPT = """
const W = (window.wrappedJSObject || window).WeftOnepw;
const c = await W.deriveCredentials("andr\\u00e9@example.org", "p\\u00e4ssw\\u00f6rd");
const kft = await W.tokenKeys("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f", "keyFetchToken");
const st = await W.tokenKeys("a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf", "sessionToken");
const bundle = "ee5c58845c7c9412b11bbd20920c2fddd83c33c9cd2c2de2d66b222613364636"
  + "c2c0f8cfbb7c630472c0bd88451342c6c05b14ce342c5ad46ad89e84464c993c"
  + "3927d30230157d0817a077eef4b20d976f7a97363faf3f064c003ada7d01aa70";
const keys = await W.unbundle(kft.keyRequestKey, bundle);
const sync = await W.syncKeys(W.unhex("85c4f8c1d8e3e2186824c127af786891dd03c6e05b1b45f28f7181211bf2affb"));
return {
  quickStretchedPW: W.hex(c.quickStretchedPW), authPW: W.hex(c.authPW), unwrapBKey: W.hex(c.unwrapBKey),
  kftTokenId: kft.id, kftHmacKey: W.hex(kft.hmacKey), keyRequestKey: W.hex(kft.keyRequestKey),
  stTokenId: st.id, stHmacKey: W.hex(st.hmacKey), kA: W.hex(keys.kA), wrapKb: W.hex(keys.wrapKb),
  kSync: W.hex(sync.kSync), kXCS: W.hex(sync.kXCS), kXCSb64: W.b64url(sync.kXCS),
};
"""

EXPECTED_VECTORS = {
    "quickStretchedPW": "e4e8889bd8bd61ad6de6b95c059d56e7b50dacdaf62bd84644af7e2add84345d",
    "authPW": "247b675ffb4c46310bc87e26d712153abe5e1c90ef00a4784594f97ef54f2375",
    "unwrapBKey": "de6a2648b78284fcb9ffa81ba95803309cfba7af583c01a8a1a63e567234dd28",
    "kftTokenId": "3d0a7c02a15a62a2882f76e39b6494b500c022a8816e048625a495718998ba60",
    "kftHmacKey": "87b8937f61d38d0e29cd2d5600b3f4da0aa48ac41de36a0efe84bb4a9872ceb7",
    "keyRequestKey": "14f338a9e8c6324d9e102d4e6ee83b209796d5c74bb734a410e729e014a4a546",
    "stTokenId": "c0a29dcf46174973da1378696e4c82ae10f723cf4f4d9f75e39f4ae3851595ab",
    "stHmacKey": "9d8f22998ee7f5798b887042466b72d53e56ab0c094388bf65831f702d2febc0",
    "kA": bytes(range(0x20, 0x40)).hex(),
    "wrapKb": bytes(range(0x40, 0x60)).hex(),
    "kSync": "d63eb2610f1e5edc21b37fed22b93b0f9ea379840fb5c3c5eb95991b9b3bfab6"
             "9cbabfda0762bdf0b27431d81960c8cf5dab7d482901213a5a1b003eb0081ed0",
    "kXCS": "518fef27c6bbc0220aab0f00b1a37308",
    "kXCSb64": "UY_vJ8a7wCIKqw8AsaNzCA",
}


# On Weft's own origin: profile b opens the tab it receives, and must stay on loopback.
TAB_PATH = "/weft-send-tab-test/sent-from-profile-a?tab=42"
SEND_TAB = "https://identity.mozilla.com/cmd/open-uri"
FXA = 'const { getFxAccountsSingleton } = ChromeUtils.importESModule("resource://gre/modules/FxAccounts.sys.mjs"); const fxa = getFxAccountsSingleton();'


def send_tab(a, b, weft):
    """Issue 25: A sends a tab to B with the call of Firefox's "Send Tab to Device" menu
    (`gSync.sendTabToDevice`); B receives it without push when it asks for missed commands
    ("Sync Now", `gSync.doSync`). Returns a short report; logs the requests and the delay."""
    b_id = b.chrome(FXA + """
        const { Observers } = ChromeUtils.importESModule("resource://services-common/observers.sys.mjs");
        window.weftTabs = [];
        Observers.add("fxaccounts:commands:open-uri", tabs => {
          for (const t of tabs) window.weftTabs.push({ uri: t.uri, title: t.title, sender: t.sender && t.sender.name, at: Date.now() });
        });
        return await fxa.device.getLocalId();
    """)
    tab_url = weft.origin + TAB_PATH
    before_send = len(weft.requests())
    sent = a.chrome(FXA + """
        const [targetId, url] = arguments;
        const deadline = Date.now() + 60000;
        while (Date.now() < deadline) {
          await fxa.device.refreshDeviceList({ ignoreCached: true });
          const target = (fxa.device.recentDeviceList || []).find(d => d.id === targetId);
          if (target && fxa.commands.sendTab.isDeviceCompatible(target)) {
            const ok = await gSync.sendTabToDevice({ url, title: "Weft send-tab test" }, [target]);
            return { ok, at: Date.now() };
          }
          await new Promise(r => setTimeout(r, 1000));
        }
        throw new Error("profile b never listed with Send Tab keys");
    """, b_id, tab_url)
    assert sent["ok"], "gSync.sendTabToDevice reported a failure"
    send_sequence = weft.requests()[before_send:]
    dump = weft.dump()
    assert TAB_PATH.encode() not in dump, "the tab's URL is stored in clear"
    assert b"account_device_commands" in dump

    # A command B did not register is refused (400 errno 157), as FxA refuses it.
    refused = a.chrome(FXA + """
        const { sessionToken } = await fxa._internal.getUserAccountData(["sessionToken"]);
        try {
          await fxa._internal.fxAccountsClient.invokeCommand(sessionToken, "https://identity.mozilla.com/cmd/not-registered", arguments[0], { encrypted: "x" });
          return null;
        } catch (e) { return { code: e.code, errno: e.errno }; }
    """, b_id)
    assert refused == {"code": 400, "errno": 157}, f"an unregistered command was not refused: {refused}"

    before_receive = len(weft.requests())
    received = b.chrome("""
        const deadline = Date.now() + 60000;
        const passive = window.weftTabs.length > 0;
        if (!passive) gSync.doSync();
        while (!window.weftTabs.length && Date.now() < deadline) await new Promise(r => setTimeout(r, 100));
        return { tabs: window.weftTabs, passive };
    """)
    assert received["tabs"], "profile b received no tab within 60 s of Sync Now"
    tab = received["tabs"][0]
    assert tab["uri"] == tab_url, f"profile b received {tab}"
    delay_ms = tab["at"] - sent["at"]
    receive_sequence = weft.requests()[before_receive:]
    log("send tab: requests Weft received while profile a sent the tab:")
    for method, route, status in send_sequence:
        log(f"    {status} {method} {route}")
    log("send tab: requests Weft received while profile b fetched it (Sync Now):")
    for method, route, status in receive_sequence:
        log(f"    {status} {method} {route}")
    how = "before any Sync Now (a device-list refresh polled)" if received["passive"] else "at Sync Now"
    log(f"send tab: profile b received {tab['uri']} from {tab['sender']!r} {how}, {delay_ms} ms after the send")
    return f"tab arrived {how}, {delay_ms} ms after the send"


# ---------------------------------------------------------------- the account page (issue 21)

NEW_PASSWORD = "a new, longer correct horse battery staple"
# Every storage table keyed by the tokenserver's uid (`userid`); the user's row is `users.uid`.
STORAGE_TABLES = ("bso", "user_collections", "batch_uploads", "batch_upload_items", "weft_deleted_collections")
# Short purge passes (retired users' data, then the deleter's chunks): the test waits for a
# deleted account's storage to be gone. Defaults: an hour, a day's grace, five minutes.
QUICK_PURGE_ENV = {
    "WEFT_TOKENSERVER_RETIRED_PURGE_INTERVAL_SECONDS": "2",
    "WEFT_TOKENSERVER_RETIRED_PURGE_GRACE_PERIOD_SECONDS": "0",
    "WEFT_PURGE_INTERVAL_SECONDS": "2",
}


def session_status(weft, session_token):
    """The HTTP status of `GET /v1/session/status` signed with a session token."""
    url = f"{weft.origin}/v1/session/status"
    header, _ = hawk_header("GET", url, session_token, "sessionToken")
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": header}), timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def browser_account(browser):
    """The account Firefox holds: {uid, sessionToken, deviceId}, or None when signed out."""
    return browser.chrome(FXA + """
        const data = await fxa._internal.getUserAccountData(["uid", "sessionToken"]);
        if (!data) return null;
        return { uid: data.uid, sessionToken: data.sessionToken || null, deviceId: await fxa.device.getLocalId() };
    """)


def open_manage_account(browser, weft):
    """Opens what Firefox's "Manage account" opens (gSync.openFxAManagePage: the URL of
    FxAccountsConfig.promiseManageURI) and waits until Weft's page, with the session the browser
    handed over (fxa_status), lists the account's devices; returns the listed device ids."""
    url = browser.chrome("""
        const { FxAccountsConfig } = ChromeUtils.importESModule("resource://gre/modules/FxAccountsConfig.sys.mjs");
        return await FxAccountsConfig.promiseManageURI("weft-test");
    """)
    assert url.startswith(weft.origin + "/settings?"), f"Firefox's Manage account opens {url}"
    browser.m.set_context(browser.m.CONTEXT_CONTENT)
    browser.m.navigate(url)
    browser.wait_page_state("weftAccount", "ready", f"profile {browser.name}'s account page", 30)
    return listed_devices(browser)


def listed_devices(browser):
    browser.m.set_context(browser.m.CONTEXT_CONTENT)
    return browser.m.execute_script(
        "return Array.from(document.querySelectorAll('#devices li.device'), li => li.dataset.deviceId)")


def fill_and_submit(browser, form, fields):
    """Types each (input id, text) into the open account page, then presses `form`'s button."""
    browser.m.set_context(browser.m.CONTEXT_CONTENT)
    for field, text in fields:
        browser.m.find_element(By.ID, field).send_keys(text)
    browser.m.find_element(By.CSS_SELECTOR, f"#{form} button[type=submit]").click()


def change_password_on_page(browser, old, new):
    """Changes the password in the open account page's form (the onepw flow runs in the page);
    returns the session Firefox was handed (`fxaccounts:change_password`)."""
    before = browser_account(browser)["sessionToken"]
    fill_and_submit(browser, "change", [("old-password", old), ("new-password", new), ("new-password2", new)])
    browser.wait_page_state("weftPasswordChanged", "true", f"profile {browser.name}'s password change", 90)
    after = browser_account(browser)
    assert after and after["sessionToken"] and after["sessionToken"] != before, \
        f"profile {browser.name} was not handed its new session: {after}"
    return after["sessionToken"]


def sign_out_device_on_page(browser, device_id):
    """Presses "Sign out" on a device's line of the open account page; waits for it to go."""
    browser.m.set_context(browser.m.CONTEXT_CONTENT)
    browser.m.find_element(By.CSS_SELECTOR, f'#devices li[data-device-id="{device_id}"] button').click()
    wait_for(f"device {device_id} to leave the account page's list",
             lambda: device_id not in listed_devices(browser), 30, interval=0.5)


def next_token_request(browser):
    """The Sync token request Firefox makes once its cached OAuth access token has expired
    (dropped here locally, nothing revoked, instead of waiting its lifetime): a new access
    token with the session, then the tokenserver. Returns the error it ended with (None if it
    succeeded) and the state Firefox's toolbar shows (UIState) afterwards."""
    return browser.chrome(FXA + f"""
        const {{ Weave }} = ChromeUtils.importESModule("resource://services-sync/main.sys.mjs");
        const {{ UIState }} = ChromeUtils.importESModule("resource://services-sync/UIState.sys.mjs");
        const state = fxa._internal.currentAccountState;
        const cached = state.getCachedToken(["{OLDSYNC}"]);
        if (cached) state.removeCachedToken(cached.token);
        let error = null;
        try {{ await Weave.Service.identity._ensureValidToken(true); }} catch (e) {{ error = String(e); }}
        const deadline = Date.now() + 20000;
        await UIState.refresh();
        let status = UIState.get().status;
        while (status !== UIState.STATUS_LOGIN_FAILED && Date.now() < deadline) {{
          await new Promise(r => setTimeout(r, 250));
          await UIState.refresh();
          status = UIState.get().status;
        }}
        return {{ error, status, hasLocalSession: await fxa.hasLocalSession() }};
    """)


def storage_rows(weft, storage_uids):
    """How many rows each storage table, and the tokenserver's users, hold for these uids."""
    uids = ", ".join(storage_uids)
    rows = {t: int(weft.query(f"SELECT COUNT(*) FROM {t} WHERE userid IN ({uids})")[0][0]) for t in STORAGE_TABLES}
    rows["users"] = int(weft.query(f"SELECT COUNT(*) FROM users WHERE uid IN ({uids})")[0][0])
    return rows



def run(args, workdir):
    weft = Weft(args.weft, args.backend, args.mysql_url, workdir, extra_env=QUICK_PURGE_ENV)
    proxy = StrayProxy()
    browsers = []
    try:
        weft.start()
        # Issue 21: a fresh profile gets only what `weft serve` printed, and the invite link.
        prefs = weft.printed_prefs()
        assert prefs == [("identity.fxaccounts.autoconfig.uri", weft.origin),
                         ("identity.fxaccounts.allowHttp", "true")], f"weft serve printed {prefs}"
        invite_link = re.search(r"http://\S+\?invite=[0-9a-f]+\S*",
                                weft.command("account", "invite", "--email", EMAIL)).group(0)

        a = Firefox("a", weft, proxy, workdir, account_prefs=prefs)
        browsers.append(a)
        # The page's own script against the published vectors, in this browser.
        a.m.set_context(a.m.CONTEXT_CONTENT)
        a.m.navigate(weft.origin + "/")
        got = a.content(VECTORS_SCRIPT)
        wrong = {k: (got.get(k), v) for k, v in EXPECTED_VECTORS.items() if got.get(k) != v}
        assert not wrong, f"the page's onepw derivations differ from the vectors: {wrong}"
        log(f"onepw vectors: {len(EXPECTED_VECTORS)} values match in the page's script")

        before = len(weft.requests())
        a.sign_up_from_invite_link(invite_link, PASSWORD, screenshot=args.screenshot)
        a.wait_first_sync()
        sequence = weft.requests()[before:]
        log("profile a signed up from the invite link and synced; requests Weft received during sign-up and first sync:")
        for method, route, status in sequence:
            log(f"    {status} {method} {route}")

        a.chrome(f"""
            const {{ PlacesUtils }} = ChromeUtils.importESModule("resource://gre/modules/PlacesUtils.sys.mjs");
            await PlacesUtils.bookmarks.insert({{ parentGuid: PlacesUtils.bookmarks.toolbarGuid,
              url: "{BOOKMARK_URL}", title: "Weft test bookmark" }});
            await PlacesUtils.history.insert({{ url: "{VISIT_URL}", title: "Weft test visit",
              visits: [{{ date: new Date(), transition: PlacesUtils.history.TRANSITIONS.TYPED }}] }});
        """)
        a.sync()
        firefox_key = a.chrome(f"""
            const {{ getFxAccountsSingleton }} = ChromeUtils.importESModule("resource://gre/modules/FxAccounts.sys.mjs");
            return await getFxAccountsSingleton().keys.getKeyForScope("{OLDSYNC}");
        """)
        log("profile a: bookmark and history visit synced")

        # The key Firefox holds, against an independent derivation from the password; and the
        # server's CPU cost of one sign-in (the scrypt stretch dominates it). This sign-in is
        # also "another device" whose session the password change must end.
        status = http_json("POST", f"{weft.origin}/v1/account/credentials/status", {"email": EMAIL})
        assert status["currentVersion"] == "v2", f"a new account gets the v2 quick stretch: {status}"
        auth_pw, unwrap_b_key = derive(EMAIL, PASSWORD, status["clientSalt"])
        cpu_before = weft.cpu_seconds()
        session = http_json("POST", f"{weft.origin}/v1/account/login?keys=true",
                            {"email": EMAIL, "authPW": auth_pw.hex()})
        cpu_login = weft.cpu_seconds() - cpu_before
        header, key_request_key = hawk_header("GET", f"{weft.origin}/v1/account/keys",
                                              session["keyFetchToken"], "keyFetchToken")
        bundle = bytes.fromhex(http_json("GET", f"{weft.origin}/v1/account/keys",
                                         headers={"Authorization": header})["bundle"])
        resp_keys = hkdf(key_request_key, b"account/keys", 96)
        assert hmac.compare_digest(hmac.new(resp_keys[:32], bundle[:64], hashlib.sha256).digest(), bundle[64:])
        wrap_kb = bytes(x ^ y for x, y in zip(bundle[32:64], resp_keys[64:96]))
        k_b = bytes(x ^ y for x, y in zip(wrap_kb, unwrap_b_key))
        k_sync = hkdf(k_b, b"oldsync", 64)
        assert firefox_key["k"] == base64.urlsafe_b64encode(k_sync).rstrip(b"=").decode(), \
            "Firefox's kSync differs from the one derived from the password"
        log(f"server CPU time of one sign-in (login with the scrypt stretch): {cpu_login * 1000:.0f} ms")
        other_session = session["sessionToken"]
        assert session_status(weft, other_session) == 200

        # Firefox's "Manage account": Weft's page lists this device; the password changes there.
        a_account = browser_account(a)
        listed = open_manage_account(a, weft)
        assert a_account["deviceId"] in listed, f"profile a's device {a_account['deviceId']} not in {listed}"
        a_session = change_password_on_page(a, PASSWORD, NEW_PASSWORD)
        assert session_status(weft, other_session) == 401, "a session from before the change still works"
        assert session_status(weft, a_session) == 200
        a.sync()
        log("account page: profile a's device listed; password changed on the page; profile a still "
            "syncs with the session it was handed; the session made before the change gets 401")

        b = Firefox("b", weft, proxy, workdir, account_prefs=prefs)
        browsers.append(b)
        b.sign_in(EMAIL, NEW_PASSWORD)
        b.wait_first_sync()

        def restored():
            found = b.chrome(f"""
                const {{ PlacesUtils }} = ChromeUtils.importESModule("resource://gre/modules/PlacesUtils.sys.mjs");
                const bookmark = await PlacesUtils.bookmarks.fetch({{ url: "{BOOKMARK_URL}" }});
                const visit = await PlacesUtils.history.fetch("{VISIT_URL}");
                return {{ bookmark: !!bookmark, visit: !!visit }};
            """)
            if not (found["bookmark"] and found["visit"]):
                b.sync()
            return found["bookmark"] and found["visit"]

        wait_for("profile b to restore the bookmark and the visit", restored, 90, interval=1)
        b_key = b.chrome(f"""
            const {{ getFxAccountsSingleton }} = ChromeUtils.importESModule("resource://gre/modules/FxAccounts.sys.mjs");
            return await getFxAccountsSingleton().keys.getKeyForScope("{OLDSYNC}");
        """)
        assert (b_key["kid"], b_key["k"]) == (firefox_key["kid"], firefox_key["k"]), \
            "the new password unwraps another key: kB changed"
        log("profile b (fresh, the NEW password) restored the bookmark and the history visit; same kSync")

        send_tab_report = send_tab(a, b, weft)

        dump = weft.dump()
        forbidden = {
            "kB (hex)": k_b.hex().encode(),
            "kB (base64url)": base64.urlsafe_b64encode(k_b).rstrip(b"="),
            "kB (base64)": base64.b64encode(k_b).rstrip(b"="),
            "kSync (hex)": k_sync.hex().encode(),
            "kSync (base64url)": base64.urlsafe_b64encode(k_sync).rstrip(b"="),
            "kSync (base64)": base64.b64encode(k_sync).rstrip(b"="),
            "kSync enc half (hex)": k_sync[:32].hex().encode(),
            "unwrapBKey (hex)": unwrap_b_key.hex().encode(),
            "the password": PASSWORD.encode(),
            "the new password": NEW_PASSWORD.encode(),
        }
        leaked = [name for name, needle in forbidden.items() if needle.lower() in dump.lower()]
        assert not leaked, f"the database dump contains {leaked}"
        assert len(dump) > 1000 and b"account_sessions" in dump, "the dump looks empty"
        log(f"database dump ({len(dump)} bytes) contains neither kB nor kSync")

        assert TAB_PATH.encode() not in dump and b"account_device_commands" in dump, \
            "the sent tab's URL is in the database dump"
        log(f"database dump does not contain the sent tab's URL ({send_tab_report})")

        # "Sign out" of B's device on A's page: B's next token request fails, B shows signed out.
        b_device = browser_account(b)["deviceId"]
        listed = open_manage_account(a, weft)
        a_device = browser_account(a)["deviceId"]
        assert {a_device, b_device} <= set(listed), f"devices a {a_device} and b {b_device} not both in {listed}"
        if args.settings_screenshot:
            a.screenshot(args.settings_screenshot, "the account page")
        sign_out_device_on_page(a, b_device)
        after = next_token_request(b)
        assert after["error"] and after["status"] == "login_failed" and not after["hasLocalSession"], \
            f"profile b still signed in after its device was signed out: {after}"
        log(f"profile b signed out from profile a's page: its next token request failed, "
            f"Firefox shows it {after['status']}")
        # B signs in again on Weft's page opened directly, not from "Sign in to sync": a Firefox
        # that has read Weft's configuration answers the page, which runs the whole flow.
        b.sign_in(EMAIL, NEW_PASSWORD, url=weft.origin + "/")
        b.sync()
        log("profile b signed in again on Weft's page opened directly, and synced")
        # B stops before the deletion: its storage token outlives the account, and with this
        # test's purge grace of 0 s a sync of B's after the purge would write rows again (the
        # default grace, a day, outlasts every token).
        b.quit()

        # "Delete account" (the password re-entered): A is signed out, the purge and the deleter
        # remove every row of the account's storage.
        # Every tokenserver row of the account (a replaced one too) and its storage.
        storage_uids = [row[0] for row in weft.query(f"SELECT uid FROM users WHERE email LIKE '{a_account['uid']}@%'")]
        held = storage_rows(weft, storage_uids)
        assert held["bso"] > 0 and held["users"] >= 1, f"the account's storage rows before deletion: {held}"
        started = time.monotonic()
        fill_and_submit(a, "delete", [("delete-password", NEW_PASSWORD)])
        a.wait_page_state("weftAccount", "deleted", "the account's deletion", 90)
        wait_for("profile a to be signed out", lambda: browser_account(a) is None, 20, interval=0.5)
        left = {}

        def purged():
            left.update(storage_rows(weft, storage_uids))
            return not any(left.values())

        try:
            wait_for(f"uids {storage_uids}' storage to be purged", purged, 60, interval=1)
        except AssertionError as e:
            raise AssertionError(f"{e}; rows left: {left}") from None
        assert not weft.query(f"SELECT uid FROM accounts WHERE uid = '{a_account['uid']}'"), "the account row is left"
        log(f"account deleted on the page: profile a signed out; {sum(held.values())} rows of uid(s) "
            f"{', '.join(storage_uids)} purged {time.monotonic() - started:.1f}s after the click")

        assert not proxy.recorded, f"Firefox tried to reach non-loopback hosts: {proxy.recorded}"
        log("no request left loopback")
        return sequence, cpu_login
    except BaseException:
        for browser in browsers:
            log(f"--- tail of {browser.log_path}")
            print(open(browser.log_path, errors="replace").read()[-4000:], file=sys.stderr)
        log(f"--- tail of {weft.log_path}")
        print(open(weft.log_path, errors="replace").read()[-6000:], file=sys.stderr)
        raise
    finally:
        for browser in browsers:
            browser.quit()
        weft.stop()
        proxy.shutdown()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weft", required=True, help="the weft binary")
    parser.add_argument("--backend", choices=["sqlite", "mysql"], default="sqlite")
    parser.add_argument("--mysql-url", default=os.environ.get("WEFT_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306"))
    parser.add_argument("--screenshot", help="write a PNG of the filled-in sign-in page here")
    parser.add_argument("--settings-screenshot", help="write a PNG of the account page (two devices) here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()

    def overtime(*_):
        raise TimeoutError(f"the Firefox test took longer than {TEST_DEADLINE_S}s")

    signal.signal(signal.SIGALRM, overtime)
    signal.alarm(TEST_DEADLINE_S)
    workdir = tempfile.mkdtemp(prefix="weft-firefox-")
    started = time.monotonic()
    try:
        run(args, workdir)
    except BaseException:
        print("0 passed, 1 failed", flush=True)
        raise
    finally:
        signal.alarm(0)
        if args.keep:
            log("work directory kept:", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    log(f"passed on {args.backend} in {time.monotonic() - started:.1f}s")
    print("1 passed, 0 failed", flush=True)


if __name__ == "__main__":
    main()
