"""A budget's timezone is an IANA zone name: never one that depends on the host's configuration."""

from __future__ import annotations

import pytest

from compiler import compile_sources
from policy.loader import SourceFile
from tests.conftest import FIXED_NOW

POLICY = """\
providers:
  mock: {type: mock}
models:
  gpt-4o: {providers: [mock], price: {input: 2.50, output: 10.00}}
virtual_keys:
  vk-demo:
    key_sha256: ad2bac2e8e3158a68bda0b891445ca8b55964004de7ab3430a69257381e24d25
    models_allowed: [gpt-4o]
budgets:
  daily: {scope: org, window: day, limit_usd: 10, timezone: %s}
"""


def diagnostics(zone: str) -> list[tuple[str, str, str]]:
    result = compile_sources([SourceFile("policy.yaml", POLICY % zone, "0" * 64)], now=FIXED_NOW)
    return [(d.code, str(d.span), d.hint or "") for d in result.diagnostics]


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "Factory", "posix/UTC", "right/UTC"])
def test_host_dependent_zone_names_are_refused(zone: str) -> None:
    assert [(code, where) for code, where, _ in diagnostics(zone)] == [("GP406", "policy.yaml:10:61")]


def test_a_zone_in_the_wrong_case_gets_its_spelling() -> None:
    assert diagnostics("europe/amsterdam") == [
        ("GP406", "policy.yaml:10:61", "did you mean 'Europe/Amsterdam'?")
    ]


@pytest.mark.parametrize("zone", ["UTC", "Europe/Amsterdam", "America/New_York", "Etc/GMT+5"])
def test_iana_zones_are_accepted(zone: str) -> None:
    assert diagnostics(zone) == []
