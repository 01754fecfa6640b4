"""The one typed container config (issue 14): records of earlier versions load into the
typed sub-records, a record survives its JSON form, and unset fields stay unset until
the engine fills them from the image."""

from __future__ import annotations

import dataclasses
import json

from sdcontainer.api.containers import parse_create
from sdcontainer.model.spec import ContainerConfig, Device, LaunchSpec, MountSpec, PortMapping


def test_an_older_record_loads_into_typed_records() -> None:
    old = {"image": "busybox", "image_id": "sha256:x", "entrypoint": [], "cmd": ["sh"],
           "stop_signal": "SIGTERM", "network_mode": "bridge", "unknown_later_key": 1,
           "publish": [{"host_ip": "", "host_port": 8080, "container_port": 80,
                        "proto": "tcp", "count": 1}],
           "devices": [{"host": "/dev/null", "path": "/dev/n", "perms": "rw", "type": "c",
                        "major": 1, "minor": 3, "mode": 0o666}],
           "mounts": [{"type": "bind", "target": "/d", "source": "/srv", "readonly": True}]}
    cfg = ContainerConfig.load(old)
    assert cfg.publish == [PortMapping("", 8080, 80)]
    assert cfg.devices == [Device("/dev/null", "/dev/n", "rw", "c", 1, 3, 0o666)]
    assert cfg.mounts == [MountSpec("bind", "/d", "/srv", True)]
    again = ContainerConfig.load(json.loads(json.dumps(dataclasses.asdict(cfg))))
    assert again == cfg


def test_launch_spec_devices_survive_the_zygote_socket() -> None:
    spec = LaunchSpec(
        id="x", name="x", scope="x.scope", argv=["sh"], env=[], cwd="/", user="",
        hostname="x", tty=False, open_stdin=False, init=False, read_only=False, layers=[],
        upper="", work="", rootfs="", mounts=[], net="new", etc_files={},
        control_socket="", exit_file="", journal_fields={},
        devices=[Device("/dev/fuse", "/dev/fuse", "rwm", "c", 10, 229)], ipc="host",
        cpus=[0], shm_size=1 << 20)
    assert LaunchSpec.load(json.loads(json.dumps(dataclasses.asdict(spec)))) == spec


def test_unset_means_the_image_decides() -> None:
    cfg = parse_create({"Image": "busybox"})
    assert (cfg.entrypoint, cfg.cmd, cfg.working_dir, cfg.user, cfg.hostname) == (
        None, None, "", "", "")
    assert (cfg.stop_signal, cfg.network_mode, cfg.stop_timeout) == ("", "", 10)
    given = parse_create({"Image": "busybox", "Entrypoint": [], "Cmd": ["true"],
                          "WorkingDir": "/w", "StopSignal": "SIGINT", "StopTimeout": 2})
    assert (given.entrypoint, given.cmd, given.working_dir) == ([], ["true"], "/w")
    assert (given.stop_signal, given.stop_timeout) == ("SIGINT", 2)
    assert given.argv == ["true"]
