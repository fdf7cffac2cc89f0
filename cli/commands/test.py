"""`policy test`: the policy's own test cases, run through the proxy's decision function."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compiler import render_text
from compiler.documents import load_error_diagnostic, validate_document
from policy.errors import LoadError
from policy.loader import TEST_SUFFIXES, parse, read_source
from policy.models import PolicyTestFile, TestCase
from runtime.decision import Allow
from runtime.explain import explain, find_key
from runtime.table import LoadedTable

from .. import rate_limits
from ..exit_codes import EXIT_OK, EXIT_POLICY, EXIT_USAGE
from ..sources import load_or_report


def discover_tests(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.name.endswith(TEST_SUFFIXES)
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def outcome(table: LoadedTable, case: TestCase) -> dict[str, Any]:
    key = find_key(table, case.vk, case.key_prefix)
    if key is None:
        who = case.vk or f"prefix {case.key_prefix}"
        return {"error": f"no virtual key {who} in the policy"}
    at = case.at or datetime.now(UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    result = explain(table, key, case.model, case.surface, at)
    d = result.decision
    decided = result.decision_source
    if isinstance(d, Allow):
        targets = [f"{t.provider}/{t.model}" for t in d.targets]
        lines = list(result.target_sources)
        budgets = [table.budgets[b].source for b in d.key.budgets]
        limits = rate_limits.applying(table, d.key, d.route.model)
        return {"decision": "allow", "model": d.route.model, "first_target": targets[0] if targets else None,
                "targets": targets, "budgets": list(d.key.budgets), "rate_limits": limits, "cache": d.key.cache.mode,
                "sources": {"decision": decided, "model": d.route.source, "first_target": lines[0] if lines else None,
                            "targets": _joined(lines), "budgets": _joined(budgets),
                            "rate_limits": _joined([table.rate_limits[i].source for i in limits]),
                            "cache": key.cache_source}}
    return {"decision": "deny", "status": d.status, "code": d.code, "message": d.message,
            "sources": dict.fromkeys(("decision", "status", "code", "message"), decided)}


def _joined(lines: list[str | None]) -> str | None:
    return ", ".join(line or "?" for line in lines) or None


def compare(case: TestCase, got: dict[str, Any]) -> list[str]:
    if "error" in got:
        return [got["error"]]
    problems = []
    sources = got.get("sources", {})
    for name, want in case.expect.model_dump(exclude_none=True).items():
        if got.get(name) != want:
            where = f"  ({sources[name]})" if sources.get(name) else ""
            problems.append(f"{name}: expected {want!r}, got {got.get(name)!r}{where}")
    return problems


def run_test(args: argparse.Namespace) -> int:
    root: Path = args.directory
    if not root.is_dir():
        print(f"policy test: error: {root}: not a directory", file=sys.stderr)
        return EXIT_USAGE
    table = load_or_report("test", root)
    if isinstance(table, int):
        return table
    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    test_files = discover_tests(root)
    for path in test_files:
        rel = path.relative_to(root).as_posix()
        try:
            doc = parse(read_source(root, path))
        except LoadError as exc:
            sys.stderr.write(render_text([load_error_diagnostic(exc)], {}))
            skipped.append(rel)
            continue
        suite, diagnostics = validate_document(PolicyTestFile, doc)
        if suite is None:
            sys.stderr.write(render_text(diagnostics, {doc.source.path: doc.source.text}))
            skipped.append(rel)
            continue
        for i, case in enumerate(suite.tests):
            got = outcome(table, case)
            problems = compare(case, got)
            span = doc.values.get(("tests", i))
            results.append({"name": case.name, "where": str(span) if span else doc.source.path,
                            "passed": not problems, "problems": problems, "got": got})
    if not results and not skipped:
        where = f"{len(test_files)} *_test.yaml file(s) with no cases" if test_files else "no *_test.yaml files"
        print(f"policy test: error: no test cases in {root} ({where}); a test that checks nothing cannot pass. "
              "Add cases to a *_test.yaml file (see `policy test --help`)", file=sys.stderr)
        return EXIT_POLICY
    failed = [r for r in results if not r["passed"]]
    if args.format == "json":
        print(json.dumps({"passed": len(results) - len(failed), "failed": len(failed), "skipped_files": skipped,
                          "cases": results}, indent=2))
    else:
        for r in results:
            print(f"{'PASS' if r['passed'] else 'FAIL'}  {r['name']}  ({r['where']})")
            for problem in r["problems"]:
                print(f"      {problem}")
            if r["problems"] and r["got"].get("message"):
                print(f"      message: {r['got']['message']}")
        tail = f", {len(skipped)} malformed test file(s) skipped" if skipped else ""
        print(f"{len(results) - len(failed)} passed, {len(failed)} failed{tail}")
    if skipped:
        print(f"policy test: error: skipped {', '.join(skipped)}: malformed (errors above), so its cases did not run",
              file=sys.stderr)
        return EXIT_USAGE
    return EXIT_POLICY if failed else EXIT_OK
