"""Namespace paths (ns:/PATH) and CgroupParent slice names are checked before use."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdcontainer.engine import nsmodes
from sdcontainer.errors import InvalidArgument
from sdcontainer.systemd.units import check_cgroup_parent, slice_for


@pytest.mark.parametrize("kind, proc", [("network", "net"), ("ipc", "ipc"), ("uts", "uts")])
def test_a_namespace_file_of_its_kind_passes(kind: str, proc: str) -> None:
    assert nsmodes.check(f"ns:/proc/self/ns/{proc}", kind) == f"/proc/self/ns/{proc}"


@pytest.mark.parametrize("mode, words", [
    ("ns:/proc/self/ns/net", "not a uts namespace"),
    ("ns:/run/no-such-namespace", "/run/no-such-namespace: No such file or directory"),
    ("ns:relative/net", "must be absolute"),
    ("ns:{file}", "not a namespace file"),
])
def test_anything_else_is_refused_naming_the_path(mode: str, words: str,
                                                  tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(InvalidArgument) as e:
        nsmodes.check(mode.format(file=tmp_path / "f"), "uts")
    assert words in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("parent", ["kubepods-besteffort-pod1234.slice", "test.slice",
                                    "a_b:c.slice"])
def test_slices_pass(parent: str) -> None:
    check_cgroup_parent(parent)
    assert slice_for("web", parent) == parent


@pytest.mark.parametrize("parent", ["/kubepods", "pod.scope", "a--b.slice", "-a.slice",
                                    "a-.slice", "a b.slice", "a/b.slice", ".slice"])
def test_other_parents_are_refused(parent: str) -> None:
    with pytest.raises(InvalidArgument, match="must be a systemd slice"):
        check_cgroup_parent(parent)
    assert slice_for("web") == "sdcontainer-web.slice"
