"""One table of /etc/sdcontainer/sdcontainer.toml, read the same way by every section's
module ([api], [network], [registries], [cri]): each then checks its own keys."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from ..errors import InvalidArgument


def read_section(path: Path, name: str) -> dict[str, Any]:
    """The [NAME] table of the TOML file PATH: {} if the file or the table is missing;
    an unreadable or malformed file, or a NAME that is not a table, is InvalidArgument."""
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise InvalidArgument(f"cannot read {path}: {e}") from None
    section = doc.get(name, {})
    if not isinstance(section, dict):
        raise InvalidArgument(f"{path}: [{name}] must be a table")
    return section
