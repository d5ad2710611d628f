#!/usr/bin/env python3
"""A user moved between storage nodes on the server, with a real Firefox (issue 23), loopback
only, bounded in time.

One `weft serve` serves two storage nodes as a webhead of a fleet does: node 1 is its public URL
(`http://localhost:PORT`, on MariaDB, beside the tokenserver and the local accounts), node 2 is
`http://127.0.0.1:PORT` (a SQLite file), told apart by the Host of each request. Tokens live
15 s and the deleter runs every second, so the old copy goes within the test.

1. Profile A signs in (local accounts) and syncs; a bookmark and a history visit are added and
   synced, to node 1.
2. `weft user move UID --to NODE2`.
3. A syncs again: the server log must show a new token (`GET /1.0/sync/1.5`), A's reads on
   node 2, and no write of bookmarks or history: node 2 holds both collections with exactly the
   timestamps node 1 had (every record too), and Firefox's own sync log has no POST or PUT of
   them.
4. A fresh profile B signs in and gets the bookmark and the visit, from node 2.
5. Once every token for node 1 has expired, node 1 holds none of the user's rows (deleter).
6. Firefox made no request off loopback.

Prints the requests Weft logged for A's sync after the move. Exit status 0 on success. Stops
only the processes it started. The browser, server and proxy helpers are
`signin_sync.py`'s.
"""

import argparse
import contextlib
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from signin_sync import (  # noqa: E402 - the helpers live beside this file
    BOOKMARK_URL,
    EMAIL,
    PASSWORD,
    VISIT_URL,
    Firefox,
    StrayProxy,
    Weft,
    log,
    wait_for,
)

TEST_DEADLINE_S = 150
TOKEN_SECONDS = 15
# The move command's margin after the token lifetime (and no expired-token grace here).
PURGE_AFTER_S = TOKEN_SECONDS + 10
MOVED_COLLECTIONS = ("bookmarks", "history")
ADD_BOOKMARK_AND_VISIT = """
const [bookmarkUrl, visitUrl] = arguments;
const { PlacesUtils } = ChromeUtils.importESModule("resource://gre/modules/PlacesUtils.sys.mjs");
const toolbar = PlacesUtils.bookmarks.toolbarGuid;
await PlacesUtils.bookmarks.insert({ parentGuid: toolbar, url: bookmarkUrl, title: "Weft test bookmark" });
const visits = [{ date: new Date(), transition: PlacesUtils.history.TRANSITIONS.TYPED }];
await PlacesUtils.history.insert({ url: visitUrl, title: "Weft test visit", visits });
"""


def json_lines(path):
    """The JSON objects among the lines of `path` (a line being written is not one yet)."""
    for line in open(path):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


class TwoNodeWeft(Weft):
    """`Weft` (MariaDB) with a second storage node on a SQLite file, served by the same process
    under another origin, short tokens and a deleter pass every second."""

    def __init__(self, binary, mysql_url, workdir):
        super().__init__(binary, "mysql", mysql_url, workdir)
        self.node_1 = self.origin
        self.node_2 = f"http://127.0.0.1:{self.port}"
        self.node_2_url = f"sqlite:{workdir}/node-2.db"
        self.config = f"{workdir}/weft.toml"
        with open(self.config, "w") as f:
            f.write(
                f"[tokenserver]\ntoken_duration_seconds = {TOKEN_SECONDS}\n"
                "[auth]\nexpired_token_grace_seconds = 0\n"
                "[purge]\ninterval_seconds = 1\n"
                f'[[nodes]]\nurl = "{self.node_2}"\ndatabase_url = "{self.node_2_url}"\n'
            )

    def command(self, *args):
        return super().command("--config", self.config, *args)

    def start(self):
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [self.binary, "--config", self.config, "serve"],
            env=self.env, stdout=self.log_file, stderr=self.log_file)
        wait_for("weft to listen", lambda: "listening on" in open(self.log_path).read(), 30)

    def logged(self):
        """(method, route, node, status) of every request logged so far, in order (the node
        only for storage requests)."""
        fields = ("method", "route", "node", "status")
        return [tuple(e.get(f) for f in fields) for e in json_lines(self.log_path) if e.get("message") == "request"]

    def rows(self, database_url, uid):
        """What `weft export` reads of user `uid` in a node's database: {collection: modified}
        and {(collection, id): modified}; both empty when it holds nothing of the user."""
        out = subprocess.run(
            [self.binary, "--config", self.config, "export", "--database", database_url,
             "--uid", str(uid), "--output", "-", "--no-progress"],
            env=self.env, capture_output=True, text=True, timeout=60)
        if "not in the source" in out.stderr:
            return {}, {}
        if out.returncode != 0:
            raise AssertionError(f"weft export of uid {uid} failed: {out.stderr}")
        collections, bsos = {}, {}
        for line in out.stdout.splitlines():
            item = json.loads(line)
            if item["type"] == "collection":
                collections[item["name"]] = item["modified"]
            elif item["type"] == "bso":
                bsos[(item["collection"], item["id"])] = item["modified"]
        return collections, bsos


def cluster_url(browser):
    """The storage endpoint Firefox uses (the token's api_endpoint)."""
    return browser.chrome("""
        const { Weave } = ChromeUtils.importESModule("resource://services-sync/main.sys.mjs");
        return Weave.Service.clusterURL;
    """)


def sync_until_on(browser, node, attempts=4):
    """Syncs until a sync finishes with Firefox on `node`: the first one after a move meets the
    old node's 401, after which Firefox fetches a new token (bounded attempts)."""
    for attempt in range(attempts):
        try:
            browser.sync()
            if cluster_url(browser).startswith(node):
                return attempt + 1
        except AssertionError as e:
            log(f"profile {browser.name}: sync {attempt + 1} ended in an error ({str(e)[:120]}); again")
        time.sleep(1)
    raise AssertionError(f"profile {browser.name} is not syncing with {node}: {cluster_url(browser)}")


def sync_log_writes(browser, since, collections):
    """Lines of Firefox's own sync logs (each starts with its time in epoch milliseconds) from
    after `since` (epoch seconds) that POST or PUT to one of `collections`, e.g.
    `Sync.Collection DEBUG POST success 200 http://…/1.5/4/storage/tabs?batch=true&commit=true`."""
    pattern = re.compile(r"^(\d+)\t.*\b(POST|PUT)\b.*?/storage/(%s)\b" % "|".join(collections))
    found = []
    for path in glob.glob(os.path.join(browser.profile, "weave", "logs", "*.txt")):
        for line in open(path, errors="replace"):
            m = pattern.search(line)
            if m and int(m.group(1)) >= since * 1000:
                found.append(line.strip()[:200])
    return found


def restored(browser):
    """Whether `browser` has profile A's bookmark and visit; syncs again when not."""
    found = browser.chrome(f"""
        const {{ PlacesUtils }} = ChromeUtils.importESModule("resource://gre/modules/PlacesUtils.sys.mjs");
        const bookmark = await PlacesUtils.bookmarks.fetch({{ url: "{BOOKMARK_URL}" }});
        const visit = await PlacesUtils.history.fetch("{VISIT_URL}");
        return !!bookmark && !!visit;
    """)
    if not found:
        browser.sync()
    return found


def print_tails(paths):
    """The end of each log, for a failure's message."""
    for path, size in filter(lambda p: os.path.exists(p[0]), paths):
        log(f"--- tail of {path}")
        print(open(path, errors="replace").read()[-size:], file=sys.stderr)


def run(args, workdir):
    # Whatever happens, the browsers quit, then the proxy and the server stop (in that order).
    with contextlib.ExitStack() as started:
        weft = TwoNodeWeft(args.weft, args.mysql_url, workdir)
        started.callback(weft.stop)
        proxy = StrayProxy()
        started.callback(proxy.shutdown)
        logs = [(weft.log_path, 6000)]
        try:
            check_move(weft, proxy, workdir, started, logs)
        except BaseException:
            print_tails(logs)
            raise


def check_move(weft, proxy, workdir, started, logs):
    """Steps 1–6 of the module's docstring."""

    def browser(name):
        b = Firefox(name, weft, proxy, workdir)
        started.callback(b.quit)
        logs.insert(0, (b.log_path, 4000))
        return b

    weft.start()
    # Node 2 staged (backoff), so that the new user is assigned node 1.
    weft.command("node", "provision", weft.node_2, "100", "--backoff")
    invite = re.search(r"invite=([0-9a-f]+)", weft.command("account", "invite", "--email", EMAIL)).group(1)

    a = browser("a")
    a.sign_in(EMAIL, PASSWORD, invite=invite)
    a.wait_first_sync()
    a.chrome(ADD_BOOKMARK_AND_VISIT, BOOKMARK_URL, VISIT_URL)
    a.sync()
    endpoint = cluster_url(a)
    assert endpoint.startswith(weft.node_1 + "/1.5/"), f"profile a syncs with {endpoint}, not node 1"
    uid = int(re.search(r"/1\.5/(\d+)", endpoint).group(1))
    collections, bsos = weft.rows(weft.database_url, uid)
    assert all(c in collections for c in MOVED_COLLECTIONS), f"node 1 holds {sorted(collections)}"
    log(f"profile a synced to node 1 as uid {uid}: {len(collections)} collections, {len(bsos)} records")

    out = weft.command("user", "move", str(uid), "--to", weft.node_2)
    log(f"$ weft user move {uid} --to {weft.node_2}\n    {out.strip()}")
    moved_at = time.monotonic()
    assert f"moved user {uid} from {weft.node_1} to {weft.node_2}" in out, out

    # A read node 1's in-process cache answers learns of the move within a second
    # (actors/src/user_move/watch.rs); Firefox's next sync comes minutes later anyway.
    time.sleep(1.5)
    before, since = len(weft.logged()), time.time()
    syncs = sync_until_on(a, weft.node_2)
    sequence = weft.logged()[before:]
    log(f"profile a synced after the move ({syncs} sync(s)); requests Weft logged:")
    for method, route, node, status in sequence:
        log(f"    {status} {method} {route} {node or ''}")
    assert ("GET", "/1.0/{application}/{version}", None, 200) in sequence, "no new token was fetched"
    reads_2 = [r for r in sequence if r[2] == weft.node_2 and r[0] == "GET" and r[3] in (200, 304)]
    assert reads_2, "profile a read nothing on node 2"
    assert not [r for r in sequence if r[2] == weft.node_1 and r[3] < 400], "node 1 still served profile a"
    writes_2 = [r for r in sequence if r[2] == weft.node_2 and r[0] in ("POST", "PUT")]
    moved_collections, moved_bsos = weft.rows(weft.node_2_url, uid)
    for name in MOVED_COLLECTIONS:
        assert moved_collections.get(name) == collections[name], \
            f"{name} on node 2 modified {moved_collections.get(name)}, on node 1 {collections[name]}"
        changed = [k for k, v in bsos.items() if k[0] == name and moved_bsos.get(k) != v]
        assert not changed, f"{name} records differ on node 2: {changed[:5]}"
    uploads = sync_log_writes(a, since, MOVED_COLLECTIONS)
    assert not uploads, f"Firefox's sync log shows uploads of bookmarks or history: {uploads}"
    # The log does show the writes the server logged (tabs, clients): the check can see one.
    if writes_2:
        assert sync_log_writes(a, since, ("tabs", "clients", "meta", "crypto")), \
            "Firefox's sync log shows none of the writes Weft logged"
    log(f"after the move: a new token, {len(reads_2)} reads on node 2, {len(writes_2)} writes there "
        f"(none to bookmarks or history: both collections and their {sum(1 for k in bsos if k[0] in MOVED_COLLECTIONS)} "
        "records keep node 1's timestamps, and Firefox's sync log has no POST or PUT of them)")

    b = browser("b")
    before = len(weft.logged())
    b.sign_in(EMAIL, PASSWORD)
    b.wait_first_sync()
    wait_for("profile b to restore the bookmark and the visit", lambda: restored(b), 60, interval=1)
    assert cluster_url(b).startswith(weft.node_2 + "/1.5/"), f"profile b syncs with {cluster_url(b)}"
    assert not [r for r in weft.logged()[before:] if r[2] == weft.node_1], "profile b reached node 1"
    log("profile b (fresh) restored the bookmark and the visit from node 2")

    # Node 1 answers 401 until every token for it has expired, then its deleter removes
    # the old copy.
    remaining = PURGE_AFTER_S - (time.monotonic() - moved_at)
    wait_for("node 1's deleter to remove the moved user's rows",
             lambda: weft.rows(weft.database_url, uid) == ({}, {}), max(remaining, 0) + 30, interval=2)
    log(f"node 1 holds none of uid {uid}'s rows {time.monotonic() - moved_at:.0f} s after the move "
        f"(tokens live {TOKEN_SECONDS} s, + 10 s)")
    assert weft.rows(weft.node_2_url, uid)[0], "node 2 lost the user"

    assert not proxy.recorded, f"Firefox tried to reach non-loopback hosts: {proxy.recorded}"
    log("no request left loopback")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weft", required=True, help="the weft binary")
    parser.add_argument("--mysql-url", default=os.environ.get("WEFT_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306"))
    args = parser.parse_args()
    # Bounded as a whole: the alarm raises in whatever wait is running, and `run` cleans up.
    signal.signal(signal.SIGALRM, lambda *_: sys.exit(f"the test took longer than {TEST_DEADLINE_S} s"))
    signal.alarm(TEST_DEADLINE_S)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="weft-firefox-move-", ignore_cleanup_errors=True) as workdir:
        try:
            run(args, workdir)
        except BaseException:
            print("0 passed, 1 failed", flush=True)
            raise
    signal.alarm(0)
    log(f"passed (node 1 MariaDB → node 2 SQLite) in {time.monotonic() - started:.1f}s")
    print("1 passed, 0 failed", flush=True)


if __name__ == "__main__":
    main()
