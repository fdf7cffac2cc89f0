"""The google-genai SDK against the native Gemini surface: what it reads of a whole answer, a
stream, a tool call round trip and a token count, held in a golden file (a syrupy snapshot)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from tests.support.apps import app_from
from tests.support.genai_transcript import transcript
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e
KEY = "gp-e2e-genai-golden-0123456789abcdefghijk"


def test_google_genai_reads_the_native_gemini_surface_as_the_golden_file_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, snapshot: SnapshotAssertion
) -> None:
    monkeypatch.setenv("E2E_GEMINI_KEY", "gemini-upstream-credential")
    with MockUpstream() as upstream:
        (tmp_path / "policy.yaml").write_text(f"""\
providers:
  gemini-main: {{type: gemini, base_url: "{upstream.base_url}", api_key: env:E2E_GEMINI_KEY}}
models:
  gemini-2.5-flash: {{providers: [gemini-main]}}
virtual_keys:
  vk-genai: {{key_sha256: {hashlib.sha256(KEY.encode()).hexdigest()}, models_allowed: [gemini-2.5-flash]}}
""")
        with ServerThread(app_from(tmp_path)) as server:
            assert transcript(server.base_url, KEY, "gemini-2.5-flash", upstream) == snapshot
            sent = [(r.path.rsplit(":", 1)[-1], r.query) for r in upstream.requests]
            tool_result = upstream.requests[3].json["contents"][-1]["parts"][0]["functionResponse"]
    assert sent == [("generateContent", {}), ("streamGenerateContent", {"alt": "sse"}), ("generateContent", {}),
                    ("generateContent", {}), ("countTokens", {})]
    assert tool_result == {"name": "get_weather", "response": {"forecast": "rain"}}
