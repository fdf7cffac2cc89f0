"""`policy init`."""

from __future__ import annotations

import argparse
import sys

from ..exit_codes import EXIT_OK, EXIT_USAGE
from ..gatepost_source import GatepostSource
from ..scaffold import SCHEMA_DIR, scaffold
from .schema import generate


def run_init(args: argparse.Namespace) -> int:
    target = args.directory
    if target.exists() and any(target.iterdir()):
        print(f"policy init: error: {target} is not empty; choose a new directory", file=sys.stderr)
        return EXIT_USAGE
    made = scaffold(target, args.principal, GatepostSource(args.gatepost_url, args.gatepost_rev))
    schemas = target / SCHEMA_DIR
    schemas.mkdir(exist_ok=True)
    for name, text in generate().items():
        (schemas / name).write_text(text)
        made.files.append(schemas / name)
    for path in made.files:
        print(f"  created {path}")
    print(f"\nThe starter key {made.vk_id} (shown once; hand it to its holder, do not commit it):\n\n  {made.key}\n")
    print(f"Next: cd {target} && policy compile . --check && policy test .")
    return EXIT_OK
