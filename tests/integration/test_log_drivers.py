"""Log drivers (issue 18) and the CRI log file (issue 19).

json-file, local and none are driven through `sdcontainer` and the docker CLI; the CRI
log file has no front end of its own yet, so both supervisors (the native loop
and the Python monitor) are run here directly on a small shell workload, as the
monitor runs them, and told to reopen their log through Engine.reopen_log."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdcontainer import paths
from sdcontainer.engine.core import Engine
from sdcontainer.engine.records import Container, ContainerState
from sdcontainer.errors import Conflict
from sdcontainer.model.spec import ContainerConfig, LaunchSpec
from sdcontainer.runtime import monitor

from .conftest import SOCKET, sdc, sh, wait_for

TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z"
CRI_LINE = re.compile(rf"({TIME}) (stdout|stderr) ([PF]) (.*)")


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DOCKER_HOST": f"unix://{SOCKET}"})


def inspect(name: str) -> dict:  # type: ignore[type-arg]
    doc: dict = json.loads(sdc("inspect", name).stdout)[0]  # type: ignore[type-arg]
    return doc


def journal_of(cid: str) -> str:
    sh("journalctl", "--sync")
    return sh("journalctl", "-o", "cat", "--no-pager", f"CONTAINER_ID_FULL={cid}").stdout


def test_json_file(busybox: str, name: str) -> None:
    r = sdc("run", "--name", name, "--log-driver", "json-file", busybox, "sh", "-c",
            "echo out-1; echo err-1 >&2; printf 'q\"\\\\\\t\\n'; printf no-newline")
    assert r.returncode == 0, r.stderr
    doc = inspect(name)
    cid = doc["Id"]
    assert doc["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {}}
    log = Path(doc["LogPath"])
    assert log == paths.CONTAINERS_DIR / cid / f"{cid}-json.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o640
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(list(e) == ["log", "stream", "time"] and re.fullmatch(TIME, e["time"])
               for e in lines), lines
    assert sorted((e["log"], e["stream"]) for e in lines) == [
        ("err-1\n", "stderr"), ("no-newline", "stdout"), ("out-1\n", "stdout"),
        ('q"\\\t\n', "stdout")]
    assert "out-1" not in journal_of(cid)  # docker's json-file: not in the journal

    for cli in (sdc, docker):
        r = cli("logs", name)
        assert r.returncode == 0, r.stderr
        assert r.stdout == 'out-1\nq"\\\t\nno-newline' and r.stderr == "err-1\n", (cli, r)
    r = sdc("logs", "--tail", "1", "-t", name)  # the two pipes give no order between them
    assert re.fullmatch(rf"{TIME} (no-newline|err-1\n)", r.stdout + r.stderr), r
    r = docker("logs", "--since", "2000-01-01T00:00:00Z", "--until", "2001-01-01T00:00:00Z",
               name)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_json_file_follow_and_rotation(busybox: str, name: str) -> None:
    # 300 lines of 20 bytes (a line's JSON is ~80): with max-size=1k, max-file=2, a
    # dozen lines survive in the two newest files.
    sdc("run", "-d", "--name", name, "--log-driver", "json-file", "--log-opt", "max-size=1k",
        "--log-opt", "max-file=2", busybox, "sh", "-c",
        "echo first; until [ -e /go ]; do sleep 0.05; done; i=0; "
        "while [ $i -lt 300 ]; do i=$((i + 1)); printf 'line-%014d\\n' $i; done", check=True)
    follow = subprocess.Popen(["docker", "logs", "-f", name], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "DOCKER_HOST": f"unix://{SOCKET}"})
    try:
        assert follow.stdout is not None
        assert follow.stdout.readline() == "first\n"
        sdc("exec", name, "touch", "/go", check=True)
        rest = follow.stdout.read()
        assert follow.wait(timeout=60) == 0
    finally:
        follow.kill()
    # Rotation may pass lines by while the follower looks away; it sees the end.
    assert rest.endswith("line-00000000000300\n"), rest[-200:]
    doc = inspect(name)
    log = Path(doc["LogPath"])
    assert doc["HostConfig"]["LogConfig"]["Config"] == {"max-size": "1k", "max-file": "2"}
    assert sorted(p.name for p in log.parent.glob(f"{log.name}*")) == \
        [log.name, f"{log.name}.1"]
    assert log.stat().st_size <= 1100 and (log.parent / f"{log.name}.1").stat().st_size <= 1100
    out = sdc("logs", name).stdout.splitlines()
    assert 10 < len(out) < 30 and out[-1] == "line-00000000000300", out
    numbers = [int(line[5:]) for line in out]
    assert numbers == list(range(numbers[0], 301))  # nothing lost between the two files


def test_local(busybox: str, name: str) -> None:
    r = sdc("run", "--name", name, "--log-driver", "local", busybox, "sh", "-c",
            "echo out-1; echo err-1 >&2")
    assert r.returncode == 0, r.stderr
    doc = inspect(name)
    assert doc["HostConfig"]["LogConfig"] == {"Type": "local", "Config": {}}
    for cli in (sdc, docker):
        r = cli("logs", name)
        assert (r.returncode, r.stdout, r.stderr) == (0, "out-1\n", "err-1\n"), (cli, r)
    assert journal_of(doc["Id"]) == ""


def test_none(busybox: str, name: str) -> None:
    r = sdc("run", "--name", name, "--log-driver", "none", busybox, "echo", "nowhere")
    assert r.returncode == 0 and r.stdout == "nowhere\n", r  # attached: the client has it
    doc = inspect(name)
    assert (doc["LogPath"], doc["HostConfig"]["LogConfig"]["Type"]) == ("", "none")
    assert journal_of(doc["Id"]) == ""
    assert not list((paths.CONTAINERS_DIR / doc["Id"]).glob("*.log"))
    for cli in (sdc, docker):
        r = cli("logs", name)
        assert r.returncode == 1 and r.stdout == "", r
        assert r.stderr == "Error response from daemon: configured logging driver does " \
            "not support reading\n", r.stderr


@pytest.mark.parametrize("args, words", [
    (["--log-driver", "syslog"], "log driver 'syslog' is not supported"),
    (["--log-driver", "json-file", "--log-opt", "max-size=1k", "--log-opt", "colour=red"],
     "unknown log opt 'colour' for json-file log driver"),
    (["--log-driver", "json-file", "--log-opt", "max-size=lots"], "max-size='lots'"),
    (["--log-driver", "local", "--log-opt", "compress=true"], "compress is not supported"),
])
def test_refused(busybox: str, name: str, args: list[str], words: str) -> None:
    r = sdc("run", "--name", name, *args, busybox, "true")
    assert r.returncode == 125 and r.stdout == "", r
    assert r.stderr.count("\n") == 1 and words in r.stderr, r.stderr
    assert name not in sdc("ps", "-a", "--format", "{{.Names}}").stdout


# -- the supervisors themselves: the CRI log file ---------------------------------------

# stdout and stderr, a 40 KiB line (CRI: two 16 KiB pieces P, then 8 KiB F), then wait
# for a word on stdin, write one line and end on a partial line (P).
WORKLOAD = ("echo out-1; echo err-1 >&2; head -c 40960 /dev/zero | tr '\\000' x; echo; "
            "read word; echo \"after-$word\"; printf tail")


@pytest.fixture
def cid() -> Iterator[str]:
    """A container id no container has; its runtime directory goes afterwards."""
    cid = secrets.token_hex(32)
    yield cid
    shutil.rmtree(paths.RUN_CONTAINERS_DIR / cid, ignore_errors=True)


def launch_spec(cid: str, run_dir: Path, **log: object) -> LaunchSpec:
    return LaunchSpec(
        id=cid, name="cri-log", scope="", argv=["sh"], env=[], cwd="/", user="",
        hostname="", tty=False, open_stdin=True, init=False, read_only=False, layers=[],
        upper="", work="", rootfs="", mounts=[], net="host", etc_files={},
        control_socket=str(run_dir / "monitor.sock"), exit_file=str(run_dir / "exit.json"),
        journal_fields={"CONTAINER_NAME": "cri-log", "CONTAINER_ID_FULL": cid}, **log)


def supervise(spec: LaunchSpec, kind: str, stdin_r: int) -> int:
    """A supervisor of KIND (native, python) for WORKLOAD, as the monitor leaves it once
    the workload runs: its parent, with the output pipes and the control socket."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(spec.control_socket)
    listener.listen()
    binary = monitor.native_binary()
    assert binary is not None or kind == "python"
    pid = os.fork()
    if pid:
        listener.close()
        return pid
    try:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        workload = os.fork()
        if workload == 0:
            for target, fd in enumerate((stdin_r, out_w, err_w)):
                os.dup2(fd, target)
            os.execv("/bin/sh", ["sh", "-c", WORKLOAD])
        for fd in (stdin_r, out_w, err_w):
            os.close(fd)
        if kind == "native" and binary:
            for fd in (listener.fileno(), out_r, err_r):
                os.set_inheritable(fd, True)
            os.execv(binary, [
                binary, "--listener", str(listener.fileno()), "--pid", str(workload),
                "--exit-file", spec.exit_file, "--python", "/bin/false",
                "--spec-fd", "-1", "--init-fd", "-1", "--out", f"{out_r}:1",
                "--out", f"{err_r}:2", *monitor.native_log_args(spec),
                *(a for k, v in spec.journal_fields.items() for a in ("--field", f"{k}={v}"))])
        m = monitor.Monitor(spec, listener)
        m.main.pid, m.main.pidfd = workload, os.pidfd_open(workload)
        m.main.outputs = {out_r: 1, err_r: 2}
        for fd in m.main.outputs:
            os.set_blocking(fd, False)
            m.sel.register(fd, monitor.selectors.EVENT_READ, ("out", m.main))
        m.sel.register(m.main.pidfd, monitor.selectors.EVENT_READ, ("exit", m.main))
        m.run()
    finally:
        os._exit(255)


def cri_lines(path: Path) -> list[tuple[str, str, str]]:
    out = []
    for line in path.read_bytes().split(b"\n")[:-1]:
        m = CRI_LINE.fullmatch(line.decode())
        assert m, line[:100]
        out.append((m.group(2), m.group(3), m.group(4)))
    return out


@pytest.mark.parametrize("kind", ["native", "python"])
def test_cri_log_and_reopen(tmp_path: Path, cid: str, kind: str) -> None:
    run_dir = paths.RUN_CONTAINERS_DIR / cid
    run_dir.mkdir(parents=True)
    cri = tmp_path / "pods" / "ns_pod_uid" / "app" / "0.log"  # its directories are new
    spec = launch_spec(cid, run_dir, cri_log_path=str(cri))
    stdin_r, stdin_w = os.pipe()
    pid = supervise(spec, kind, stdin_r)
    os.close(stdin_r)
    engine = Engine(store=None, images=None, zygote=None)  # type: ignore[arg-type]
    c = Container(id=cid, name="cri-log", created="", config=ContainerConfig(image="none"),
                  state=ContainerState(status="running"))
    engine.containers[cid] = c
    try:
        x = "x" * 16384
        before = [("stdout", "F", "out-1"), ("stderr", "F", "err-1"), ("stdout", "P", x),
                  ("stdout", "P", x), ("stdout", "F", "x" * 8192)]
        assert wait_for(lambda: cri.exists() and len(cri_lines(cri)) == 5, timeout=30)
        assert sorted(cri_lines(cri)) == sorted(before)
        assert stat.S_IMODE(cri.stat().st_mode) == 0o640
        # kubelet's rotation: rename, then ReopenContainerLog.
        cri.rename(cri.with_suffix(".log.1"))
        asyncio.run(engine.reopen_log("cri-log"))
        os.write(stdin_w, b"word\n")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(stdin_w)
    assert sorted(cri_lines(cri.with_suffix(".log.1"))) == sorted(before)
    assert cri_lines(cri) == [("stdout", "F", "after-word"), ("stdout", "P", "tail")]
    assert json.loads(Path(spec.exit_file).read_text())["exit_code"] == 0
    # ... and the journal as well (the default driver).
    assert "after-word" in journal_of(cid)
    c.state = ContainerState(status="exited")
    with pytest.raises(Conflict, match="not running"):
        asyncio.run(engine.reopen_log("cri-log"))


@pytest.mark.parametrize("kind", ["native", "python"])
def test_json_file_writers(tmp_path: Path, cid: str, kind: str) -> None:
    """Both supervisors write docker's json-file lines alike, and rotate them."""
    run_dir = paths.RUN_CONTAINERS_DIR / cid
    run_dir.mkdir(parents=True)
    log = tmp_path / f"{cid}-json.log"
    spec = launch_spec(cid, run_dir, log_driver="json-file", json_log=str(log),
                       log_max_size=16000, log_max_file=3)
    stdin_r, stdin_w = os.pipe()
    pid = supervise(spec, kind, stdin_r)
    os.close(stdin_r)
    os.write(stdin_w, b"word\n")
    os.close(stdin_w)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # Each 16 KiB piece fills a file past 16000 bytes: three files, none dropped.
    files = [Path(f"{log}.2"), Path(f"{log}.1"), log]
    assert sorted(tmp_path.iterdir()) == sorted(files)
    entries = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert all(list(e) == ["log", "stream", "time"] and re.fullmatch(TIME, e["time"])
               for e in entries)
    assert [e["log"] for e in entries if e["stream"] == "stderr"] == ["err-1\n"]
    assert [e["log"] for e in entries if e["stream"] == "stdout"] == [
        "out-1\n", "x" * 16384, "x" * 16384, "x" * 8192 + "\n", "after-word\n", "tail"]
    assert journal_of(cid) == ""
