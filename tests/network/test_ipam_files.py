"""IPAM state as one file per member: release only unlinks, and older records migrate."""

from __future__ import annotations

import json
from pathlib import Path

from sdcontainer.network.hosts import rewrite_in_place
from sdcontainer.network.ipam import Ipam
from sdcontainer.network.model import NetworkRecord

A, B = "a" * 64, "b" * 64


def _net() -> NetworkRecord:
    return NetworkRecord(name="n", id="0" * 64, bridge="b", subnet="10.6.0.0/29",
                         gateway="10.6.0.1")


def test_release_unlinks_the_member_file(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path)
    assert ipam.allocate(_net(), A, "a", ("x",)) == "10.6.0.2"
    member = tmp_path / "n" / f"{A}.json"
    assert json.loads(member.read_text()) == {"aliases": ["x"], "ip": "10.6.0.2", "name": "a"}
    assert ipam.release("n", A)
    assert not member.exists()
    assert ipam.owners() == {}
    ipam.drop("n")
    assert list(tmp_path.iterdir()) == []


def test_an_older_single_file_record_migrates(tmp_path: Path) -> None:
    (tmp_path / "n.json").write_text(json.dumps({"last": "10.6.0.3", "members": {
        A: {"name": "a", "ip": "10.6.0.2", "aliases": []},
        B: {"name": "b", "ip": "10.6.0.3", "aliases": ["y"]}}}))
    ipam = Ipam(tmp_path)
    assert ipam.owners() == {A: ["n"], B: ["n"]}
    assert json.loads((tmp_path / "n.json").read_text()) == {"last": "10.6.0.3"}
    assert ipam.release("n", A)
    # Round-robin goes on from the migrated cursor.
    assert ipam.allocate(_net(), "c" * 64, "c", ()) == "10.6.0.4"
    assert [m.name for m in ipam.members("n")] == ["b", "c"]


def test_rewrite_in_place_keeps_the_inode(tmp_path: Path) -> None:
    f = tmp_path / "hosts"
    f.write_text("a long old line\n" * 10)
    ino = f.stat().st_ino
    assert rewrite_in_place(f, "short\n")
    assert f.read_text() == "short\n" and f.stat().st_ino == ino
    assert not rewrite_in_place(tmp_path / "gone", "x")
