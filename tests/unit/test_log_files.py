"""Log drivers' pure parts: options, the writers' line format and rotation, and the
json-file reader (tail from the end, follow across a rotation)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from sdcontainer.engine import jsonlog
from sdcontainer.engine.logconfig import LogSettings, check_log_config, parse_size, settings
from sdcontainer.errors import InvalidArgument
from sdcontainer.runtime.logsink import CriFile, JsonFile, OutputLog, rfc3339nano


def test_sizes_and_settings() -> None:
    assert [parse_size(s) for s in ("1k", "10m", "1.5K", "2g", "100", "10MB")] == \
        [1000, 10_000_000, 1500, 2_000_000_000, 100, 10_000_000]
    assert settings("/s/c/abc", "local", {}) == LogSettings("local", "/s/c/abc/abc-json.log",
                                                            20_000_000, 5)
    assert settings("/s/c/abc", "json-file", {"max-file": "3"}).max_file == 3
    assert settings("/s/c/abc", "journald", {"tag": "x"}) == LogSettings("journald")


@pytest.mark.parametrize("driver, opts, words", [
    ("syslog", {}, "log driver 'syslog' is not supported"),
    ("asdf", {}, "logger: no log driver named 'asdf' is registered"),
    ("json-file", {"labels": "a"}, "unknown log opt 'labels' for json-file"),
    ("none", {"tag": "x"}, "unknown log opt 'tag' for none"),
    ("json-file", {"max-size": "0"}, "positive"),
    ("json-file", {"max-file": "0"}, "less than 1"),
    ("json-file", {"max-file": "many"}, "max-file='many'"),
    ("json-file", {"compress": "true"}, "compress is not supported"),
    ("journald", {"mode": "sometimes"}, "mode='sometimes'"),
])
def test_refused(driver: str, opts: dict[str, str], words: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(words)):
        check_log_config(driver, opts)


def test_cri_path_must_be_absolute() -> None:
    check_log_config("journald", {"tag": "t", "mode": "non-blocking"}, "/var/log/pods/x/0.log")
    with pytest.raises(InvalidArgument, match="not absolute"):
        check_log_config("journald", {}, "pods/0.log")


def test_time_format() -> None:
    assert rfc3339nano(1_700_000_000_123_450_000) == "2023-11-14T22:13:20.12345Z"
    assert rfc3339nano(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
    assert jsonlog.parse_time_us("2023-11-14T22:13:20.12345Z") == 1_700_000_000_123_450


def test_cri_lines(tmp_path: Path) -> None:
    path = tmp_path / "new" / "0.log"
    out = OutputLog([CriFile(str(path))])
    out.feed(1, b"a\nb" + b"x" * 20000)
    out.feed(2, b"e\n")
    out.flush()
    lines = [line.split(b" ", 3)[1:] for line in path.read_bytes().split(b"\n")[:-1]]
    assert lines == [[b"stdout", b"F", b"a"], [b"stdout", b"P", b"b" + b"x" * 16383],
                     [b"stderr", b"F", b"e"], [b"stdout", b"P", b"x" * 3617]]
    assert path.stat().st_mode & 0o777 == 0o640


def read_all(path: Path, max_file: int, **kw: object) -> list[bytes]:
    async def collect() -> list[bytes]:
        return [e.data async for e in jsonlog.read(str(path), max_file, **kw)]  # type: ignore[arg-type]
    return asyncio.run(collect())


def test_rotation_and_tail(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    out = OutputLog([JsonFile(str(path), 2000, 3)])
    for i in range(300):
        out.feed(1 + i % 2, f"line {i} {'y' * (i % 50)}\n".encode())
    out.feed(1, b"end")
    out.flush()
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["c-json.log", "c-json.log.1", "c-json.log.2"]
    first = json.loads(path.read_text().splitlines()[0])
    assert list(first) == ["log", "stream", "time"]
    everything = read_all(path, 3)
    assert everything[-1] == b"end" and everything[-2] == b"line 299 " + b"y" * 49 + b"\n"
    numbers = [int(e.split()[1]) for e in everything[:-1]]
    assert numbers == list(range(numbers[0], 300))
    for n in (0, 1, 7, len(everything), len(everything) + 5):
        assert read_all(path, 3, tail=n) == everything[len(everything) - min(n, len(everything)):]
    # A line being written is not read yet.
    with path.open("ab") as f:
        f.write(b'{"log":"unfin')
    assert read_all(path, 3, tail=2) == everything[-2:]


def test_follow_across_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    out = OutputLog([JsonFile(str(path), 500, 2)])
    out.feed(1, b"before\n")

    async def follow() -> list[bytes]:
        exited = asyncio.get_running_loop().create_future()
        got = []
        async for e in jsonlog.read(str(path), 2, tail=1, follow=True, exited=exited):
            got.append(e.data)
            if len(got) == 1:  # the follower has the old file open: rotate it away
                for i in range(3):
                    out.feed(1, f"after {i} {'z' * 400}\n".encode())
                exited.set_result(0)
        return got

    got = asyncio.run(follow())
    assert got[0] == b"before\n" and got[-1].startswith(b"after 2 "), got
