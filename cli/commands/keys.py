"""`policy keys new`."""

from __future__ import annotations

import argparse
import sys

from ..exit_codes import EXIT_OK
from ..keys import key_prefix, key_sha256, new_key


def run_keys_new(args: argparse.Namespace) -> int:
    key = new_key()
    out = sys.stdout
    out.write("New virtual key (shown once; hand it to its holder, do not commit it):\n\n")
    out.write(f"  {key}\n\n")
    out.write("Paste into the policy:\n\n")
    out.write(f"  {args.id}:\n")
    out.write(f"    key_sha256: {key_sha256(key)}\n")
    out.write(f"    key_prefix: {key_prefix(key)}\n")
    return EXIT_OK
