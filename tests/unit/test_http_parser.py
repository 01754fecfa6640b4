"""The REST API's HTTP/1.1 parser (no root, no box): request line, headers, bodies by
Content-Length and chunked, the limits, and the status each malformed request gets."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator

import pytest

from sdcontainer.api import http
from sdcontainer.api.http import HTTPError, parse_head, read_body, read_head


def reader_of(data: bytes, limit: int = 2**16) -> asyncio.StreamReader:
    """A StreamReader holding DATA, then the end of the stream."""
    r = asyncio.StreamReader(limit=limit)
    r.feed_data(data)
    r.feed_eof()
    return r


def status_of(coro_fn, *args: object) -> int:  # type: ignore[no-untyped-def]
    """The HTTP status the parser refuses with (0: no refusal)."""
    try:
        asyncio.run(coro_fn(*args))
    except HTTPError as e:
        return e.http_status
    return 0


async def body_of(data: bytes, headers: dict[str, str]) -> bytes:
    return await read_body(reader_of(data, limit=1 << 20), headers)


async def head_of(data: bytes) -> bytes | None:
    return await read_head(reader_of(data, limit=http.MAX_HEADER))


# -- request line and headers ------------------------------------------------------------

def test_parse_head() -> None:
    method, path, query, headers = parse_head(
        b"GET /v1.41/containers/json?all=1&filters=%7B%7D&all=0&x= HTTP/1.1\r\n"
        b"Host: docker\r\nX-Thing:  spaced value \r\nCONTENT-length: 0\r\n\r\n")
    assert (method, path) == ("GET", "/v1.41/containers/json")
    assert query == {"all": ["1", "0"], "filters": ["{}"], "x": [""]}
    assert headers == {"host": "docker", "x-thing": "spaced value", "content-length": "0"}


def test_header_value_may_hold_colons() -> None:
    assert parse_head(b"GET / HTTP/1.0\r\nHost: a:1:2\r\n\r\n")[3] == {"host": "a:1:2"}


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n", b"GET /\r\n\r\n", b"GET / HTTP/1.1 extra\r\n\r\n", b"\r\n\r\n",
    b"GET  / HTTP/1.1\r\n\r\n", b"GET / HTTP/2.0\r\n\r\n", b"GET / FTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nNoColonHeader\r\n\r\n",
])
def test_malformed_heads_are_400(raw: bytes) -> None:
    with pytest.raises(HTTPError) as e:
        parse_head(raw)
    assert e.value.http_status == 400


def test_read_head() -> None:
    raw = b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"
    assert asyncio.run(head_of(raw + b"BODY")) == raw


def test_clean_end_of_connection_is_none() -> None:
    assert asyncio.run(head_of(b"")) is None
    assert asyncio.run(head_of(b"\r\n")) is None


def test_incomplete_head_is_400() -> None:
    assert status_of(head_of, b"GET / HTTP/1.1\r\nHost: x\r\n") == 400


def test_oversized_head_is_431() -> None:
    raw = b"GET / HTTP/1.1\r\nX: " + b"a" * (http.MAX_HEADER + 10) + b"\r\n\r\n"
    assert status_of(head_of, raw) == 431


# -- bodies -------------------------------------------------------------------------------

def test_content_length_body() -> None:
    assert asyncio.run(body_of(b'{"a": 1}tail', {"content-length": "8"})) == b'{"a": 1}'


def test_no_length_is_empty() -> None:
    assert asyncio.run(body_of(b"ignored", {})) == b""
    assert asyncio.run(body_of(b"ignored", {"content-length": ""})) == b""


@pytest.mark.parametrize("length", ["-5", "abc", "1e3", " 1", "0x10", "1" * 21, "+3"])
def test_bad_content_length_is_400(length: str) -> None:
    assert status_of(body_of, b"xxx", {"content-length": length}) == 400


def test_short_body_is_400() -> None:
    assert status_of(body_of, b"{", {"content-length": "10"}) == 400


def test_body_over_the_limit_is_413_before_reading() -> None:
    # Nothing of the body is there: the refusal comes from the header alone.
    assert status_of(body_of, b"", {"content-length": str(http.MAX_BODY + 1)}) == 413


def test_chunked_body() -> None:
    data = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\nnext"
    assert asyncio.run(body_of(data, {"transfer-encoding": "chunked"})) == \
        b"Wikipedia in\r\n\r\nchunks."


def test_chunked_with_trailers() -> None:
    data = b"3\r\nabc\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n"
    assert asyncio.run(body_of(data, {"transfer-encoding": "Chunked "})) == b"abc"


def test_chunked_accepts_bare_lf() -> None:
    assert asyncio.run(body_of(b"3\nabc\r\n0\n\n", {"transfer-encoding": "chunked"})) == \
        b"abc"


@pytest.mark.parametrize("data", [
    b"zz\r\n", b"\r\n", b"-1\r\nx\r\n", b"3\r\nabcXY0\r\n\r\n", b"3\r\nab",
    b"3\r\nabc\r\n", b"3\r\nabc\r\n0\r\n", b"1" * 65 + b"\r\n",
    b"3;" + b"e" * (http.MAX_CHUNK_LINE + 1) + b"\r\nabc\r\n0\r\n\r\n",
])
def test_malformed_chunked_is_400(data: bytes) -> None:
    assert status_of(body_of, data, {"transfer-encoding": "chunked"}) == 400


def test_chunked_over_the_limit_is_413_before_reading_the_chunk() -> None:
    size = b"%x" % (http.MAX_BODY + 1)
    assert status_of(body_of, size + b"\r\n", {"transfer-encoding": "chunked"}) == 413


def test_chunked_total_over_the_limit_is_413() -> None:
    async def body() -> int:
        pieces = 0
        r = reader_of(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        async for _ in http.body_chunks(r, {"transfer-encoding": "chunked"}, limit=8):
            pieces += 1
        return pieces

    assert status_of(body) == 413


def test_oversized_trailers_are_400() -> None:
    trailers = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1000) for i in range(70))
    data = b"0\r\n" + trailers + b"\r\n"
    assert status_of(body_of, data, {"transfer-encoding": "chunked"}) == 400


def test_unknown_transfer_encoding_is_501() -> None:
    assert status_of(body_of, b"", {"transfer-encoding": "gzip"}) == 501


def test_no_limit_for_uploads() -> None:
    async def total() -> int:
        n = 0
        r = reader_of(b"x" * 100)
        async for piece in http.body_chunks(r, {"content-length": "100"}, limit=None):
            n += len(piece)
        return n

    assert asyncio.run(total()) == 100


# -- a whole server on a socketpair: the status on the wire ------------------------------

async def serve(request: bytes) -> bytes:
    """REQUEST through Server.handle over a socketpair; all the server answered."""
    router = http.Router()

    async def ping(req: http.Request) -> http.Response:
        return http.Response(200, b"OK", "text/plain")

    async def echo(req: http.Request) -> http.Response:
        return http.json_response({"body": req.json(), "version": req.api_version,
                                   "name": req.params.get("name")})

    async def stream(req: http.Request) -> http.Stream:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"one"
            yield b""
            yield b"two"
        return http.Stream(chunks())

    router.add("GET", "/_ping", ping)
    router.add("POST", "/echo/{name}", echo)
    router.add("GET", "/stream", stream)
    server = http.Server(router)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        reader, writer = await asyncio.open_connection(sock=ours)
        task = asyncio.create_task(server.handle(reader, writer))
        loop = asyncio.get_running_loop()
        theirs.setblocking(False)
        await loop.sock_sendall(theirs, request)
        theirs.shutdown(socket.SHUT_WR)
        out = b""
        async with asyncio.timeout(5):
            while chunk := await loop.sock_recv(theirs, 65536):
                out += chunk
            await task
    return out


def statuses(out: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", out)]


def test_keep_alive_serves_requests_in_turn() -> None:
    out = asyncio.run(serve(b"GET /_ping HTTP/1.1\r\n\r\nGET /v1.41/_ping HTTP/1.1\r\n\r\n"))
    assert statuses(out) == [200, 200]
    assert out.count(b"Content-Length: 2\r\n\r\nOK") == 2


def test_json_body_and_path_parameters() -> None:
    out = asyncio.run(serve(b'POST /v1.40/echo/a%20b HTTP/1.1\r\nContent-Length: 8\r\n\r\n'
                            b'{"x": 1}'))
    assert statuses(out) == [200]
    assert json.loads(out.split(b"\r\n\r\n", 1)[1]) == {"body": {"x": 1}, "version": [1, 40],
                                                        "name": "a b"}


def test_chunked_response() -> None:
    out = asyncio.run(serve(b"GET /stream HTTP/1.1\r\n\r\n"))
    assert out.endswith(b"Transfer-Encoding: chunked\r\n\r\n3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n")


@pytest.mark.parametrize("request_bytes, status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\n\r\n", 400),
    (b"GET /nowhere HTTP/1.1\r\n\r\n", 404),
    (b"DELETE /_ping HTTP/1.1\r\n\r\n", 405),
    (b"GET /v1.12/_ping HTTP/1.1\r\n\r\n", 400),
    (b"POST /echo/x HTTP/1.1\r\nContent-Length: 10\r\n\r\n{", 400),
    (b"POST /echo/x HTTP/1.1\r\nContent-Length: 1\r\n\r\n{", 400),  # malformed JSON
    (b"POST /echo/x HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n", 413),
    (b"POST /echo/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"POST /echo/x HTTP/1.1\r\nTransfer-Encoding: br\r\n\r\n", 501),
    (b"GET /_ping HTTP/1.1\r\nX: " + b"a" * (70 * 1024) + b"\r\n\r\n", 431),
])
def test_malformed_requests_get_the_right_status(request_bytes: bytes, status: int) -> None:
    out = asyncio.run(serve(request_bytes))
    assert statuses(out) == [status], out[:300]
    doc = json.loads(out.split(b"\r\n\r\n", 1)[1])
    assert isinstance(doc["message"], str) and doc["message"]


def test_a_protocol_error_ends_the_connection() -> None:
    # After a 400 for a malformed request, what follows is not read as a new request.
    out = asyncio.run(serve(b"GARBAGE\r\n\r\nGET /_ping HTTP/1.1\r\n\r\n"))
    assert statuses(out) == [400]


def test_an_api_error_keeps_the_connection() -> None:
    out = asyncio.run(serve(b"GET /nowhere HTTP/1.1\r\n\r\nGET /_ping HTTP/1.1\r\n\r\n"))
    assert statuses(out) == [404, 200]


# -- query helpers ------------------------------------------------------------------------

def make_request(query: dict[str, list[str]]) -> http.Request:
    return http.Request("GET", "/", query, {}, None, None)  # type: ignore[arg-type]


def test_query_flags_and_ints() -> None:
    r = make_request({"a": ["0", "1"], "b": ["false"], "c": [""], "n": ["42"], "bad": ["x"]})
    assert r.arg("a") == "1" and r.arg("zz", "d") == "d"
    assert r.flag("a") is True and r.flag("b") is False and r.flag("c", True) is True
    assert r.int_arg("n") == 42 and r.int_arg("missing", 7) == 7
    with pytest.raises(Exception, match="invalid boolean"):
        r.flag("bad")
    with pytest.raises(Exception, match="invalid integer"):
        r.int_arg("bad")
