"""The HTTP server's body limits, held as bytes arrive, on the daemon's real socket.

A JSON endpoint keeps its body in memory, so MAX_BODY is refused before it is
read: a declared Content-Length or chunk size past it is answered 413 at once.
The daemon's peak RSS (VmHWM, reset through /proc/PID/clear_refs) shows that
nothing of the declared size was ever buffered.  Uploads (import, load) stream to
disk: they are not held to MAX_BODY, and a single chunk larger than it is fine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdcontainer.api.http import MAX_BODY
from tests.integration.conftest import SOCKET

from .apiutil import UnixConnection, api

MIB = 1 << 20
CREATE = "POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"


def daemon_pid() -> int:
    out = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value",
                          "sdcontainerd.service"], capture_output=True, text=True, check=True)
    pid = int(out.stdout.strip())
    assert pid > 0, "sdcontainerd is not running"
    return pid


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class PeakRSS:
    """How far the daemon's peak RSS rose above its RSS at the start (in bytes)."""

    def __init__(self) -> None:
        self.pid = daemon_pid()
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # reset VmHWM to VmRSS
        self.start = status_kib(self.pid, "VmRSS")

    def growth(self) -> int:
        return (status_kib(self.pid, "VmHWM") - self.start) * 1024


def exchange(head: str, body: bytes = b"", timeout: float = 5) -> tuple[int, bytes, float]:
    """Send HEAD and BODY on a raw connection and read the answer: status, the raw
    answer and the seconds it took.  The answer must come while we keep the rest
    of a declared body to ourselves."""
    start = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(SOCKET)
        s.sendall(head.encode() + b"\r\n" + body)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            piece = s.recv(65536)
            if not piece:
                break
            answer += piece
    return int(answer.split(b" ", 2)[1]), answer, time.monotonic() - start


@pytest.fixture
def warm(daemon: None) -> None:
    """One refused request first: the daemon's first request imports lazily."""
    exchange(CREATE + f"Content-Length: {MAX_BODY + 1}\r\n")


def test_declared_huge_chunk_refused_at_once(warm: None) -> None:
    peak = PeakRSS()
    status, answer, took = exchange(CREATE + "Transfer-Encoding: chunked\r\n",
                                    b"%x\r\n" % 300_000_000 + b"{" * (256 << 10))
    assert status == 413, answer
    assert b"request body too large" in answer
    assert took < 3
    assert peak.growth() < 8 * MIB, f"the daemon grew by {peak.growth() // MIB} MiB"


def test_chunks_past_the_limit_refused(warm: None) -> None:
    # The second chunk is refused from its size line: it would pass what is left.
    peak = PeakRSS()
    status, answer, _ = exchange(CREATE + "Transfer-Encoding: chunked\r\n",
                                 b"%x\r\n%s\r\n%x\r\n" % (MIB, b" " * MIB, MAX_BODY - MIB + 1)
                                 + b" " * 1024)
    assert status == 413, answer
    assert peak.growth() < 8 * MIB


def test_content_length_too_large_refused_at_once(warm: None) -> None:
    peak = PeakRSS()
    status, answer, took = exchange(CREATE + "Content-Length: 300000000\r\n",
                                    b"{" * (256 << 10))
    assert status == 413, answer
    assert took < 3
    assert peak.growth() < 8 * MIB


@pytest.mark.parametrize(("body", "status", "words"), [
    (b"0" * 5000 + b"1\r\n", 400, b"chunk-size line too long"),
    (b"-5\r\nhello\r\n0\r\n\r\n", 400, b"malformed chunked body"),
    (b"0x5\r\nhello\r\n0\r\n\r\n", 400, b"malformed chunked body"),
    (b"5\r\nhelloXX0\r\n\r\n", 400, b"malformed chunked body"),
    (b"2\r\n{}\r\n0\r\n" + b"X-Trailer: aaaaaaaa\r\n" * 5000 + b"\r\n", 400,
     b"chunked trailer too long"),
])
def test_malformed_chunked_bodies(warm: None, body: bytes, status: int, words: bytes) -> None:
    got, answer, took = exchange(CREATE + "Transfer-Encoding: chunked\r\n", body)
    assert got == status and words in answer, answer
    assert took < 3


def test_unsupported_transfer_encoding(warm: None) -> None:
    got, answer, _ = exchange(CREATE + "Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n")
    assert got == 501, answer


def test_chunked_body_with_trailers_then_keep_alive(warm: None) -> None:
    """A whole chunked body with extensions and trailers is read to its end: the
    next request on the connection is answered."""
    body = json.dumps({"Image": 5}).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(SOCKET)
        s.sendall(CREATE.encode() + b"Transfer-Encoding: chunked\r\n\r\n"
                  + b"%x;ext=1\r\n%s\r\n0\r\nX-Checksum: none\r\n\r\n" % (len(body), body)
                  + b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
        answer = b""
        while not answer.endswith(b"OK"):
            piece = s.recv(65536)
            assert piece, answer
            answer += piece
    assert answer.startswith(b"HTTP/1.1 400") and b"Image must be str" in answer
    assert b"HTTP/1.1 200" in answer


@pytest.mark.parametrize("head_path", ["/containers/no-such-ctr/archive?path=/x", "/_ping"])
def test_head_answers_carry_no_body(warm: None, head_path: str) -> None:
    """A HEAD answer, error or not, has headers only: a body would be read as the start
    of the next answer on a kept connection (the docker CLI's `cp` stats, then PUTs)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(SOCKET)
        s.sendall(f"HEAD {head_path} HTTP/1.1\r\nHost: d\r\n\r\n"
                  "GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n".encode())
        answer = b""
        while not answer.endswith(b"OK"):
            piece = s.recv(65536)
            assert piece, answer
            answer += piece
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 "), answer
    # What follows the HEAD answer's headers is the next answer's status line.
    assert rest.startswith(b"HTTP/1.1 200"), answer


@pytest.fixture
def big_rootfs(tmp_path: Path) -> Iterator[Path]:
    """A rootfs tarball a little larger than MAX_BODY (one plain file, no holes)."""
    data = tmp_path / "big.bin"
    block = os.urandom(MIB)
    with open(data, "wb") as f:
        for _ in range(MAX_BODY // MIB + 2):
            f.write(block)
    tar = tmp_path / "big.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(data, "big.bin")
    data.unlink()
    assert tar.stat().st_size > MAX_BODY
    yield tar
    api("DELETE", "/images/bigimport:one?force=1")
    api("DELETE", "/images/bigimport:two?force=1")


def read_stream(s: socket.socket) -> bytes:
    """A whole chunked answer (until its last chunk)."""
    answer = b""
    while not answer.endswith(b"0\r\n\r\n"):
        piece = s.recv(65536)
        assert piece, answer
        answer += piece
    return answer


def test_import_and_load_larger_than_max_body(daemon: None, big_rootfs: Path,
                                              tmp_path: Path) -> None:
    size = big_rootfs.stat().st_size
    peak = PeakRSS()
    # Import as one single chunk larger than MAX_BODY: streamed to disk piece by piece.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s, open(big_rootfs, "rb") as f:
        s.settimeout(120)
        s.connect(SOCKET)
        s.sendall(b"POST /v1.41/images/create?fromSrc=-&repo=bigimport&tag=one HTTP/1.1\r\n"
                  b"Host: d\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % size)
        s.sendfile(f)
        s.sendall(b"\r\n0\r\n\r\n")
        answer = read_stream(s)
    assert answer.startswith(b"HTTP/1.1 200") and b'"status": "sha256:' in answer, answer
    assert peak.growth() < 32 * MIB, f"the daemon grew by {peak.growth() // MIB} MiB"

    # docker save, then load it back under Content-Length, as `docker load` does.
    saved = tmp_path / "saved.tar"
    conn = UnixConnection(timeout=120)
    conn.request("GET", "/v1.41/images/bigimport:one/get")
    resp = conn.getresponse()
    assert resp.status == 200
    with open(saved, "wb") as out:
        while chunk := resp.read(MIB):
            out.write(chunk)
    conn.close()
    assert saved.stat().st_size > MAX_BODY
    assert api("DELETE", "/images/bigimport:one?force=1")[0] == 200
    peak = PeakRSS()
    conn = UnixConnection(timeout=120)
    with open(saved, "rb") as f:
        conn.request("POST", "/v1.41/images/load", body=f,
                     headers={"Content-Length": str(saved.stat().st_size),
                              "Content-Type": "application/x-tar"})
        resp = conn.getresponse()
        text = resp.read()
    conn.close()
    assert resp.status == 200 and b"Loaded image: bigimport:one" in text, text
    assert peak.growth() < 32 * MIB, f"the daemon grew by {peak.growth() // MIB} MiB"
    assert api("GET", "/images/bigimport:one/json")[0] == 200
