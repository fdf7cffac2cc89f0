from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.apps import app_from
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream

ALICE_KEY = "gp-e2e-alice-0123456789abcdefghijklmnop"
PLATFORM_KEY = "gp-e2e-platform-0123456789abcdefghijklm"
REVOKED_KEY = "gp-e2e-revoked-0123456789abcdefghijklmn"
UPSTREAM_OPENAI_SECRET = "upstream-openai-credential-for-tests"
UPSTREAM_AZURE_SECRET = "upstream-azure-credential-for-tests"


def vk(key: str) -> str:
    return f"key_sha256: {hashlib.sha256(key.encode()).hexdigest()}\n    key_prefix: {key[:12]}"


def policy_text(upstream: str, revoked_status: str = "revoked") -> str:
    return f"""\
gateway:
  header_prefix: X-LangWatch-
  max_body_bytes: 65536
providers:
  openai-primary:
    type: openai
    base_url: {upstream}/v1
    api_key: env:E2E_OPENAI_KEY
  azure-east:
    type: azure_openai
    base_url: {upstream}
    api_version: "2024-10-21"
    api_key: env:E2E_AZURE_KEY
    deployments: {{gpt-4o: gpt4o-prod}}
models:
  gpt-4o: {{providers: [openai-primary, azure-east], price: {{input: 2.50, cached_input: 1.25, output: 10.00}}}}
  gpt-5-mini: {{providers: [openai-primary], price: {{input: 0.25, output: 2.00}}}}
  o3: {{providers: [openai-primary], price: {{input: 2.00, output: 8.00}}}}
profiles:
  codex-default:
    models_allowed: [gpt-5-mini, gpt-4o]
    fallback: {{on: [5xx, timeout, 429], chain: [openai-primary]}}
    cache: {{mode: respect}}
virtual_keys:
  vk-alice-codex:
    {vk(ALICE_KEY)}
    principal: alice@acme.com
    extends: codex-default
  vk-platform-shared:
    {vk(PLATFORM_KEY)}
    extends: codex-default
    model_aliases: {{gpt-4o: azure-east/gpt-4o}}
  vk-gone:
    {vk(REVOKED_KEY)}
    extends: codex-default
    status: {revoked_status}
"""


@dataclass
class Stack:
    upstream: MockUpstream
    proxy: ServerThread
    policy_dir: Path
    app: object

    @property
    def base_url(self) -> str:
        return self.proxy.base_url + "/v1"


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("E2E_OPENAI_KEY", UPSTREAM_OPENAI_SECRET)
    monkeypatch.setenv("E2E_AZURE_KEY", UPSTREAM_AZURE_SECRET)
    with MockUpstream() as upstream:
        policy_dir = tmp_path / "policy"
        policy_dir.mkdir()
        (policy_dir / "policy.yaml").write_text(policy_text(upstream.base_url))
        app = app_from(policy_dir)
        with ServerThread(app) as proxy:
            yield Stack(upstream, proxy, policy_dir, app)
