"""An entity that failed its schema is reported for its own mistake only: what depends on it
(a budget that would apply to it, the credential its unknown type might need) stays quiet until
the cause is fixed."""

from __future__ import annotations

from compiler import compile_sources
from policy.loader import SourceFile
from tests.conftest import FIXED_NOW

BASE = """\
providers:
  mock: {type: mock}
models:
  gpt-4o: {providers: [mock], price: {input: 2.50, output: 10.00}}
teams:
  eng: {members: [bob@x.com, carol@x.com]}
"""

BROKEN_KEY = """\
virtual_keys:
  vk-bob:
    key_sha256: ad2bac2e8e3158a68bda0b891445ca8b55964004de7ab3430a69257381e24d25
    principal: bob@x.com
    team: eng
    models_allowd: [gpt-4o]
budgets:
  per-key: {scope: vk, target: vk-bob, window: day, limit_usd: 10}
  bob: {scope: principal, target: bob@x.com, window: day, limit_usd: 10}
  eng: {scope: team, target: eng, window: day, limit_usd: 10}
  org: {scope: org, window: day, limit_usd: 10}
  everyone: {scope: principal, target: "*", window: day, limit_usd: 10}
  carol: {scope: principal, target: carol@x.com, window: day, limit_usd: 10}
"""


def diagnostics(extra: str) -> list[tuple[str, str]]:
    files = [SourceFile("policy.yaml", BASE, "0" * 64), SourceFile("extra.yaml", extra, "1" * 64)]
    return [(d.code, str(d.span)) for d in compile_sources(files, now=FIXED_NOW).diagnostics]


def test_budgets_that_would_apply_to_a_key_with_a_schema_error_are_not_reported_unreachable() -> None:
    assert diagnostics(BROKEN_KEY) == [
        ("GP102", "extra.yaml:6:5"),
        ("GP401", "extra.yaml:13:3"),
    ]


def test_a_principal_named_only_by_a_broken_key_still_exists() -> None:
    extra = BROKEN_KEY.replace("bob@x.com\n    team", "dave@x.com\n    team")
    extra += "  dave: {scope: principal, target: dave@x.com, window: day, limit_usd: 10}\n"
    assert ("GP402", "extra.yaml:15:38") not in diagnostics(extra)
    assert [code for code, _ in diagnostics(extra)] == ["GP102", "GP401", "GP401"]


def test_an_unknown_provider_type_is_not_also_missing_its_api_key() -> None:
    assert diagnostics("providers:\n  p2: {type: opneai}\n") == [("GP209", "extra.yaml:2:14")]


def test_a_known_type_without_a_key_is_still_reported() -> None:
    assert diagnostics("providers:\n  p2: {type: openai}\n") == [("GP506", "extra.yaml:2:3")]
