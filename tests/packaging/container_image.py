#!/usr/bin/env python3
"""The container image, built and run as an operator would, without a container runtime.

Owned by: the test tooling (scripts/test runs it as the `container image` step).

What it proves (issue 24): `ops/container/build` builds the image with podman from the release
binary without pulling any base image; the image is under 40 MB, runs as a non-root user, keeps
its data in a volume and has a HEALTHCHECK and SIGTERM as its stop signal. Its file system,
exported with `podman export`, is run as the runtime would run it — the image's ENTRYPOINT and
CMD, its USER, WORKDIR and ENV plus WEFT_* configuration (every secret given, as in a
container), chrooted into the exported root with its empty data volume: it starts, names the
files it writes, passes its own HEALTHCHECK command, answers Hawk-signed requests (tokenlib +
hawkauthlib) and exits 0 on SIGTERM. Also: every WEFT_* name in ops/container/compose.yaml is a
setting of `weft serve`, and the compose file uses the image tag the build script makes; and
the image's binary migrates a MariaDB database (WEFT_TEST_MYSQL_URL), so the libraries
collected for it, libmariadb's included, load.

Usage: container_image.py BINARY WORKDIR
Output: one line per check, then `N passed, M failed`; non-zero exit when any check failed.
"""

import glob
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time

from rootfs import (Results, Server, free_port, log_tail, mode_owner, run_root_command,
                    signed_client)
from interop import prepare_database  # noqa: E402 (rootfs put tests/interop on the path)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE_TARGET_BYTES = 40 * 1000 * 1000
BUILD_TIMEOUT_S = 600
UID = 9


def podman(*args, **kwargs):
    return subprocess.run(["podman", *args], check=True, capture_output=True, text=True,
                          **kwargs).stdout.strip()


def compose_checks(binary, results):
    with open(os.path.join(REPO_ROOT, "ops/container/compose.yaml"), encoding="utf-8") as f:
        compose = f.read()
    settings = set(re.findall(r"\bWEFT_[A-Z0-9_]+\b", subprocess.run(
        [binary, "serve", "--help"], check=True, capture_output=True, text=True).stdout))
    used = set(re.findall(r"^\s+(WEFT_[A-Z0-9_]+):", compose, re.M))
    results.check(f"compose.yaml sets {len(used)} WEFT_* variables, all settings of weft serve",
                  used and used <= settings, f"unknown: {sorted(used - settings)}")
    version = subprocess.run([binary, "--version"], check=True, capture_output=True,
                             text=True).stdout.split()[1]
    images = set(re.findall(r"image: (weft:\S+)", compose))
    results.check(f"compose.yaml runs the image the build makes (weft:{version})",
                  images == {f"weft:{version}"}, str(images))


def main(argv):
    binary, workdir = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    os.makedirs(workdir, exist_ok=True)
    results = Results()
    compose_checks(binary, results)
    tag = f"localhost/weft-test:{os.getpid()}"
    started = time.monotonic()
    build = subprocess.run([os.path.join(REPO_ROOT, "ops/container/build"), "--binary", binary,
                            "--tag", tag], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    if not results.check("ops/container/build (podman, FROM scratch) -> 0", build.returncode == 0,
                         build.stdout[-2000:] + build.stderr[-2000:]):
        print(f"{results.passed} passed, {results.failed} failed")
        return 1
    print(f"    built in {time.monotonic() - started:.1f} s: {build.stdout.strip().splitlines()[-1]}",
          flush=True)
    root = os.path.join(workdir, "image-root")
    try:
        run_checks(tag, root, workdir, results)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(["podman", "rmi", "--force", tag], capture_output=True)
    print(f"{results.passed} passed, {results.failed} failed")
    return 0 if results.failed == 0 else 1


def run_checks(tag, root, workdir, results):
    image = json.loads(podman("image", "inspect", tag))[0]
    config = image["Config"]
    size = image["Size"]
    results.check(f"image size {size / 1e6:.1f} MB < 40 MB", size < SIZE_TARGET_BYTES, str(size))
    user = config.get("User", "")
    results.check(f"runs as a non-root user ({user})", user not in ("", "0", "root", "0:0"))
    results.check("data in a volume (/var/lib/weft)", "/var/lib/weft" in config.get("Volumes", {}),
                  str(config.get("Volumes")))
    # Docker's format keeps it beside the config; podman shows it at the top.
    healthcheck = (image.get("Healthcheck") or config.get("Healthcheck") or {}).get("Test", [])
    results.check("HEALTHCHECK runs weft healthcheck", healthcheck[1:] == ["/usr/bin/weft",
                                                                           "healthcheck"],
                  str(healthcheck))
    results.check("stop signal SIGTERM", config.get("StopSignal") == "SIGTERM",
                  str(config.get("StopSignal")))

    container = podman("create", "--no-healthcheck", tag)
    try:
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        export = subprocess.Popen(["podman", "export", container], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "--numeric-owner", "-C", root], stdin=export.stdout,
                       check=True)
        export.wait()
    finally:
        subprocess.run(["podman", "rm", container], capture_output=True)
    results.check("no shell in the image", not os.path.exists(os.path.join(root, "bin/sh")))
    plugins = glob.glob(os.path.join(root, "usr/lib/*/libmariadb3/plugin/caching_sha2_password.so"))
    results.check("libmariadb's authentication plugins are in the image (MySQL 8's default)",
                  len(plugins) == 1)
    uid = int(user.split(":")[0])
    volume = os.path.join(root, "var/lib/weft")
    results.check("the data volume starts empty, the image user's, 0700",
                  os.listdir(volume) == [] and mode_owner(volume)[:2] == ("0o700", uid),
                  f"{os.listdir(volume)} {mode_owner(volume)}")

    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    secret = secrets.token_hex(32)
    env = dict(item.split("=", 1) for item in config.get("Env", []))
    # What `podman run -e …` adds; loopback, as nothing here may listen on other addresses.
    env.update({"WEFT_LISTEN": f"127.0.0.1:{port}", "WEFT_PUBLIC_URL": public_url,
                "WEFT_MASTER_SECRET": secret})
    argv = config["Entrypoint"] + config.get("Cmd", [])
    cwd = config.get("WorkingDir") or "/"
    server = Server(root, argv, os.path.join(workdir, "image-serve.log"), user=str(uid), env=env,
                    cwd=cwd)
    try:
        up = server.wait_for("weft: listening on")
        if not results.check(f"entry point {' '.join(argv)} starts as uid {uid}", up,
                             log_tail(server.log_path, 20)):
            return
        writes = server.line_starting("weft: writes ")
        results.check("start-up line names the files it writes in the volume",
                      "/var/lib/weft/weft.pid" in writes and "/var/lib/weft/weft.db" in writes
                      and "master-secret" not in writes, writes)
        code, out = run_root_command(root, healthcheck[1:], user=str(uid), env=env, cwd=cwd)
        results.check("the HEALTHCHECK command -> 0", code == 0, out)
        client = signed_client(public_url, secret, UID)
        path = f"/1.5/{UID}/storage/bookmarks/in-a-container"
        r = client.request("PUT", path, {"payload": "from the image"})
        results.check("signed PUT -> 200", r.status_code == 200, f"{r.status_code} {r.text!r}")
        r = client.request("GET", path)
        results.check("signed GET -> 200 with the payload",
                      r.status_code == 200 and r.json().get("payload") == "from the image",
                      f"{r.status_code} {r.text!r}")
    finally:
        code, seconds = server.stop()
    results.check(f"SIGTERM -> exit status 0 ({seconds:.1f} s)", code == 0,
                  f"exit status {code}; {log_tail(server.log_path, 10)}")
    db = os.path.join(volume, "weft.db")
    results.check("the database is in the volume, the image user's",
                  os.path.exists(db) and mode_owner(db)[1] == uid)
    code, _ = run_root_command(root, healthcheck[1:], user=str(uid), env=env, cwd=cwd)
    results.check("the HEALTHCHECK command fails once the server is gone", code != 0)

    # The libraries collected for the image, libmariadb's included, work: the image's weft
    # migrates a MariaDB database (WEFT_TEST_MYSQL_URL, which scripts/test exports).
    url, drop = prepare_database(os.environ.get("WEFT_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306"),
                                 None)
    try:
        code, out = run_root_command(root, config["Entrypoint"] + ["migrate"], user=str(uid),
                                     env=dict(env, WEFT_DATABASE_URL=url), cwd=cwd)
        results.check("the image's weft migrates a MariaDB database (its libmariadb)",
                      code == 0 and "weft: migrated mysql://" in out, out)
    finally:
        drop()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
