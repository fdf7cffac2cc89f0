"""`policy schema`: the JSON Schemas, generated from the pydantic models."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..exit_codes import EXIT_OK, EXIT_POLICY
from ..scaffold import SCHEMA_DIR

POLICY_SCHEMA = "policy.schema.json"
TABLE_SCHEMA = "routing-table.schema.json"
TEST_SCHEMA = "policy-test.schema.json"
POLICY_REPO_SCHEMAS = Path(SCHEMA_DIR)
GATEPOST_SCHEMAS = Path("schemas")


def generate() -> dict[str, str]:
    from artifact import RoutingTable
    from policy.models import PolicyDocument, PolicyTestFile

    policy = PolicyDocument.model_json_schema(mode="validation")
    policy["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    policy["$id"] = "https://gatepost.dev/schemas/policy.schema.json"
    policy["title"] = "Gatepost policy file"
    table = RoutingTable.model_json_schema(mode="validation")
    table["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    table["$id"] = "https://gatepost.dev/schemas/routing-table.schema.json"
    table["title"] = "Gatepost routing table"
    tests = PolicyTestFile.model_json_schema(mode="validation")
    tests["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    tests["$id"] = "https://gatepost.dev/schemas/policy-test.schema.json"
    tests["title"] = "Gatepost policy test file (*_test.yaml)"
    return {POLICY_SCHEMA: _dump(policy), TABLE_SCHEMA: _dump(table), TEST_SCHEMA: _dump(tests)}


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def schema_dir(out: Path | None) -> Path:
    """Where the schemas live: the one asked for, else a policy repository's `.schemas/` (what
    `policy init` writes and its files' `$schema` lines name), else Gatepost's own `schemas/`."""
    if out is not None:
        return out
    return POLICY_REPO_SCHEMAS if POLICY_REPO_SCHEMAS.is_dir() else GATEPOST_SCHEMAS


def run_schema(args: argparse.Namespace) -> int:
    out = schema_dir(args.out)
    stale = []
    for name, text in generate().items():
        target = out / name
        current = target.read_text() if target.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(name)
            continue
        out.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        print(f"wrote {target}", file=sys.stderr)
    if stale:
        print(f"stale schemas in {out}: {', '.join(stale)}; run `policy schema`", file=sys.stderr)
        return EXIT_POLICY
    return EXIT_OK
