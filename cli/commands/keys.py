"""`policy keys new`."""

from __future__ import annotations

import argparse
import sys

from compiler.validate import ID_PATTERN

from ..exit_codes import EXIT_OK, EXIT_USAGE
from ..keys import key_prefix, key_sha256, new_key


def run_keys_new(args: argparse.Namespace) -> int:
    if not ID_PATTERN.match(args.id):
        print(f"policy keys new: error: --id {args.id!r} is not a virtual key id: it must start with a letter or "
              "digit and use only letters, digits and . _ @ + : - (e.g. vk-bob-codex)", file=sys.stderr)
        return EXIT_USAGE
    key = new_key()
    out = sys.stdout
    out.write("New virtual key (shown once; hand it to its holder, do not commit it):\n\n")
    out.write(f"  {key}\n\n")
    out.write("Paste into the policy:\n\n")
    out.write(f"  {args.id}:\n")
    out.write(f"    key_sha256: {key_sha256(key)}\n")
    out.write(f"    key_prefix: {key_prefix(key)}\n")
    return EXIT_OK
