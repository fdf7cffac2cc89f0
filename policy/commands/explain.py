"""`policy explain`."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from runtime.explain import explain, find_key
from runtime.reload import PolicyError, load_source
from runtime.table import TableError

from ..cli import EXIT_OK, EXIT_POLICY, EXIT_USAGE


def run_explain(args: argparse.Namespace) -> int:
    try:
        table = load_source(args.source)
    except PolicyError as exc:
        sys.stderr.write(exc.report)
        print(f"policy explain: {args.source} does not compile", file=sys.stderr)
        return EXIT_POLICY
    except (TableError, OSError) as exc:
        print(f"policy explain: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    key = find_key(table, args.vk, args.key_prefix)
    if key is None:
        wanted = f"virtual key '{args.vk}'" if args.vk else f"exactly one key with prefix '{args.key_prefix}'"
        print(f"policy explain: error: no {wanted} in {args.source}", file=sys.stderr)
        return EXIT_USAGE
    result = explain(table, key, args.model, args.surface, datetime.now(timezone.utc))
    if args.format == "json":
        print(json.dumps({"revision": table.revision, **result.to_json(table)}, indent=2))
        return EXIT_OK
    print(f"{args.model} via /{args.surface} for {key.label}  (revision {table.revision[:19]})")
    width = max(len(text) for text, _ in result.steps) + 2
    for text, source in result.steps:
        print(f"  {text.ljust(width)}{source or ''}".rstrip())
    return EXIT_OK
