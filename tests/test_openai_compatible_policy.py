"""`type: openai_compatible` through the language and its tools: it compiles without a key,
reads the same in the DSL, formats unchanged, and `policy explain` shows its targets as Chat
Completions only (and the Responses surface refused)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from artifact import canonical_json
from compiler import compile_policy
from runtime.decision import Allow, decide_for_key
from runtime.explain import explain
from tests.conftest import FIXED_NOW, ROOT
from tests.support.apps import app_from

DIGEST = hashlib.sha256(b"gp-local-key").hexdigest()
YAML = f"""\
providers:
  local-vllm:
    type: openai_compatible
    base_url: http://gpu-box:8000/v1
  openai-primary:
    type: openai
    api_key: env:OPENAI_API_KEY
models:
  llama-3.1-8b:
    providers: [local-vllm]
    price: {{input: 0, output: 0}}
  gpt-4o:
    providers: [openai-primary, local-vllm]
virtual_keys:
  vk-local:
    key_sha256: {DIGEST}
    models_allowed: [llama-3.1-8b, gpt-4o]
    fallback: {{on: [5xx], chain: [local-vllm]}}
"""
DSL = f"""\
provider local-vllm {{ type = openai_compatible; base_url = "http://gpu-box:8000/v1" }}
provider openai-primary {{ type = openai; api_key = env:OPENAI_API_KEY }}
model llama-3.1-8b {{ providers = [local-vllm]; price = {{input: 0, output: 0}} }}
model gpt-4o {{ providers = [openai-primary, local-vllm] }}
virtual_key vk-local {{ key_sha256 = {DIGEST}; models_allowed = [llama-3.1-8b, gpt-4o]
  fallback = {{on: [5xx], chain: [local-vllm]}} }}
"""


def repo(tmp_path: Path, name: str, text: str) -> Path:
    root = tmp_path / name.replace(".", "-")
    root.mkdir()
    (root / name).write_text(text)
    return root


def test_a_keyless_provider_compiles_without_a_diagnostic(tmp_path: Path) -> None:
    result = compile_policy(repo(tmp_path, "policy.yaml", YAML), now=FIXED_NOW)
    assert result.artifact is not None and result.diagnostics == []
    provider = result.artifact.table.providers["local-vllm"]
    assert (provider.type, provider.protocol, provider.api_key) == ("openai_compatible", "openai", None)


def test_the_dsl_gives_the_same_table(tmp_path: Path) -> None:
    from_yaml = compile_policy(repo(tmp_path, "policy.yaml", YAML), now=FIXED_NOW).artifact
    from_dsl = compile_policy(repo(tmp_path, "policy.gp", DSL), now=FIXED_NOW).artifact
    assert from_yaml is not None and from_dsl is not None
    assert canonical_json(from_dsl.table) == canonical_json(from_yaml.table)


def test_fmt_leaves_it_as_written(tmp_path: Path) -> None:
    root = repo(tmp_path, "policy.yaml", YAML)
    run = subprocess.run([sys.executable, "-m", "cli.main", "fmt", "--check", str(root)], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_explain_marks_chat_only_targets_and_every_surface_reaches_them_translated(tmp_path: Path) -> None:
    table = app_from(repo(tmp_path, "policy.yaml", YAML)).serving.table
    key = table.keys["vk-local"]
    chat = explain(table, key, "gpt-4o", "chat", FIXED_NOW)
    assert "  2. local-vllm / gpt-4o, chat only" in [text for text, _ in chat.steps]
    assert [t["wire"] for t in chat.to_json(table)["targets"]] == [None, "chat"]
    responses = explain(table, key, "gpt-4o", "responses", FIXED_NOW)
    assert "  2. local-vllm / gpt-4o, chat only, translated responses <-> chat" in [t for t, _ in responses.steps]
    assert [t["translated"] for t in responses.to_json(table)["targets"]] == [False, True]
    both = decide_for_key(key, "responses", "gpt-4o")
    assert isinstance(both, Allow) and [t.provider for t in both.targets] == ["openai-primary", "local-vllm"]
    only = decide_for_key(key, "responses", "llama-3.1-8b")
    assert isinstance(only, Allow) and only.targets[0].wire == "chat"
    messages = decide_for_key(key, "messages", "llama-3.1-8b")
    assert isinstance(messages, Allow) and messages.targets[0].wire == "chat"
