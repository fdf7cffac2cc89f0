"""Secrets a policy holds by mistake are masked in every output format, source lines included."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler import compile_policy, render_github, render_json, render_sarif, render_text
from compiler.pipeline import CompileResult
from compiler.redact import redact_line
from tests.conftest import EXAMPLES, FIXED_NOW

PROVIDER_KEY = "sk-proj-" + "FakeKeyForRedactionTests" + "0123456789abcdef"
"""Shaped like an OpenAI project key (48 characters) so the checks take it for one; made up."""
VK_KEY = "gp-Q2VvYJcN1x8aTqWm3Lr5ZsKd7Hf0Ue9BiPo4GjXnAy"

FORMATS: dict[str, Callable[[CompileResult], str]] = {
    "text": lambda r: render_text(r.diagnostics, r.sources),
    "json": lambda r: render_json(r.diagnostics),
    "github": lambda r: render_github(r.diagnostics),
    "sarif": lambda r: render_sarif(r.diagnostics),
}


def policy_with(tmp_path: Path, example: str, rel: str, old: str, new: str) -> Path:
    root = tmp_path / "policy"
    shutil.copytree(EXAMPLES / "broken" / example, root)
    (root / "EXPECTED").unlink()
    path = root / rel
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return root


@pytest.fixture
def literal_provider_key(tmp_path: Path) -> Path:
    return policy_with(tmp_path, "literal-api-key", "providers.yaml", "sk-Xq7fJ2mR9vLc4TnB8wKd1Z", PROVIDER_KEY)


@pytest.fixture
def pasted_vk_key(tmp_path: Path) -> Path:
    return policy_with(tmp_path, "key-sha256-truncated", "vks/alice.yaml", "350bee80...", VK_KEY)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_literal_provider_key_never_reaches_the_output(literal_provider_key: Path, fmt: str) -> None:
    result = compile_policy(literal_provider_key, now=FIXED_NOW)
    assert [d.code for d in result.diagnostics] == ["GP501"]
    out = FORMATS[fmt](result)
    assert PROVIDER_KEY not in out and PROVIDER_KEY[:12] not in out


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_vk_key_pasted_as_its_hash_never_reaches_the_output(pasted_vk_key: Path, fmt: str) -> None:
    result = compile_policy(pasted_vk_key, now=FIXED_NOW)
    assert [d.code for d in result.diagnostics] == ["GP502"]
    out = FORMATS[fmt](result)
    assert VK_KEY not in out and VK_KEY[:12] not in out


def test_the_source_line_shows_the_mask_under_its_caret(literal_provider_key: Path) -> None:
    result = compile_policy(literal_provider_key, now=FIXED_NOW)
    lines = render_text(result.diagnostics, result.sources).splitlines()
    assert lines[2] == "4 |     api_key: sk-p…(48 chars)"
    assert lines[3] == "  |              ^^^^^^^^^^^^^^^"


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_secret_another_diagnostic_quotes_is_masked_there_too(tmp_path: Path, fmt: str) -> None:
    root = policy_with(tmp_path, "literal-api-key", "providers.yaml", "    type: openai\n    api_key: sk-Xq7fJ2mR9vLc4TnB8wKd1Z",
                       f"    type: {PROVIDER_KEY}\n    api_key: env:OPENAI_API_KEY")
    result = compile_policy(root, now=FIXED_NOW)
    assert {d.code for d in result.diagnostics} >= {"GP209", "GP501"}
    out = FORMATS[fmt](result)
    assert PROVIDER_KEY not in out
    assert "(48 chars)" in out


def test_a_caret_after_a_masked_value_moves_with_it() -> None:
    line = f"  openai: {{api_key: {PROVIDER_KEY}, type: opneai}}"
    redacted = redact_line(line, {PROVIDER_KEY})
    assert redacted.text == "  openai: {api_key: sk-p…(48 chars), type: opneai}"
    col = line.index("opneai") + 1
    start, end = redacted.column(col), redacted.column(col + len("opneai"), end=True)
    assert redacted.text[start - 1 : end - 1] == "opneai"


def test_git_history_is_mentioned_only_inside_a_git_repository(literal_provider_key: Path) -> None:
    outside = compile_policy(literal_provider_key, now=FIXED_NOW).diagnostics[0].hint or ""
    assert "git history" not in outside
    subprocess.run(["git", "init", "-q"], cwd=literal_provider_key, check=True)
    inside = compile_policy(literal_provider_key, now=FIXED_NOW).diagnostics[0].hint or ""
    assert "rotate the key, it is in git history now" in inside


def test_json_never_carries_the_secret_field(pasted_vk_key: Path) -> None:
    data = json.loads(render_json(compile_policy(pasted_vk_key, now=FIXED_NOW).diagnostics))
    assert "secret" not in data["diagnostics"][0]


def test_a_short_literal_key_is_masked_and_a_variable_name_is_shown(tmp_path: Path) -> None:
    literal = policy_with(tmp_path / "literal", "literal-api-key", "providers.yaml", "sk-Xq7fJ2mR9vLc4TnB8wKd1Z",
                          "hunter2-hunter2")
    result = compile_policy(literal, now=FIXED_NOW)
    assert [d.code for d in result.diagnostics] == ["GP505"]
    assert "hunter2" not in render_text(result.diagnostics, result.sources)
    named = policy_with(tmp_path / "named", "literal-api-key", "providers.yaml", "sk-Xq7fJ2mR9vLc4TnB8wKd1Z",
                        "OPENAI_API_KEY")
    result = compile_policy(named, now=FIXED_NOW)
    assert "api_key: OPENAI_API_KEY" in render_text(result.diagnostics, result.sources)


@pytest.mark.parametrize("fmt", ["text", "json", "github", "sarif"])
def test_a_secret_on_a_line_that_does_not_parse_is_masked(tmp_path: Path, fmt: str) -> None:
    """The file never becomes data, so no check finds the key; its syntax error still quotes the line."""
    key = PROVIDER_KEY
    (tmp_path / "providers.yaml").write_text(f"providers:\n  p:\n    type: openai\n    api_key: {key}: x: y\n")
    result = compile_policy(tmp_path, now=FIXED_NOW)
    assert [d.code for d in result.diagnostics] == ["GP002"]
    rendered = {"text": render_text(result.diagnostics, result.sources),
                "json": json.dumps(render_json(result.diagnostics)),
                "github": render_github(result.diagnostics),
                "sarif": json.dumps(render_sarif(result.diagnostics))}[fmt]
    assert key not in rendered
    if fmt == "text":
        assert "api_key: sk-p…(48 chars): x: y" in rendered
