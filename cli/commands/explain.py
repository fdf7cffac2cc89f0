"""`policy explain`."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from compiler.diagnostics import suggest
from runtime.decision import Allow, Deny
from runtime.explain import Explanation, explain, find_key, keys_with_prefix
from runtime.table import LoadedTable

from .. import rate_limits
from ..exit_codes import EXIT_OK, EXIT_USAGE
from ..sources import load_or_report

MAX_NAMES_SHOWN = 12


def _not_found(table: LoadedTable, args: argparse.Namespace) -> str:
    if args.vk:
        hint = suggest(args.vk, table.keys)
        return f"no virtual key '{args.vk}' in {args.source}" + (f"; {hint}" if hint else "")
    matches = keys_with_prefix(table, args.key_prefix)
    if not matches:
        return f"no key with prefix '{args.key_prefix}' in {args.source}"
    listed = ", ".join(f"{k.id} ({k.key_prefix})" for k in matches)
    return f"prefix '{args.key_prefix}' is ambiguous: {len(matches)} keys match: {listed}; give more characters or --vk"


def run_explain(args: argparse.Namespace) -> int:
    table = load_or_report("explain", args.source)
    if isinstance(table, int):
        return table
    key = find_key(table, args.vk, args.key_prefix)
    if key is None:
        print(f"policy explain: error: {_not_found(table, args)}", file=sys.stderr)
        return EXIT_USAGE
    result = explain(table, key, args.model, args.surface, datetime.now(UTC))
    limits = with_rate_limits(table, result)
    hint = model_hint(result)
    if args.format == "json":
        print(json.dumps({"revision": table.revision, **result.to_json(table), **limits,
                          **({"hint": hint} if hint else {})}, indent=2))
        return EXIT_OK
    if hint:
        result.steps.append((f"hint: {hint}", None))
    print(render_text(table, result), end="")
    return EXIT_OK


def with_rate_limits(table: LoadedTable, result: Explanation) -> dict[str, object]:
    """An allowed request's rate limits as steps before the decision, with their lines, and as JSON:
    each of the key's instances and whether the route's model counts against it."""
    decision = result.decision
    if not isinstance(decision, Allow):
        return {}
    model = decision.route.model
    result.steps[-1:-1] = rate_limits.steps(table, decision.key, model)
    return {"rate_limits": [
        {"instance": i, "applies": rate_limits.applies(table.rate_limits[i], model),
         "source": table.rate_limits[i].source}
        for i in decision.key.rate_limits
    ]}


def model_hint(result: Explanation) -> str | None:
    """For a model the key may not request, the nearest name it may (a model or an alias), or the
    names it may when none is close; nothing when the denial already suggests one."""
    decision = result.decision
    if not isinstance(decision, Deny) or decision.code != "model_not_allowed" or "did you mean" in decision.message:
        return None
    if result.key is None or not result.key.routes:
        return None
    close = suggest(result.model, result.key.routes)
    if close:
        return f"{close} (a name this key may request)"
    names = sorted(result.key.routes)
    shown = ", ".join(names[:MAX_NAMES_SHOWN]) + (f" and {len(names) - MAX_NAMES_SHOWN} more"
                                                   if len(names) > MAX_NAMES_SHOWN else "")
    return f"this key may request {shown}"


def render_text(table: LoadedTable, result: Explanation) -> str:
    """The steps in one column and the policy line behind each in the next."""
    who = result.key.label if result.key else "?"
    lines = [f"{result.model} via /{result.surface} for {who}  (revision {table.revision[:19]})"]
    width = max(len(text) for text, _ in result.steps) + 2
    lines += [f"  {text.ljust(width)}{source or ''}".rstrip() for text, source in result.steps]
    return "\n".join(lines) + "\n"
