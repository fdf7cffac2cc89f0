"""Keys are names and enumerated values have one spelling: compile and `policy fmt` agree on
`model_aliases: {1: ...}` (both refuse it at the key), and `5XX` is refused like `Week`, each
with the spelling it meant."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from compiler import compile_sources
from policy.loader import SourceFile
from tests.conftest import FIXED_NOW

BASE = """\
providers:
  mock: {type: mock}
models:
  gpt-4o: {providers: [mock], price: {input: 2.50, output: 10.00}}
  gpt-5-mini: {providers: [mock], price: {input: 0.25, output: 2.00}}
virtual_keys:
  vk-demo:
    key_sha256: ad2bac2e8e3158a68bda0b891445ca8b55964004de7ab3430a69257381e24d25
    models_allowed: [gpt-4o, gpt-5-mini]
"""
ALIASES = "profiles:\n  p:\n    models_allowed: [gpt-4o]\n    model_aliases: {1: gpt-4o, true: gpt-5-mini}\n"


def diagnostics(extra: str) -> list[tuple[str, str, str]]:
    files = [SourceFile("policy.yaml", BASE, "0" * 64), SourceFile("extra.yaml", extra, "1" * 64)]
    result = compile_sources(files, now=FIXED_NOW)
    return [(d.code, str(d.span), d.hint or "") for d in result.diagnostics]


def test_keys_yaml_reads_as_a_number_or_a_boolean_are_refused_at_the_key() -> None:
    assert diagnostics(ALIASES) == [
        ("GP104", "extra.yaml:4:21", "quote it, '1': ..., so every YAML reader sees the same name"),
        ("GP104", "extra.yaml:4:32", "quote it, 'true': ..., so every YAML reader sees the same name"),
    ]


def test_fmt_reports_the_same_problems_and_leaves_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "policy.yaml").write_text(BASE)
    (tmp_path / "extra.yaml").write_text(ALIASES)
    assert main(["fmt", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "extra.yaml:4:21: error[GP104]: YAML reads the key `1` as a number" in err
    assert "extra.yaml:4:32: error[GP104]: YAML reads the key `true` as a boolean" in err
    assert (tmp_path / "extra.yaml").read_text() == ALIASES


def test_quoted_keys_and_the_yaml_1_1_words_are_names() -> None:
    text = "profiles:\n  p:\n    models_allowed: [gpt-4o]\n    model_aliases: {'1': gpt-4o, 'true': gpt-5-mini}\n" \
        "    fallback: {on: [5xx], chain: [mock]}\n"
    assert diagnostics(text) == []


@pytest.mark.parametrize(
    ("extra", "where", "hint"),
    [
        ("profiles: {p: {models_allowed: [gpt-4o], fallback: {on: [5XX], chain: [mock]}}}", "1:58", "'5xx'"),
        ("profiles: {p: {models_allowed: [gpt-4o], fallback: {on: [Timeout], chain: [mock]}}}", "1:58", "'timeout'"),
        ("budgets: {b: {scope: org, window: Week, limit_usd: 10}}", "1:35", "'week'"),
        ("budgets: {b: {scope: ORG, window: week, limit_usd: 10}}", "1:22", "'org'"),
        ("profiles: {p: {models_allowed: [gpt-4o], cache: {mode: DISABLE}}}", "1:56", "'disable'"),
        ("providers: {p2: {type: OpenAI, api_key: env:X}}", "1:24", "'openai'"),
    ],
)
def test_enumerated_values_are_case_sensitive_with_the_spelling_as_hint(extra: str, where: str, hint: str) -> None:
    found = diagnostics(extra + "\n")
    assert [(span, h) for _, span, h in found] == [(f"extra.yaml:{where}", f"did you mean {hint}?")]
