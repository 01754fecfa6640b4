"""Log drivers (issue 18): which a container may ask for, with which options, and
where its output then goes.

- journald (the default): the journal, with docker's fields (runtime/logsink.py);
- none: nowhere (`docker logs` answers docker's "does not support reading");
- json-file: docker's JSON lines in STATE/containers/ID/ID-json.log, rotated by
  size (max-size, max-file), in place of the journal;
- local: docker's local driver is a compressed protobuf store; here it is the same
  file as json-file, with local's defaults (max-size 20m, max-file 5), uncompressed.

A CRI container (ContainerConfig.cri_log_path) also gets kubelet's log file, whatever
its driver.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidArgument
from ..model.spec import ContainerConfig

DRIVERS = ("journald", "json-file", "local", "none")
# docker's own options for each driver that sdcontainer honours or may ignore (tag,
# labels, env: docker's journald fields and json-file attrs that are not written yet;
# mode: we always block, as docker does by default).
COMMON_OPTS = ("mode", "max-buffer-size")
OPTS = {
    "journald": ("tag", "labels", "labels-regex", "env", "env-regex"),
    "json-file": ("max-size", "max-file", "compress", "tag"),
    "local": ("max-size", "max-file", "compress"),
    "none": (),
}
LOCAL_DEFAULTS = {"max-size": "20m", "max-file": "5"}
SIZE_RE = re.compile(r"(\d+(?:\.\d+)?) ?([kmgtp]?)i?b?", re.IGNORECASE)


@dataclass(frozen=True)
class LogSettings:
    """Where a container's output goes: DRIVER's, and for json-file (and local) the
    file PATH, rotated at MAX_SIZE bytes (0: never) keeping MAX_FILE files."""

    driver: str  # journald | none | json-file | local
    path: str = ""
    max_size: int = 0
    max_file: int = 1

    @property
    def file_based(self) -> bool:
        """Whether the output is in PATH (json-file, local) rather than the journal."""
        return self.driver in ("json-file", "local")


def parse_size(text: str) -> int:
    """docker's max-size: a number of bytes with an optional decimal unit (k, m, g:
    10m is 10,000,000, as docker's units.FromHumanSize)."""
    m = SIZE_RE.fullmatch(text.strip())
    if not m:
        raise InvalidArgument(f"invalid log opt max-size={text!r}: use a size such as 10m")
    size = int(float(m.group(1)) * 1000 ** "_kmgtp".index(m.group(2).lower() or "_"))
    if size <= 0:
        raise InvalidArgument("invalid log opt max-size: it must be a positive number")
    return size


# docker's other drivers: a clear refusal rather than "no log driver named".
DOCKER_ONLY_DRIVERS = ("syslog", "gelf", "fluentd", "awslogs", "splunk", "etwlogs",
                       "gcplogs", "logentries")


def check_log_config(driver: str, opts: dict[str, str], cri_log_path: str = "") -> None:
    """Refuse a driver, option or CRI log path we cannot honour, naming it."""
    if driver in DOCKER_ONLY_DRIVERS:
        raise InvalidArgument(f"log driver {driver!r} is not supported by sdcontainer: use "
                              f"{', '.join(DRIVERS)}")
    if driver not in DRIVERS:  # dockerd's words, which clients match
        raise InvalidArgument(f"logger: no log driver named '{driver}' is registered")
    for key in opts:
        if key not in OPTS[driver] and not (driver != "none" and key in COMMON_OPTS):
            raise InvalidArgument(f"unknown log opt '{key}' for {driver} log driver")
    if opts.get("mode", "blocking") not in ("blocking", "non-blocking"):
        raise InvalidArgument(f"invalid log opt mode={opts['mode']!r}: use blocking or "
                              "non-blocking")
    if driver in ("json-file", "local"):
        settings("", driver, opts)
        if opts.get("compress", "false").lower() not in ("false", "0"):
            raise InvalidArgument(f"log opt compress is not supported by the {driver} log "
                                  "driver: rotated files are kept uncompressed")
    if cri_log_path and not os.path.isabs(cri_log_path):
        raise InvalidArgument(f"the CRI log path {cri_log_path!r} is not absolute")


def settings(container_dir: Path | str, driver: str, opts: dict[str, str]) -> LogSettings:
    """The settings of DRIVER with OPTS for the container whose directory is
    CONTAINER_DIR (its id is the directory's name)."""
    if driver not in ("json-file", "local"):
        return LogSettings(driver)
    given = {**LOCAL_DEFAULTS, **opts} if driver == "local" else opts
    max_size = parse_size(given["max-size"]) if "max-size" in given else 0
    try:
        max_file = int(given.get("max-file", "1"))
    except ValueError:
        raise InvalidArgument(f"invalid log opt max-file={given['max-file']!r}: use a "
                              "number") from None
    if max_file < 1:
        raise InvalidArgument("invalid log opt max-file: it cannot be less than 1")
    directory = Path(container_dir)
    path = str(directory / f"{directory.name}-json.log") if container_dir else ""
    return LogSettings(driver, path, max_size, max_file)


def log_settings(container_dir: Path, cfg: ContainerConfig) -> LogSettings:
    """Where the output of the container with CFG, whose directory is CONTAINER_DIR,
    goes (a record written before log drivers: the journal)."""
    return settings(container_dir, cfg.log_driver or "journald", cfg.log_opts)
