"""`policy init`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..exit_codes import EXIT_OK, EXIT_USAGE
from ..gatepost_source import GatepostSource
from ..scaffold import SCHEMA_DIR, blockers, render, write
from .schema import generate


def run_init(args: argparse.Namespace) -> int:
    target: Path = args.directory
    made = render(args.principal, GatepostSource(args.gatepost_url, args.gatepost_rev))
    files = {**made.files, **{Path(SCHEMA_DIR) / name: text for name, text in generate().items()}}
    refused = blockers(target, files)
    if refused:
        listed = ", ".join(str(p.relative_to(target)) for p in refused[:5]) + (", ..." if len(refused) > 5 else "")
        print(f"policy init: error: {target} is not empty ({listed}); choose a new directory, or one that "
              "holds only dot-entries such as .git", file=sys.stderr)
        return EXIT_USAGE
    for path in write(target, files):
        print(f"  created {path}")
    print(f"\nThe starter key {made.vk_id} (shown once; hand it to its holder, do not commit it):\n\n  {made.key}\n")
    cd = "" if target.resolve() == Path.cwd().resolve() else f"cd {target} && "
    print(f"Next: {cd}policy compile . --check --strict && policy test .")
    return EXIT_OK
