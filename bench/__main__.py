"""`python3 -m bench`: see bench/main.py."""

import sys

from .main import main

sys.exit(main())
