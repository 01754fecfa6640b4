"""docker's config.json as the CLI reads it: detach keys' precedence (flag, then
`detachKeys`, then ctrl-p,ctrl-q) and registry credentials for X-Registry-Auth; and
push's progress lines as docker prints them off a terminal."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from sdcontainer.cli import attach, dockerconfig
from sdcontainer.cli.client import Usage
from sdcontainer.cli.imagecmds import display_messages
from sdcontainer.errors import SdcError


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    return tmp_path


def write(directory: Path, doc: object) -> None:
    (directory / "config.json").write_text(json.dumps(doc))


def test_detach_keys_precedence(config_dir: Path) -> None:
    # nothing anywhere: the default
    assert attach.check_detach_keys(None) is None
    # the config file's, for every attached verb
    write(config_dir, {"detachKeys": "ctrl-x,x"})
    assert attach.check_detach_keys(None) == "ctrl-x,x"
    # the flag wins over it
    assert attach.check_detach_keys("ctrl-a") == "ctrl-a"
    # a detached command does not read it
    assert attach.check_detach_keys(None, from_config=False) is None


def test_detach_keys_default_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".docker").mkdir()
    write(tmp_path / ".docker", {"detachKeys": "ctrl-e"})
    assert attach.check_detach_keys(None) == "ctrl-e"


def test_bad_detach_keys_in_config_name_the_file(config_dir: Path) -> None:
    write(config_dir, {"detachKeys": "ctrl-1"})
    with pytest.raises(Usage, match=r"Invalid escape keys \(ctrl-1\) provided in .*config.json"):
        attach.check_detach_keys(None)
    # the flag is checked on its own
    assert attach.check_detach_keys("ctrl-p,ctrl-q") == "ctrl-p,ctrl-q"


def test_unreadable_config_is_a_warning(config_dir: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    (config_dir / "config.json").write_text("{not json")
    assert attach.check_detach_keys(None) is None
    assert "WARNING: Error loading config file" in capsys.readouterr().err


def decoded(header: dict[str, str]) -> dict[str, str]:
    value = header["X-Registry-Auth"]
    return dict(json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))))


def test_registry_auth_header_from_auths(config_dir: Path) -> None:
    auth = base64.b64encode(b"alice:s3cret:x").decode()
    write(config_dir, {"auths": {"https://reg.example:5000/v2/": {"auth": auth},
                                 "https://index.docker.io/v1/": {"identitytoken": "tok"}}})
    assert decoded(dockerconfig.registry_auth_header("reg.example:5000/a/b:1")) == {
        "username": "alice", "password": "s3cret:x", "serveraddress": "reg.example:5000"}
    assert decoded(dockerconfig.registry_auth_header("docker.io/library/busybox")) == {
        "identitytoken": "tok", "serveraddress": "https://index.docker.io/v1/"}
    # a short name is the daemon's to resolve: its stored login applies
    assert dockerconfig.registry_auth_header("busybox") == {}
    assert dockerconfig.registry_auth_header("other.example/x") == {}


def test_push_progress_off_a_terminal() -> None:
    out = io.StringIO()
    display_messages(iter([
        {"status": "The push refers to repository [reg:5000/a]"},
        {"status": "Preparing", "id": "abc"},
        {"status": "Pushing", "id": "abc", "progressDetail": {"current": 0, "total": 10}},
        {"status": "Pushed", "id": "abc"},
        {"status": "1: digest: sha256:x size: 5"},
        {"progressDetail": {}, "aux": {"Tag": "1"}}]), out, False)
    assert out.getvalue() == ("The push refers to repository [reg:5000/a]\nabc: Preparing\n"
                              "abc: Pushed\n1: digest: sha256:x size: 5\n")
    with pytest.raises(SdcError, match=r"^denied$"):
        display_messages(iter([{"error": "denied"}]), io.StringIO(), False)
