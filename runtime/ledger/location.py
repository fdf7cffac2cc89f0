"""Where the SQLite ledger lives unless `--data` says otherwise.

Never the current directory: `policy serve .` is run from the policy repository, where a ledger
would be staged by `git add -A`. A per-user state directory is the same for every command the
user runs, so `policy budgets` finds what `policy serve` wrote without being told.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def default_data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """$GATEPOST_DATA_DIR (or its older name $GATEPOST_DATA), else $XDG_STATE_HOME/gatepost, else
    ~/.local/state/gatepost."""
    for name in ("GATEPOST_DATA_DIR", "GATEPOST_DATA"):
        if environ.get(name):
            return Path(environ[name])
    state = environ.get("XDG_STATE_HOME")
    if state and Path(state).is_absolute():
        return Path(state) / "gatepost"
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    return home / ".local" / "state" / "gatepost"
