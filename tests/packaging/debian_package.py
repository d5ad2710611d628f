#!/usr/bin/env python3
"""The Debian package, installed as a self-hoster installs it: in a fresh Debian root.

Owned by: the test tooling (scripts/test runs it as the `Debian package` step, after building
the package with `cargo deb`).

What it proves (issue 24): in a minimal Debian root (mmdebstrap's minbase with only the
package's declared dependencies added, so a missing Depends fails the install), `dpkg -i`
creates the `weft` system user, an owner-only /var/lib/weft, a root-only conffile
/etc/weft/weft.toml and the systemd unit (installed, not enabled); `weft --version` names the
package version. The configuration is edited as an admin would (port, public URL), and the
unit's own ExecStartPre/ExecStart lines run as its User= with the configuration handed over as
its LoadCredential= would: the server names the files it writes, answers Hawk-signed requests
(tokenlib + hawkauthlib) with the secret it generated, and exits 0 on SIGTERM. Installing the
package over itself keeps the edited configuration and the data; `dpkg -r` keeps data and
configuration; `dpkg -P` removes them.

Usage: debian_package.py DEB WORKDIR
    DEB      the .deb built by `cargo deb`
    WORKDIR  scratch directory (the minimal root's tarball is cached there between runs)
Output: one line per check, then `N passed, M failed`; non-zero exit when any check failed.
"""

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys

from rootfs import (Results, Server, free_port, log_tail, mode_owner, run_root_command,
                    signed_client, user_ids)

MMDEBSTRAP_TIMEOUT_S = 600
UNIT = "usr/lib/systemd/system/weft.service"
CONFIG = "etc/weft/weft.toml"
UID = 7


def declared_dependencies(deb):
    """Package names of the .deb's Depends (the first of each alternative)."""
    depends = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], check=True,
                             capture_output=True, text=True).stdout
    return sorted({part.split("|")[0].split("(")[0].strip()
                   for part in depends.split(",") if part.strip()})


def host_suite():
    with open("/etc/os-release", encoding="utf-8") as f:
        return re.search(r"^VERSION_CODENAME=(\S+)", f.read(), re.M).group(1)


def fresh_root(workdir, deb, results):
    """A new minimal Debian root with the package's dependencies, from a cached tarball."""
    deps = declared_dependencies(deb)
    suite = host_suite()
    key = hashlib.sha1(" ".join([suite] + deps).encode()).hexdigest()[:10]
    tarball = os.path.join(workdir, f"debian-{suite}-minbase-{key}.tar")
    if not os.path.exists(tarball):
        print(f"    mmdebstrap --variant=minbase --include={','.join(deps)} {suite}", flush=True)
        proc = subprocess.run(
            ["mmdebstrap", "--quiet", "--variant=minbase", "--format=tar", f"--include={','.join(deps)}", suite,
             tarball + ".tmp"], capture_output=True, text=True, timeout=MMDEBSTRAP_TIMEOUT_S)
        if not results.check("minimal Debian root built (mmdebstrap)", proc.returncode == 0,
                             proc.stderr[-2000:]):
            return None
        os.rename(tarball + ".tmp", tarball)
    root = os.path.join(workdir, "root")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    subprocess.run(["tar", "-xf", tarball, "-C", root, "--numeric-owner"], check=True)
    return root


def unit_settings(root):
    """The [Service] lines of the installed unit, as name -> list of values."""
    settings = {}
    with open(os.path.join(root, UNIT), encoding="utf-8") as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                name, value = line.strip().split("=", 1)
                settings.setdefault(name, []).append(value)
    return settings


def command_line(value, env):
    """A unit's Exec line: ${VAR} expanded from env, split into words."""
    return shlex.split(re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], value))


class Service:
    """The installed unit run as systemd would: User=, WorkingDirectory=, the configuration
    handed over as LoadCredential= does (a copy the service user can read), ExecStartPre=
    then ExecStart=."""

    def __init__(self, root, workdir, results):
        self.root = root
        self.results = results
        unit = unit_settings(root)
        self.user = unit["User"][0]
        self.cwd = unit["WorkingDirectory"][0]
        self.pre = unit["ExecStartPre"][0]
        self.start = unit["ExecStart"][0]
        credentials = "/run/credentials/weft.service"
        os.makedirs(root + credentials, exist_ok=True)
        uid, gid = user_ids(root, self.user)
        for spec in unit["LoadCredential"]:
            name, source = spec.split(":", 1)
            target = os.path.join(root + credentials, name)
            shutil.copyfile(root + source, target)
            os.chown(target, uid, gid)
            os.chmod(target, 0o400)
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CREDENTIALS_DIRECTORY": credentials}
        self.log_path = os.path.join(workdir, "serve.log")

    def run(self):
        code, out = run_root_command(self.root, command_line(self.pre, self.env), user=self.user,
                                     env=self.env, cwd=self.cwd)
        self.results.check(f"ExecStartPre ({self.pre.split()[1]}) as {self.user} -> 0",
                           code == 0, out)
        return Server(self.root, command_line(self.start, self.env), self.log_path,
                      user=self.user, env=self.env, cwd=self.cwd)


def dpkg(root, *args):
    return run_root_command(root, ["dpkg", *args])


def query(root, fmt):
    return run_root_command(root, ["dpkg-query", "-W", f"-f={fmt}", "weft"])[1]


def serve_and_check(root, workdir, results, public_url, first):
    """Starts the service, checks its lines and files, writes (first run) or reads back a
    record, stops it with SIGTERM."""
    server = Service(root, workdir, results).run()
    try:
        up = server.wait_for("weft: listening on")
        if not results.check("the installed unit's ExecStart serves as user weft", up,
                             log_tail(server.log_path, 20)):
            return
        writes = server.line_starting("weft: writes ")
        results.check("start-up line names the files it writes in /var/lib/weft",
                      all(f"/var/lib/weft/{name}" in writes
                          for name in ("weft.pid", "weft.db", "master-secret")), writes)
        weft_uid = user_ids(root, "weft")[0]
        for name in ("weft.db", "master-secret"):
            mode, uid, _ = mode_owner(os.path.join(root, "var/lib/weft", name))
            results.check(f"/var/lib/weft/{name} belongs to weft, 0600",
                          (mode, uid) == ("0o600", weft_uid), f"{mode} uid {uid}")
        with open(os.path.join(root, "var/lib/weft/master-secret"), encoding="utf-8") as f:
            client = signed_client(public_url, f.read().strip(), UID)
        path = f"/1.5/{UID}/storage/bookmarks/installed"
        if first:
            r = client.request("PUT", path, {"payload": "kept across upgrade and removal"})
            results.check("signed PUT of a bookmark record -> 200", r.status_code == 200,
                          f"{r.status_code} {r.text!r}")
        r = client.request("GET", path)
        results.check("signed GET of the record -> 200 with its payload",
                      r.status_code == 200
                      and r.json().get("payload") == "kept across upgrade and removal",
                      f"{r.status_code} {r.text!r}")
    finally:
        code, seconds = server.stop()
    results.check("SIGTERM -> exit status 0", code == 0,
                  f"exit status {code}; {log_tail(server.log_path, 10)}")
    print(f"    stopped in {seconds:.1f} s", flush=True)


def edit_config(root, port):
    """What an admin does after installing: port and public URL (here, a free loopback port)."""
    path = os.path.join(root, CONFIG)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r'^listen = .*$', f'listen = "127.0.0.1:{port}"', text, count=1, flags=re.M)
    text = re.sub(r'^public_url = .*$', f'public_url = "http://127.0.0.1:{port}"', text,
                  count=1, flags=re.M)
    # The metrics listener's fixed port could be taken by another test on this machine.
    text = re.sub(r'^(\[metrics\][^\[]*?)^listen = .*$', rf'\1listen = "127.0.0.1:{free_port()}"',
                  text, count=1, flags=re.M | re.S)
    text = "# Edited by the admin (tests/packaging/debian_package.py).\n" + text
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return text


def main(argv):
    deb, workdir = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    os.makedirs(workdir, exist_ok=True)
    results = Results()
    root = fresh_root(workdir, deb, results)
    if root is None:
        print(f"{results.passed} passed, {results.failed} failed")
        return 1
    try:
        run_checks(root, workdir, deb, results)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{results.passed} passed, {results.failed} failed")
    return 0 if results.failed == 0 else 1


def run_checks(root, workdir, deb, results):
    shutil.copyfile(deb, os.path.join(root, "tmp/weft.deb"))
    code, out = dpkg(root, "-i", "/tmp/weft.deb")
    if not results.check("dpkg -i weft.deb in a fresh root -> 0", code == 0, out):
        return
    passwd = run_root_command(root, ["getent", "passwd", "weft"])[1].strip().split(":")
    results.check("system user weft (uid < 1000, no login shell)",
                  len(passwd) == 7 and int(passwd[2]) < 1000 and passwd[6].endswith("nologin"),
                  ":".join(passwd))
    weft_uid, weft_gid = user_ids(root, "weft")
    results.check("/var/lib/weft is weft's, 0700",
                  mode_owner(os.path.join(root, "var/lib/weft")) == ("0o700", weft_uid, weft_gid),
                  str(mode_owner(os.path.join(root, "var/lib/weft"))))
    results.check("/etc/weft/weft.toml is root's, 0600",
                  mode_owner(os.path.join(root, CONFIG)) == ("0o600", 0, 0),
                  str(mode_owner(os.path.join(root, CONFIG))))
    results.check("/etc/weft/weft.toml is a conffile",
                  "/etc/weft/weft.toml" in query(root, "${Conffiles}"), query(root, "${Conffiles}"))
    unit = unit_settings(root)
    results.check("systemd unit installed, runs as User=weft, not enabled",
                  unit.get("User") == ["weft"]
                  and not os.path.lexists(os.path.join(
                      root, "etc/systemd/system/multi-user.target.wants/weft.service")),
                  str(unit.get("User")))
    version = query(root, "${Version}")
    code, out = run_root_command(root, ["weft", "--version"])
    results.check(f"weft --version names the package version ({version})",
                  code == 0 and out.strip() == f"weft {version}", out)

    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    edited = edit_config(root, port)
    serve_and_check(root, workdir, results, public_url, first=True)

    code, out = dpkg(root, "-i", "/tmp/weft.deb")
    results.check("dpkg -i over the installed package (upgrade) -> 0",
                  code == 0 and f"over ({version})" in out, out)
    with open(os.path.join(root, CONFIG), encoding="utf-8") as f:
        results.check("upgrade keeps the edited configuration, root's, 0600",
                      f.read() == edited and mode_owner(os.path.join(root, CONFIG))[0] == "0o600")
    serve_and_check(root, workdir, results, public_url, first=False)

    data = {name: open(os.path.join(root, "var/lib/weft", name), "rb").read()
            for name in ("weft.db", "master-secret")}
    code, out = dpkg(root, "-r", "weft")
    results.check("dpkg -r weft -> 0, binary gone",
                  code == 0 and not os.path.exists(os.path.join(root, "usr/bin/weft")), out)
    kept = all(open(os.path.join(root, "var/lib/weft", name), "rb").read() == content
               for name, content in data.items()
               if os.path.exists(os.path.join(root, "var/lib/weft", name)))
    results.check("removal keeps the data (weft.db, master-secret) and the configuration",
                  kept and all(os.path.exists(os.path.join(root, "var/lib/weft", n)) for n in data)
                  and os.path.exists(os.path.join(root, CONFIG)))
    code, out = dpkg(root, "-P", "weft")
    results.check("dpkg -P weft removes /var/lib/weft and /etc/weft",
                  code == 0 and not os.path.exists(os.path.join(root, "var/lib/weft"))
                  and not os.path.exists(os.path.join(root, "etc/weft")), out)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
