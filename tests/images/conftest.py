"""Fixtures for the image tests.

The checkout is not installed into the venv, so make ``import sdcontainer``
work from the repository root, whichever directory pytest was started in.
"""

from __future__ import annotations

import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))
