#!/usr/bin/env python3
"""Hostile clients against a Weft server on loopback, with the server's memory read from /proc.

Measures what issue 13 asks for, on a server you started yourself (any build):

  hostile.py unfinished-bodies --url http://127.0.0.1:8000 --pid PID [--connections 300]
                                [--sent-bytes 1000000]
      N connections without credentials, each a PUT that declares a 2.5 MB body, sends part of
      it (1 MB by default) and stalls. Prints the server's RSS growth and how many connections the server closed,
      and when, within 30 s.

  hostile.py tiny-elements --url http://127.0.0.1:8000 --pid PID --secret SECRET [--parallel 1]
      Authenticated 2.5 MB POSTs of tiny elements `[{"a":0},{"a":0},…]` (and, with
      --with-ids, of distinct valid ids `[{"id":"0"},{"id":"1"},…]`). Prints the status and the
      growth of the server's peak RSS (VmHWM, reset first through /proc/PID/clear_refs).

Only loopback URLs are accepted. Needs `tokenlib`, `hawkauthlib` and `requests` (as the
interoperability test).
"""

import argparse
import json
import secrets
import socket
import sys
import threading
import time
import urllib.parse

import hawkauthlib
import requests
import tokenlib

BODY_BYTES = 2_500_000


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def loopback(url):
    parsed = urllib.parse.urlsplit(url)
    if parsed.hostname not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("hostile.py only talks to loopback")
    return parsed.hostname, parsed.port or 80


def unfinished_bodies(args):
    host, port = loopback(args.url)
    before = rss_kib(args.pid)
    sent_part = b"x" * args.sent_bytes
    conns = []
    for i in range(args.connections):
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(
            f"PUT /1.5/{i + 1}/storage/bookmarks/a HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {BODY_BYTES}\r\n\r\n".encode()
        )
        s.setblocking(False)
        try:
            s.send(sent_part)
        except BlockingIOError:
            pass
        conns.append(s)
    time.sleep(2)
    peak = rss_kib(args.pid)
    started = time.monotonic()
    closed_at = {}
    while time.monotonic() - started < args.wait and len(closed_at) < len(conns):
        for i, s in enumerate(conns):
            if i in closed_at:
                continue
            try:
                data = s.recv(65536)
                if data == b"":
                    closed_at[i] = time.monotonic() - started
                else:
                    continue
            except BlockingIOError:
                continue
            except OSError:
                closed_at[i] = time.monotonic() - started
        time.sleep(0.2)
    after = rss_kib(args.pid)
    for s in conns:
        s.close()
    slowest = max(closed_at.values()) if closed_at else None
    print(json.dumps({
        "connections": len(conns),
        "rss_before_mib": round(before / 1024, 1),
        "rss_with_connections_open_mib": round(peak / 1024, 1),
        "growth_mib": round((peak - before) / 1024, 1),
        "closed_by_server": len(closed_at),
        "closed_within_s": args.wait,
        "slowest_close_s": None if slowest is None else round(slowest + 2, 1),
        "rss_end_mib": round(after / 1024, 1),
    }))


def tiny_elements(args):
    loopback(args.url)
    base = args.url.rstrip("/")
    bodies = {"tiny-elements": tiny_body(lambda i: '{"a":0}')}
    if args.with_ids:
        bodies["distinct-ids"] = tiny_body(lambda i: '{"id":"%d"}' % i)
    for name, body in bodies.items():
        with open(f"/proc/{args.pid}/clear_refs", "w") as clear:
            clear.write("5")
        before = rss_kib(args.pid, "VmHWM")
        statuses = []

        def post(n):
            uid = 1_000_000 + n
            token = tokenlib.make_token(
                {"uid": uid, "node": base, "fxa_uid": secrets.token_hex(16), "fxa_kid": "0000000001234-qqo"},
                secret=args.secret, timeout=3600)
            key = tokenlib.get_derived_secret(token, secret=args.secret)
            req = requests.Request("POST", f"{base}/1.5/{uid}/storage/history", data=body,
                                   headers={"Content-Type": "application/json"}).prepare()
            hawkauthlib.sign_request(req, token, key)
            statuses.append(requests.Session().send(req, timeout=120).status_code)

        threads = [threading.Thread(target=post, args=(n,)) for n in range(args.parallel)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        peak = rss_kib(args.pid, "VmHWM")
        print(json.dumps({
            "body": name, "body_bytes": len(body), "parallel": args.parallel, "statuses": statuses,
            "peak_rss_before_mib": round(before / 1024, 1), "peak_rss_after_mib": round(peak / 1024, 1),
            "peak_growth_mib": round((peak - before) / 1024, 1),
        }))


def tiny_body(element):
    parts, size, i = [], 2, 0
    while True:
        item = element(i)
        if size + len(item) + 1 > BODY_BYTES:
            break
        parts.append(item)
        size += len(item) + 1
        i += 1
    return ("[" + ",".join(parts) + "]").encode()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    u = sub.add_parser("unfinished-bodies")
    u.add_argument("--url", required=True)
    u.add_argument("--pid", type=int, required=True)
    u.add_argument("--connections", type=int, default=300)
    u.add_argument("--sent-bytes", type=int, default=1_000_000, help="body bytes sent before stalling")
    u.add_argument("--wait", type=float, default=28.0, help="seconds to watch for closes after the 2 s settle")
    t = sub.add_parser("tiny-elements")
    t.add_argument("--url", required=True)
    t.add_argument("--pid", type=int, required=True)
    t.add_argument("--secret", required=True)
    t.add_argument("--parallel", type=int, default=1)
    t.add_argument("--with-ids", action="store_true")
    args = parser.parse_args()
    {"unfinished-bodies": unfinished_bodies, "tiny-elements": tiny_elements}[args.command](args)


if __name__ == "__main__":
    main()
