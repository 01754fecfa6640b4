"""The sdcontainer CLI stays the thinnest client: none of the daemon's libraries load."""

from __future__ import annotations

import subprocess

from tests.integration.conftest import VENV_BIN

HEAVY = ("dbus_next", "dbus_fast", "pystemd", "pyroute2", "cryptography", "sdcontainer.engine",
         "sdcontainer.server", "sdcontainer.runtime", "sdcontainer.systemd.units",
         "sdcontainer.api", "sdcontainer.dbus")


def test_cli_imports_no_daemon_library() -> None:
    r = subprocess.run([str(VENV_BIN / "python"), "-X", "importtime", "-c",
                        "import sdcontainer.cli.main"], capture_output=True, text=True,
                       check=True)
    loaded = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines()}
    assert not [m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]
