"""bedrock and vertex providers: what each needs to be reached and signed for, each missing or
literal setting reported at its line."""

from __future__ import annotations

from pathlib import Path

from compiler import compile_policy
from tests.conftest import FIXED_NOW

KEY = "vk-a: {key_sha256: " + "a" * 64 + ", models_allowed: [claude-haiku-4-5]}"


def diagnostics(tmp_path: Path, providers: str, model_ids: str = "") -> list[tuple[str, str, str]]:
    (tmp_path / "policy.yaml").write_text(f"""\
providers:
{providers}
models:
  claude-haiku-4-5: {{providers: [cloud], price: {{input: 1, output: 5}}}}
virtual_keys:
  {KEY}
""")
    result = compile_policy(tmp_path, now=FIXED_NOW)
    return [(d.code, str(d.span), d.message) for d in result.diagnostics]


def test_a_vertex_provider_needs_project_location_and_a_key_file(tmp_path: Path) -> None:
    found = diagnostics(tmp_path, "  cloud: {type: vertex}")
    assert sorted((code, message) for code, _, message in found) == [
        ("GP320", "vertex provider 'cloud' needs location"),
        ("GP320", "vertex provider 'cloud' needs project"),
        ("GP506", "vertex provider 'cloud' has no credentials"),
    ]


def test_a_literal_aws_secret_is_refused_at_its_line_without_being_quoted(tmp_path: Path) -> None:
    found = diagnostics(tmp_path, """\
  cloud:
    type: bedrock
    region: us-east-1
    aws_access_key_id: env:AWS_ACCESS_KEY_ID
    aws_secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
    model_ids: {claude-haiku-4-5: anthropic.claude-haiku-4-5-20251001-v1:0}""")
    assert [(code, where) for code, where, _ in found] == [("GP501", "policy.yaml:6:28")]
    assert "aws_secret_access_key looks like a literal key" in found[0][2]
    assert "wJalrXUtnFEMI" not in found[0][2]


def test_a_vertex_provider_with_an_api_key_is_told_it_signs_with_its_key_file(tmp_path: Path) -> None:
    found = diagnostics(tmp_path, """\
  cloud: {type: vertex, project: p, location: global, credentials: file:sa.json, api_key: env:KEY}""")
    assert [code for code, _, _ in found] == ["GP104"]
    assert "does not use api_key; it signs with credentials" in found[0][2]
