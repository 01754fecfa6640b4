"""Record writes that finish out of order keep the newest snapshot; a deleted record
stays deleted whatever write arrives late (no root, no box)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from sdcontainer import paths
from sdcontainer.engine.records import Container, ContainerStore
from sdcontainer.model.spec import ContainerConfig


@pytest.fixture(autouse=True)
def state_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "CONTAINERS_DIR", tmp_path / "state")
    monkeypatch.setattr(paths, "RUN_CONTAINERS_DIR", tmp_path / "run")


def container(root: Path) -> Container:
    return Container(id="a" * 64, name="t", created="2026-01-01T00:00:00Z",
                     config=ContainerConfig(image="busybox", image_id="sha256:" + "b" * 64,
                                             entrypoint=[], cmd=["true"]))


def test_an_older_snapshot_never_overwrites_a_newer_one(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    c = container(tmp_path)
    old, new = c.to_json(), {**c.to_json(), "name": "newer"}
    first, second = next(store.seq), next(store.seq)
    store.write(c, new, second)
    store.write(c, old, first)  # finished last, taken first
    assert json.loads((c.dir / "container.json").read_text())["name"] == "newer"


def test_a_late_write_does_not_bring_a_removed_record_back(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    c = container(tmp_path)
    seq = next(store.seq)
    store.write(c, c.to_json(), next(store.seq))
    store.delete(c)
    store.write(c, c.to_json(), seq)
    store.write(c, c.to_json(), next(store.seq))
    assert not (c.dir / "container.json").exists()


def test_concurrent_writes_leave_the_highest_sequence(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    c = container(tmp_path)
    snapshots = [(next(store.seq), {**c.to_json(), "name": f"n{i}"}) for i in range(40)]
    threads = [threading.Thread(target=store.write, args=(c, snap, seq))
               for seq, snap in reversed(snapshots)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert json.loads((c.dir / "container.json").read_text())["name"] == "n39"
