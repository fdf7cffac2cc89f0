"""One run reports every problem it can: a file that does not parse holds back only the checks
that relate entities to each other, not those that read one entity."""

from __future__ import annotations

from compiler import compile_sources
from policy.loader import SourceFile
from tests.conftest import FIXED_NOW

PROFILE = """\
profiles:
  codex:
    models_allowed: [gpt-4o]
    fallback: {on: [5xx, tiemout, 502], chain: [openai-primary]}
  claude:
    models_allowed: [claude-haiku]
    descriptoin: Claude Code users
"""


def source(path: str, text: str) -> SourceFile:
    return SourceFile(path, text, "0" * 64)


def test_a_syntax_error_holds_back_neither_schema_errors_nor_fallback_conditions() -> None:
    files = [source("broken.yaml", "budgets: {x: [}\n"), source("profiles.yaml", PROFILE)]
    result = compile_sources(files, now=FIXED_NOW)
    found = {(d.code, str(d.span)) for d in result.diagnostics}
    assert ("GP002", "broken.yaml:1:15") in found
    assert ("GP104", "profiles.yaml:4:26") in found and ("GP104", "profiles.yaml:4:35") in found
    assert ("GP102", "profiles.yaml:7:5") in found
    assert not [d for d in result.diagnostics if d.code.startswith("GP2")]
