"""Shell completion against a live daemon: the scripts the packages ship complete the
names of real containers, images, networks and volumes where a verb takes them."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdcontainer.cli import completion
from sdcontainer.cli.main import GROUPS, build_parser
from tests.integration.conftest import VENV_BIN, sdc

ENV = {**os.environ, "PATH": f"{VENV_BIN}:/usr/sbin:/usr/bin:/sbin:/bin"}


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("completion")
    found = {}
    for shell in ("bash", "zsh", "fish"):
        found[shell] = out / shell
        found[shell].write_text(completion.script(shell, build_parser(), GROUPS))
    return found


@pytest.fixture
def objects(busybox: str) -> Iterator[dict[str, str]]:
    """A running container web1-*, a network and a volume, removed afterwards."""
    tag = uuid.uuid4().hex[:6]
    made = {"container": f"web1-{tag}", "network": f"compnet-{tag}", "volume": f"compvol-{tag}"}
    try:
        sdc("run", "-d", "--name", made["container"], busybox, "sleep", "300", check=True)
        sdc("network", "create", made["network"], check=True)
        sdc("volume", "create", made["volume"], check=True)
        yield made
    finally:
        sdc("rm", "-f", made["container"])
        sdc("network", "rm", made["network"])
        sdc("volume", "rm", made["volume"])


def bash_complete(script: Path, line: str) -> list[str]:
    """COMPREPLY of the bash completion function for LINE, its words split as bash does
    (COMP_WORDBREAKS makes the colon of `busybox:` a word of its own)."""
    words = shlex.split(line.replace(":", " : ")) + ([""] if line.endswith(" ") else [])
    quoted = " ".join(shlex.quote(w) for w in words)
    r = subprocess.run(["bash", "-c", f"source {script}; COMP_WORDS=({quoted}); "
                        f"COMP_CWORD={len(words) - 1}; _sdcontainer; "
                        "printf '%s\\n' \"${COMPREPLY[@]}\""],
                       capture_output=True, text=True, check=True, env=ENV, timeout=60)
    return r.stdout.split()


def test_bash_completes_names(scripts: dict[str, Path], objects: dict[str, str],
                              busybox: str) -> None:
    s = scripts["bash"]
    web = objects["container"]
    assert web in bash_complete(s, "sdcontainer stop we")
    assert web in bash_complete(s, f"sdcontainer container stop {web[:-2]}")
    assert web in bash_complete(s, "sdcontainer exec -it we")
    assert "busybox:latest" in bash_complete(s, "sdcontainer run -d --name x busy")
    assert bash_complete(s, "sdcontainer run busybox:la") == ["latest"]
    assert objects["network"] in bash_complete(s, "sdcontainer run --network compnet")
    assert bash_complete(s, f"sdcontainer network connect {objects['network']} web1-") == [web]
    assert bash_complete(s, "sdcontainer volume rm compvol") == [objects["volume"]]
    # a verb that takes no names offers none
    assert bash_complete(s, "sdcontainer network create we") == []


def test_fish_and_zsh_complete_names(scripts: dict[str, Path],
                                     objects: dict[str, str]) -> None:
    web = objects["container"]
    if shutil.which("fish"):
        r = subprocess.run(["fish", "--no-config", "-c", f"source {scripts['fish']}; "
                            "complete -C 'sdcontainer stop we'"],
                           capture_output=True, text=True, check=True, env=ENV, timeout=60)
        assert web in r.stdout.split(), r.stdout
    if shutil.which("zsh"):
        # zsh's completion system needs a terminal; its compadd is stood in for by one
        # that prints the candidates our function offers.
        r = subprocess.run(["zsh", "-f", "-c", "compdef() { :; }; "
                            "compadd() { [[ $1 == -- ]] && shift; print -l -- $@; }; "
                            f"source {scripts['zsh']}; words=(sdcontainer stop we); "
                            "CURRENT=3; _sdcontainer"],
                           capture_output=True, text=True, check=True, env=ENV, timeout=60)
        assert web in r.stdout.split(), r.stdout
