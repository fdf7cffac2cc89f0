"""Every numeric field has a range: a value outside it (huge, infinite, not a number, finer than
the artifact holds) is a located GP104, exit 1, never a traceback; the largest values of every
range compile and encode."""

from __future__ import annotations

from pathlib import Path

import pytest

from artifact import canonical_json
from cli.main import main
from compiler import compile_policy
from compiler.checks.budgets import LEDGER_CEILING_USD
from policy.models import MAX_BODY_BYTES, MAX_PRICE_USD
from runtime.budget.cost import BYTES_PER_TOKEN_FLOOR, OUTPUT_TOKENS_CEILING

BASE = """\
providers:
  mock: {type: mock}
models:
  gpt-4o: {providers: [mock], price: {input: 2.50, output: 10.00}}
virtual_keys:
  vk-demo:
    key_sha256: ad2bac2e8e3158a68bda0b891445ca8b55964004de7ab3430a69257381e24d25
    principal: demo@example.com
    models_allowed: [gpt-4o]
"""

YAML_CASES = {
    "body bytes past 64 bits": ("gateway: {max_body_bytes: 99999999999999999999}", "1:27"),
    "answer limit below 64 KiB": ("gateway: {max_answer_bytes: 1024}", "1:29"),
    "event limit past 1 GiB": ("gateway: {max_event_bytes: 1073741825}", "1:28"),
    "deadline of 3 billion years": ("gateway: {client_deadline_s: 100000000000000000}", "1:30"),
    "deadline of 1e400": ("gateway: {client_deadline_s: 1.0e+400}", "1:30"),
    "header timeout of a year": ("gateway: {header_timeout_s: 31536000}", "1:29"),
    "headers of 2 MiB": ("gateway: {max_header_bytes: 2097152}", "1:29"),
    "no headers at all": ("gateway: {max_headers: 0}", "1:24"),
    "a billion connections": ("gateway: {max_connections: 1000000000}", "1:28"),
    "no request in flight": ("gateway: {max_in_flight: 0}", "1:26"),
    "total timeout": ("providers: {p2: {type: mock, timeouts: {total_s: 100000000000000000}}}", "1:50"),
    "connect timeout below a millisecond": ("providers: {p2: {type: mock, timeouts: {connect_s: 0.0001}}}", "1:52"),
    "credential weight 0": ("providers: {p2: {type: openai, api_keys: [{api_key: env:K, weight: 0}]}}", "1:68"),
    "credential weight past 1,000": ("providers: {p2: {type: openai, api_keys: [{api_key: env:K, weight: 1001}]}}",
                                     "1:68"),
    "circuit failures": ("gateway: {circuit: {failures: 100000000000000000000}}", "1:31"),
    "price past the ledger": ("models: {m2: {providers: [mock], price: {input: 100000000000000, output: 1}}}", "1:49"),
    "price of 1e300": ("models: {m2: {providers: [mock], price: {input: 1.0e+300, output: 1}}}", "1:49"),
    "infinite price": ("models: {m2: {providers: [mock], price: {input: 1, output: .inf}}}", "1:60"),
    "limit of 1e23": ("budgets: {b: {scope: org, window: day, limit_usd: 100000000000000000000000}}", "1:51"),
    "retries": ("profiles: {p: {fallback: {on: [5xx], chain: [mock], retries: 10000000000000000000000}}}", "1:62"),
}

DSL_CASES = {
    "limit of 1e999": ("budget b {\n  scope = org\n  window = day\n  limit_usd = 1e999\n}\n", "4:15"),
    "limit of -inf": ("budget b {\n  scope = org\n  window = day\n  limit_usd = -inf\n}\n", "4:15"),
    "timeout of 1e400": ("provider p2 {\n  type = mock\n  timeouts = {total_s: 1.0e+400}\n}\n", "3:24"),
    "cool-down of nan": ("provider p2 {\n  type = mock\n  circuit = {cooldown_s: nan}\n}\n", "3:26"),
}


def repo(tmp_path: Path, name: str, text: str) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "policy.yaml").write_text(BASE)
    (root / name).write_text(text)
    return root


@pytest.mark.parametrize("case", sorted(YAML_CASES))
def test_an_out_of_range_number_in_yaml_is_a_located_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    text, where = YAML_CASES[case]
    root = repo(tmp_path, "extra.yaml", text + "\n")
    assert main(["compile", str(root), "--check"]) == 1
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert f"extra.yaml:{where}: error[GP104]" in out, out
    assert "Traceback" not in out


@pytest.mark.parametrize("case", sorted(DSL_CASES))
def test_an_out_of_range_number_in_the_dsl_is_a_located_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    text, where = DSL_CASES[case]
    root = repo(tmp_path, "extra.gp", text)
    assert main(["compile", str(root), "--check"]) == 1
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert f"extra.gp:{where}: error[GP104]" in out, out


def test_the_largest_value_of_every_range_compiles_and_encodes(tmp_path: Path) -> None:
    largest = """\
gateway:
  client_deadline_s: 86400
  max_body_bytes: 67108864
  max_answer_bytes: 1073741824
  max_event_bytes: 1073741824
  header_timeout_s: 86400
  body_timeout_s: 86400
  idle_timeout_s: 86400
  max_header_bytes: 1048576
  max_headers: 10000
  max_connections: 1000000
  max_in_flight: 1000000
  circuit: {failures: 1000, cooldown_s: 3600}
providers:
  slow: {type: mock, timeouts: {connect_s: 86400, read_s: 86400, total_s: 86400}}
models:
  dear: {providers: [slow], price: {input: 5000, cached_input: 5000, output: 5000, reasoning: 5000}}
profiles:
  patient: {models_allowed: [dear], fallback: {on: [5xx], chain: [mock], retries: 10}}
budgets:
  most: {scope: org, window: total, limit_usd: 900000, on_breach: {warn: 999.99%, block: 1000%}}
"""
    root = repo(tmp_path, "largest.yaml", largest)
    result = compile_policy(root)
    assert not result.errors, [str(d) for d in result.errors]
    assert result.artifact is not None
    table = result.artifact.table
    assert table.models["dear"].price is not None and table.models["dear"].price.input == 5_000_000_000
    assert table.gateway.client_deadline_ms == 86_400_000
    assert len(canonical_json(table)) > 0


@pytest.mark.parametrize(("threshold", "where"), [("block: 0.004%", "1:74"), ("warn: 80.555%", "1:73")])
def test_a_threshold_finer_than_a_basis_point_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], threshold: str, where: str
) -> None:
    budget = f"budgets: {{b: {{scope: org, window: day, limit_usd: 10, on_breach: {{{threshold}}}}}}}\n"
    root = repo(tmp_path, "extra.yaml", budget)
    assert main(["compile", str(root), "--check"]) == 1
    out = capsys.readouterr().err
    assert f"extra.yaml:{where}: error[GP104]" in out and "finer than a basis point" in out, out


def test_a_threshold_of_two_decimals_is_kept_exactly(tmp_path: Path) -> None:
    budget = "budgets: {b: {scope: org, window: day, limit_usd: 10, on_breach: {warn: 80.25%, block: 99.5%}}}\n"
    result = compile_policy(repo(tmp_path, "extra.yaml", budget))
    assert result.artifact is not None, [str(d) for d in result.diagnostics]
    spec = result.artifact.table.budgets["b"]
    assert (spec.warn_bp, spec.block_bp) == (8025, 9950)


def test_the_dearest_largest_request_cannot_overflow_a_ledger_counter() -> None:
    """Admission lets spend plus reservations reach the block threshold and then adds one estimate."""
    most_tokens = MAX_BODY_BYTES // BYTES_PER_TOKEN_FLOOR + OUTPUT_TOKENS_CEILING
    dearest_estimate_pico = most_tokens * MAX_PRICE_USD * 10**6
    assert int(LEDGER_CEILING_USD) * 10**12 + dearest_estimate_pico < 2**63
