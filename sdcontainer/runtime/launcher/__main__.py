"""Run a LaunchSpec by hand, without systemd or the daemon: for debugging the sandbox.

    python -m sdcontainer.runtime.launcher SPEC.json

The spec's scope is ignored; output goes to our stdout and stderr, and we exit
with the workload's status.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys

from ...model.spec import LaunchSpec
from ..zygote import Zygote


def main() -> int:
    """Entry point."""
    if len(sys.argv) != 2:
        print("usage: python -m sdcontainer.runtime.launcher SPEC.json", file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        spec = LaunchSpec.load(json.load(f))
    spec.scope = ""
    zygote = Zygote()
    zygote.spawn(spec)
    zygote.close()
    attach = socket.socket(socket.AF_UNIX)
    attach.connect(spec.control_socket)
    attach.sendall(b'{"op": "attach"}\n')
    attach.recv(4096)
    go = socket.socket(socket.AF_UNIX)
    go.connect(spec.control_socket)
    go.sendall(b'{"op": "go"}\n')
    answer = json.loads(go.makefile().readline())
    if "error" in answer:
        print(answer["error"], file=sys.stderr)
    buf = b""
    while chunk := attach.recv(65536):
        buf += chunk
        while len(buf) >= 8 and not spec.tty:
            stream, size = struct.unpack(">BxxxI", buf[:8])
            if len(buf) < 8 + size:
                break
            os.write(stream, buf[8:8 + size])
            buf = buf[8 + size:]
    if spec.tty:
        os.write(1, buf)
    while not os.path.exists(spec.exit_file):
        os.sched_yield()
    with open(spec.exit_file) as f:
        return int(json.load(f)["exit_code"])


if __name__ == "__main__":
    sys.exit(main())
