"""`python -m cli` is the `policy` command."""

import sys

from .main import main

sys.exit(main())
