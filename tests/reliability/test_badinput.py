"""Bad input: the API fuzzed, and corrupt records at start-up."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.parse

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import SOCKET, sdc, sh, systemctl, wait_for

from .api import UnixHTTP, call
from .helpers import SERVICE, STATE, api_up, check_invariants, inspect, main_pid


def quote(s: str) -> str:
    """S for a URL, its %-escapes kept as they are (the tricks we want to send)."""
    return urllib.parse.quote(s.encode("utf-8", "surrogatepass"), safe="%")


EXAMPLES = int(os.environ.get("SDCONTAINER_FUZZ_EXAMPLES", "150"))

tricky_names = st.one_of(
    st.sampled_from(["..", "../..", "%2e%2e", "%2e%2e%2f%2e%2e", "a%00b", "%00", "a/../b",
                     "%2F", "x" * 300, "-", ".", "ä", "%ff%fe", "name?x=1", "a b"]),
    st.text(min_size=0, max_size=20).map(lambda s: s.encode("utf-8", "surrogatepass")
                                         .decode("latin-1")),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4),
    max_leaves=12)
create_fields = st.fixed_dictionaries({}, optional={
    "Image": json_values | st.just("busybox-no-such"), "Cmd": json_values,
    "Entrypoint": json_values, "Env": json_values, "Tty": json_values,
    "StopSignal": json_values | st.sampled_from(["SIGNOPE", "0", "99", "RTMIN+40"]),
    "StopTimeout": json_values | st.integers(-10**6, -2),
    "HostConfig": json_values | st.fixed_dictionaries({}, optional={
        "Memory": json_values, "NetworkMode": json_values, "Binds": json_values,
        "PortBindings": json_values, "RestartPolicy": json_values, "Mounts": json_values}),
    "Unknown": json_values, "Labels": json_values,
})


def check(status: int, body: bytes, what: object) -> None:
    assert status < 500, (what, status, body[:300])
    if status >= 400:
        doc = json.loads(body)
        assert isinstance(doc, dict) and isinstance(doc.get("message"), str), (what, body)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=create_fields | json_values, name=st.none() | tricky_names)
def test_fuzz_create(daemon: None, body: object, name: str | None) -> None:
    conn = UnixHTTP(timeout=20)
    path = "/containers/create" + (f"?name={quote(name)}" if name is not None else "")
    status, data = call(conn, "POST", path, body)
    check(status, data, (path, body))
    if status == 201:
        call(conn, "DELETE", f"/containers/{json.loads(data)['Id']}?force=1")
    conn.close()


ops = st.sampled_from([
    ("POST", "/containers/{}/start"), ("POST", "/containers/{}/stop?t={}"),
    ("POST", "/containers/{}/kill?signal={}"), ("POST", "/containers/{}/restart?t={}"),
    ("POST", "/containers/{}/wait?condition={}"), ("DELETE", "/containers/{}?force={}"),
    ("GET", "/containers/{}/json"), ("GET", "/containers/{}/logs?tail={}"),
    ("GET", "/images/{}/json"), ("DELETE", "/images/{}"), ("GET", "/networks/{}"),
    ("DELETE", "/networks/{}"), ("POST", "/networks/create"), ("POST", "/containers/{}/pause"),
    ("GET", "/containers/json?filters={}"), ("POST", "/images/create?fromImage={}"),
])
args = st.sampled_from(["-1", "-100000", "abc", "", "1e9", "99", "0", "SIGNOPE", "%00",
                        "99999999999999999999", "{", "true"])


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(op=ops, name=tricky_names, arg=args, body=st.none() | json_values)
def test_fuzz_endpoints(daemon: None, op: tuple[str, str], name: str, arg: str,
                        body: object) -> None:
    method, template = op
    path = template.format(quote(name) or "x", quote(arg))
    if "fromImage" in path and not name.startswith("."):
        return  # never reach out to a real registry
    conn = UnixHTTP(timeout=20)
    status, data = call(conn, method, path, body)
    check(status, data, (method, path, body))
    conn.close()


def raw_request(payload: bytes, timeout: float = 10) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(SOCKET)
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon answered and closed before reading it all
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_malformed_http_never_hangs_or_500s(daemon: None) -> None:
    cases = [
        b"GARBAGE\r\n\r\n",
        b"POST /containers/create HTTP/1.1\r\nContent-Length: 10\r\n\r\n{",
        b"POST /containers/create HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"POST /containers/create HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n",
        b"POST /containers/create HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /containers/%00/json HTTP/1.1\r\n\r\n",
        b"GET /v1.41/../../etc/passwd HTTP/1.1\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET /_ping HTTP/1.1\r\nNoColonHeader\r\n\r\n",
    ]
    for c in cases:
        # Every one gets an answer: a connection closed in silence is a failure too
        # (the client cannot tell it from a crash).
        out = raw_request(c)
        assert out.startswith(b"HTTP/1.1 "), (c, out[:200])
        status = int(out.split(b" ", 2)[1])
        assert 400 <= status < 500, (c, out[:200])
    # A huge body is refused before it is read (64 MiB is the limit).
    out = raw_request(b"POST /containers/create HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s"
                      % (65 << 20, b"[" * (1 << 20)))
    assert out.startswith(b"HTTP/1.1 413 "), out[:200]
    assert api_up()


def test_corrupt_record_moved_aside(busybox: str, name: str) -> None:
    assert sdc("create", "--name", name, busybox, "true").returncode == 0
    cid = inspect(name)["Id"]  # type: ignore[index]
    systemctl("stop", SERVICE, check=True)
    (STATE / "containers" / cid / "container.json").write_text('{"id": "x", garbage')
    since = time.strftime("%Y-%m-%d %H:%M:%S")
    systemctl("start", SERVICE, check=True)
    assert wait_for(api_up, 30)
    pid = main_pid()
    time.sleep(2)
    assert main_pid() == pid, "the daemon restarted (crash loop?)"
    assert inspect(name) is None
    assert (STATE / "containers" / f"{cid}.corrupt").is_dir()
    log = sh("journalctl", "-u", SERVICE, "--since", since, "-o", "cat").stdout
    assert "corrupt" in log and cid in log, log[-2000:]
    sh("rm", "-rf", str(STATE / "containers" / f"{cid}.corrupt"))
    check_invariants()
