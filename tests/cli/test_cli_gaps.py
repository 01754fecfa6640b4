"""The CLI's last gaps against docker's (issues 15 and 18): push and pull back by digest,
attach --no-stdin and --sig-proxy=false, stats -a --no-stream, the prunes, and image
filters giving what docker's CLI gives against the same daemon."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import subprocess
import tarfile
import threading
import urllib.request
from pathlib import Path

from tests.api.apiutil import docker
from tests.cli.test_interactive import Tmux, state, tmux  # noqa: F401 - the fixture
from tests.integration.conftest import VENV_BIN, sdc, wait_for

CLI = str(VENV_BIN / "sdcontainer")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI with ENV added to ours (DOCKER_CONFIG)."""
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


class Session:
    """A CLI process whose output is collected as it comes."""

    def __init__(self, *args: str, stdin: bytes | None = None) -> None:
        self.proc = subprocess.Popen([CLI, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.out = b""
        if stdin is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(stdin)
            self.proc.stdin.close()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.read1(65536):
            self.out += chunk

    def saw(self, text: str, timeout: float = 20) -> bool:
        return wait_for(lambda: text.encode() in self.out, timeout=timeout)

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def end(self) -> int:
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait(20)


def registry_get(host: str, path: str, user: str, password: str) -> tuple[dict[str, str], bytes]:
    """GET PATH of the registry at HOST with basic auth: its headers and body."""
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(f"http://{host}{path}", headers={
        "Authorization": f"Basic {basic}",
        "Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                  "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(req, timeout=20) as resp:
        return dict(resp.headers), resp.read()


def test_push_then_pull_by_digest(busybox: str, tmp_path: Path) -> None:
    from tests.images.conftest import _start_registry

    reg = _start_registry(tmp_path / "reg", ("pusher", "s3cret"))
    ref = f"{reg.host}/gaps/bb"
    conf = tmp_path / "docker-config"
    conf.mkdir()
    env = {"DOCKER_CONFIG": str(conf)}
    try:
        sdc("tag", busybox, f"{ref}:v1", check=True)
        sdc("tag", busybox, f"{ref}:v2", check=True)
        # No credentials anywhere: the registry's refusal, in one line.
        r = cli("push", f"{ref}:v1", env=env)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r
        # Credentials in docker's config.json go along as docker's CLI sends them.
        auth = base64.b64encode(b"pusher:s3cret").decode()
        (conf / "config.json").write_text(json.dumps({"auths": {reg.host: {"auth": auth}}}))
        r = cli("push", f"{ref}:v1", env=env)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0] == f"The push refers to repository [{ref}]", lines
        assert any(re.fullmatch(r"[0-9a-f]{12}: Pushed", x) for x in lines), lines
        m = re.fullmatch(r"v1: digest: (sha256:[0-9a-f]{64}) size: \d+", lines[-1])
        assert m, lines
        digest = m[1]
        # The registry holds the manifest under the tag, with that digest.
        headers, body = registry_get(reg.host, "/v2/gaps/bb/manifests/v1", "pusher", "s3cret")
        assert headers["Docker-Content-Digest"] == digest and json.loads(body)["layers"]
        # -a pushes every local tag; -q prints the reference only.
        r = cli("push", "-a", "-q", ref, env=env)
        assert (r.returncode, r.stdout) == (0, f"{ref}\n"), r.stderr
        _, body = registry_get(reg.host, "/v2/gaps/bb/tags/list", "pusher", "s3cret")
        assert sorted(json.loads(body)["tags"]) == ["v1", "v2"]
        # Gone from the store, then back by digest.
        sdc("rmi", f"{ref}:v1", f"{ref}:v2", check=True)
        r = cli("pull", f"{ref}@{digest}", env=env)
        assert r.returncode == 0, r.stderr
        r = sdc("images", "--digests", "--format", "{{.Repository}} {{.Digest}}")
        assert f"{ref} {digest}\n" in r.stdout, r.stdout
        assert sdc("inspect", f"{ref}@{digest}").returncode == 0
    finally:
        reg.proc.terminate()
        reg.proc.wait(10)


def test_attach_no_stdin_and_sig_proxy_false(busybox: str, name: str) -> None:
    # --no-stdin: what the session is given never reaches the container; another
    # session's input does, and both see the answer.
    sdc("run", "-di", "--name", name, busybox, "sh", "-c",
        "while read x; do echo got:$x; done", check=True)
    watcher = Session("attach", "--no-stdin", name, stdin=b"hello\n")
    feeder = Session("attach", name)
    try:
        assert wait_for(lambda: feeder.send(b"ping\n") or b"got:ping" in watcher.out,
                        timeout=20, interval=0.3), (watcher.out, feeder.out)
        assert b"got:hello" not in watcher.out + feeder.out
        assert "got:hello" not in sdc("logs", name).stdout
    finally:
        sdc("rm", "-f", name)
        watcher.end()
        feeder.end()

    # --sig-proxy=false: SIGINT and SIGTERM end the CLI and leave the container be; the
    # proxying default then delivers a signal, and only that one arrived.
    sig = f"{name}-sig"
    script = ("for s in INT TERM USR1; do trap \"echo got-$s\" $s; done; "
              "while true; do echo tick; sleep 0.2; done")
    sdc("run", "-d", "--name", sig, busybox, "sh", "-c", script, check=True)
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            s = Session("attach", "--sig-proxy=false", sig)
            assert s.saw("tick"), s.out
            s.proc.send_signal(signum)
            assert s.proc.wait(20) != 0
            assert sdc("inspect", "-f", "{{.State.Running}}", sig).stdout == "true\n"
        s = Session("attach", sig)
        assert s.saw("tick"), s.out
        s.proc.send_signal(signal.SIGUSR1)
        assert s.saw("got-USR1"), s.out
        logs = sdc("logs", sig).stdout
        assert "got-INT" not in logs and "got-TERM" not in logs
        s.end()
    finally:
        sdc("rm", "-f", sig)


def test_detach_keys_from_docker_config(busybox: str, name: str,
                                       tmux: Tmux) -> None:  # noqa: F811
    # `detachKeys` in docker's config.json is the sequence when no flag names one
    (tmux.tmp / "config.json").write_text(json.dumps({"detachKeys": "ctrl-x,x"}))
    tmux.window("run", f"DOCKER_CONFIG={tmux.tmp} {CLI} run -it --name {name} {busybox} sh")
    assert tmux.shows("run", "/ #"), tmux.screen("run")
    tmux.keys("run", "C-x", "x")
    assert tmux.rc("run") == 0, tmux.screen("run")
    assert state(name) == "running 0"


def test_stats_all_lists_stopped_containers(busybox: str, name: str) -> None:
    sdc("run", "--name", name, busybox, "true", check=True)
    r = sdc("stats", "-a", "--no-stream", "--format", "{{.Name}}")
    assert r.returncode == 0 and name in r.stdout.split(), r
    r = sdc("stats", "--no-stream", "--format", "{{.Name}}")
    assert r.returncode == 0 and name not in r.stdout.split(), r


def tiny_tar(path: Path, content: bytes) -> Path:
    """A rootfs tarball of one file."""
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("data")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return path


def reclaimed(stdout: str) -> str:
    last = stdout.splitlines()[-1]
    assert last.startswith("Total reclaimed space: "), stdout
    return last.removeprefix("Total reclaimed space: ")


def test_prunes(busybox: str, name: str, tmp_path: Path) -> None:
    # image prune: the image a second import took the tag from is dangling, and goes
    ref = f"{name}-img:1"
    old = sdc("import", str(tiny_tar(tmp_path / "a.tar", os.urandom(20000))), ref,
              check=True).stdout.strip().splitlines()[-1]
    sdc("import", str(tiny_tar(tmp_path / "b.tar", b"b")), ref, check=True)
    r = sdc("image", "prune", "-f")
    assert r.returncode == 0 and f"deleted: {old}" in r.stdout, r
    assert reclaimed(r.stdout) != "0B"
    assert sdc("image", "inspect", old).returncode != 0
    assert sdc("image", "inspect", ref).returncode == 0
    sdc("rmi", ref, check=True)

    # volume prune: a volume no container uses goes, with its data
    vol = f"{name}-vol"
    sdc("volume", "create", vol, check=True)
    sdc("run", "--rm", "-v", f"{vol}:/data", busybox, "sh", "-c",
        "head -c 100000 /dev/zero > /data/f", check=True)
    r = sdc("volume", "prune", "-f")  # anonymous ones only, as docker 23 and later
    assert r.returncode == 0 and vol not in r.stdout, r
    r = sdc("volume", "prune", "-a", "-f")
    assert r.returncode == 0 and f"\n{vol}\n" in f"\n{r.stdout}", r
    assert reclaimed(r.stdout) != "0B"
    assert vol not in sdc("volume", "ls", "-q").stdout.split()

    # system prune: a stopped container goes, with what it wrote
    sdc("run", "--name", name, busybox, "sh", "-c", "head -c 50000 /dev/zero > /big",
        check=True)
    cid = sdc("inspect", "-f", "{{.Id}}", name).stdout.strip()
    r = sdc("system", "prune", "-f")
    assert r.returncode == 0 and "Deleted Containers:\n" in r.stdout, r
    assert f"\n{cid}\n" in r.stdout and reclaimed(r.stdout) != "0B", r.stdout
    assert sdc("inspect", name).returncode != 0


def test_image_filters_match_docker(busybox: str, name: str, tmp_path: Path) -> None:
    refs = [f"{name}-{x}:1" for x in "abc"]
    ids = []
    for i, ref in enumerate(refs):
        changes = ["-c", f"LABEL gaps={name}"] if i != 1 else []
        r = sdc("import", *changes, str(tiny_tar(tmp_path / f"{i}.tar", bytes([i]))), ref,
                check=True)
        ids.append(r.stdout.strip().splitlines()[-1].split(":", 1)[1][:12])
    a, _b, c = (f"{ref} {i}\n" for ref, i in zip(refs, ids, strict=True))
    fmt = ["--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]
    mine = ["--filter", f"reference={name}-*"]
    cases = {(f"label=gaps={name}",): c + a, (f"before={refs[1]}",): a,
             (f"since={refs[1]}",): c, (f"label=gaps={name}", f"since={refs[0]}"): c}
    try:
        for filters, want in cases.items():
            args = ["images", *mine, *(x for f in filters for x in ("--filter", f)), *fmt]
            ours, theirs = sdc(*args), docker(*args)
            assert (ours.returncode, ours.stdout) == (0, want), (filters, ours)
            assert theirs.stdout == ours.stdout, (filters, theirs)
    finally:
        sdc("rmi", *refs)
