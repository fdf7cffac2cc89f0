"""The real Codex CLI through the proxy: "set the two env vars and go"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import ALICE_KEY, PLATFORM_KEY, UPSTREAM_AZURE_SECRET, Stack
from tests.support.codex import run_codex

pytestmark = pytest.mark.e2e


def test_codex_exec_completes_through_the_proxy(stack: Stack, tmp_path: Path) -> None:
    run = run_codex(stack.base_url, ALICE_KEY, "gpt-4o", "say hi", tmp_path)
    assert run.returncode == 0, run.stderr
    assert "mock reply from gpt-4o" in run.stdout
    [seen] = stack.upstream.requests
    assert seen.path == "/v1/responses" and seen.json["stream"] is True
    sent = stack.upstream.requests[0].json
    assert sent["model"] == "gpt-4o" and sent["input"][0]["role"] == "developer"
    assert ALICE_KEY not in repr(seen.headers)


def test_codex_alias_lands_on_azure(stack: Stack, tmp_path: Path) -> None:
    run = run_codex(stack.base_url, PLATFORM_KEY, "gpt-4o", "say hi", tmp_path)
    assert run.returncode == 0, run.stderr
    assert "mock reply from gpt4o-prod" in run.stdout
    [seen] = stack.upstream.requests
    assert seen.path == "/openai/v1/responses"
    assert seen.headers["api-key"] == UPSTREAM_AZURE_SECRET and "authorization" not in seen.headers


def test_codex_off_list_model_fails_with_our_403(stack: Stack, tmp_path: Path) -> None:
    run = run_codex(stack.base_url, ALICE_KEY, "o3", "say hi", tmp_path)
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert "403" in output
    assert "model 'o3' is not allowed for virtual key vk-alice-codex" in output
    assert "extend its models_allowed (policy.yaml:" in output and "or use an alias" in output
    assert stack.upstream.requests == []


def test_codex_accepts_the_captured_provider_stream_relayed_by_the_proxy(stack: Stack, tmp_path: Path) -> None:
    """The answer Codex 0.169.0 accepted when it was captured (tests/fixtures), replayed upstream."""
    stack.upstream.fail(replay="codex-responses-stream.sse", path_contains="responses", times=1)
    run = run_codex(stack.base_url, ALICE_KEY, "gpt-4o", "say ping", tmp_path)
    assert run.returncode == 0, run.stderr
    assert "pong from mock upstream" in run.stdout
