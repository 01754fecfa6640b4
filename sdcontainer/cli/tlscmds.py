"""`sdcontainer tls init`: certificates for the daemon's TCP API (no daemon needed)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cmd_tls_init(client: Any, ns: argparse.Namespace) -> int:
    """Write ca.pem, server-cert.pem, server-key.pem, cert.pem and key.pem."""
    from .. import tlscerts  # cryptography is large: loaded only for this verb

    for path in tlscerts.init(ns.hostname, Path(ns.dir), force=ns.force):
        print(path)
    return 0


def add_verbs(sub: Any, verb: Callable[..., argparse.ArgumentParser]) -> None:
    """`tls` with its sub-verbs, into the parser."""
    tls = sub.add_parser("tls", help="Manage TLS certificates for the TCP API")
    tsub = tls.add_subparsers(dest="tls_verb", metavar="COMMAND", required=True)
    v = verb("init", cmd_tls_init, "Create a CA, a server and a client certificate",
             parent=tsub)
    v.add_argument("--hostname", required=True, help="the name clients connect to")
    v.add_argument("--dir", default="/etc/sdcontainer/tls", help="where to write (0600 files)")
    v.add_argument("--force", action="store_true", help="overwrite existing files")
