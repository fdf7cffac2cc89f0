"""Streams on every surface: a failure after the first byte ends the stream with one clean error
event in the surface's format (never glued to half an event), a stream that stops before its
final event is an error too, and a failure before the first event still falls back."""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from runtime.access_log import AccessLog
from tests.support.apps import app_from
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e
KEY = "gp-e2e-streams-0123456789abcdefghijklmn"


def policy(upstream: str) -> str:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    return f"""\
gateway: {{header_prefix: X-LangWatch-}}
providers:
  openai-a: {{type: openai, base_url: "{upstream}/v1", api_key: env:E2E_KEY}}
  openai-b: {{type: openai, base_url: "{upstream}/v1", api_key: env:E2E_KEY}}
  openai-slow:
    type: openai
    base_url: "{upstream}/v1"
    api_key: env:E2E_KEY
    timeouts: {{connect_s: 1, read_s: 1, total_s: 1}}
  anthropic-a: {{type: anthropic, base_url: "{upstream}", api_key: env:E2E_KEY}}
  anthropic-b: {{type: anthropic, base_url: "{upstream}", api_key: env:E2E_KEY}}
  gemini-a: {{type: gemini, base_url: "{upstream}", api_key: env:E2E_KEY}}
  gemini-b: {{type: gemini, base_url: "{upstream}", api_key: env:E2E_KEY}}
models:
  gpt-4o: {{providers: [openai-a, openai-b]}}
  o3: {{providers: [openai-slow]}}
  claude: {{providers: [anthropic-a, anthropic-b]}}
  gemini-2.5-flash: {{providers: [gemini-a, gemini-b]}}
virtual_keys:
  vk-streams:
    key_sha256: {digest}
    models_allowed: [gpt-4o, o3, claude, gemini-2.5-flash]
    fallback: {{on: [5xx, timeout, 429, connect], chain: [openai-b, anthropic-b, gemini-b]}}
"""


@dataclass(frozen=True)
class Case:
    path: str
    body: dict[str, Any]
    backup: str
    is_error: Callable[[str | None, Any], bool]
    is_final: Callable[[str | None, Any], bool]


def _openai_error(name: str | None, data: Any) -> bool:
    return isinstance(data, dict) and data.get("error", {}).get("code") == "provider_error"


def _typed_error(name: str | None, data: Any) -> bool:
    return name == "error" and isinstance(data, dict) and data.get("type") == "error"


def _gemini_error(name: str | None, data: Any) -> bool:
    return isinstance(data, dict) and data.get("error", {}).get("details", [{}])[0].get("reason") == "provider_error"


def _gemini_final(name: str | None, data: Any) -> bool:
    return isinstance(data, dict) and bool(data.get("candidates", [{}])[0].get("finishReason"))


USER = [{"role": "user", "content": "hi"}]
CASES = {
    "chat": Case("/v1/chat/completions", {"model": "gpt-4o", "stream": True, "messages": USER}, "openai-b",
                 _openai_error, lambda name, data: data == "[DONE]"),
    "responses": Case("/v1/responses", {"model": "gpt-4o", "stream": True, "input": "hi"}, "openai-b",
                      _typed_error, lambda name, data: name == "response.completed"),
    "messages": Case("/v1/messages", {"model": "claude", "max_tokens": 64, "stream": True, "messages": USER},
                     "anthropic-b", _typed_error, lambda name, data: name == "message_stop"),
    "gemini": Case("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                   {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, "gemini-b", _gemini_error, _gemini_final),
}


@dataclass
class Setup:
    base_url: str
    upstream: MockUpstream
    log: io.StringIO
    server: ServerThread

    def post(self, case: Case, stream: bool = True) -> httpx.Response:
        body = case.body if stream else {k: v for k, v in case.body.items() if k != "stream"}
        path = case.path if stream else case.path.replace(":streamGenerateContent?alt=sse", ":generateContent")
        return httpx.post(self.base_url + path, json=body, headers={"x-api-key": KEY, "x-goog-api-key": KEY}, timeout=20)

    def records(self) -> list[dict[str, Any]]:
        self.server.wait_idle()
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line.startswith("{")]


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    monkeypatch.setenv("E2E_KEY", "upstream-credential")
    log = io.StringIO()
    with MockUpstream() as upstream:
        (tmp_path / "policy.yaml").write_text(policy(upstream.base_url))
        with ServerThread(app_from(tmp_path, access_log=AccessLog(log))) as server:
            yield Setup(server.base_url, upstream, log, server)


def events(text: str) -> list[tuple[str | None, Any]]:
    """Every event of an SSE body, strictly: each must carry data that parses."""
    parsed = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name = None
        data = []
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        assert data, f"an event without data: {block!r}"
        joined = "\n".join(data)
        parsed.append((name, joined if joined == "[DONE]" else json.loads(joined)))
    return parsed


@pytest.mark.parametrize("surface", CASES)
def test_a_stream_cut_mid_event_ends_with_one_clean_error_event(setup: Setup, surface: str) -> None:
    case = CASES[surface]
    setup.upstream.fail(die_after=3, mid_event=True, times=1)
    r = setup.post(case)
    assert r.status_code == 200
    relayed = events(r.text)
    *answer, last = relayed
    assert case.is_error(*last) and not any(case.is_error(*e) for e in answer)
    assert not any(case.is_final(*e) for e in relayed)
    assert setup.records()[-1]["stream_error"] == "connect"


@pytest.mark.parametrize("surface", CASES)
def test_a_stream_that_stops_before_its_final_event_ends_with_an_error(setup: Setup, surface: str) -> None:
    case = CASES[surface]
    setup.upstream.fail(end_after=3, times=1)
    r = setup.post(case)
    assert r.status_code == 200
    relayed = events(r.text)
    assert case.is_error(*relayed[-1]) and not any(case.is_final(*e) for e in relayed)
    record = setup.records()[-1]
    assert record["stream_error"] == "cut_short" and record["status"] == 200


@pytest.mark.parametrize("surface", CASES)
def test_a_complete_stream_is_relayed_untouched(setup: Setup, surface: str) -> None:
    case = CASES[surface]
    r = setup.post(case)
    relayed = events(r.text)
    assert case.is_final(*relayed[-1]) or (surface == "chat" and relayed[-1][1] == "[DONE]")
    assert not any(case.is_error(*e) for e in relayed) and "stream_error" not in setup.records()[-1]


@pytest.mark.parametrize("surface", CASES)
def test_a_stream_that_dies_before_its_first_event_falls_back(setup: Setup, surface: str) -> None:
    case = CASES[surface]
    setup.upstream.fail(die_after=0, times=1)
    r = setup.post(case)
    assert r.status_code == 200
    assert r.headers["x-langwatch-provider"] == case.backup and r.headers["x-langwatch-fallback-count"] == "1"
    relayed = events(r.text)
    assert case.is_final(*relayed[-1]) and not any(case.is_error(*e) for e in relayed)
    record = setup.records()[-1]
    assert record["attempts"][0]["reason"] == "connect" and "stream_error" not in record


@pytest.mark.parametrize("surface", CASES)
def test_a_body_cut_short_falls_back(setup: Setup, surface: str) -> None:
    case = CASES[surface]
    setup.upstream.fail(die_after=1, times=1)
    r = setup.post(case, stream=False)
    assert r.status_code == 200 and r.json()
    assert r.headers["x-langwatch-provider"] == case.backup and r.headers["x-langwatch-fallback-count"] == "1"


def test_sdks_raise_on_a_cut_stream_instead_of_returning_a_partial_answer(setup: Setup) -> None:
    setup.upstream.fail(die_after=3, mid_event=True, times=1)
    chat = openai.OpenAI(base_url=setup.base_url + "/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.APIError, match="upstream stream failed"):
        for _ in chat.chat.completions.create(model="gpt-4o", messages=USER, stream=True):  # type: ignore[arg-type]
            pass
    setup.upstream.fail(end_after=3, times=1)
    messages = anthropic.Anthropic(base_url=setup.base_url, api_key=KEY, max_retries=0)
    with pytest.raises(anthropic.APIStatusError, match="upstream stream failed"):
        with messages.messages.stream(model="claude", max_tokens=64, messages=USER) as stream:  # type: ignore[arg-type]
            stream.get_final_message()


def test_total_s_bounds_the_whole_stream_not_only_its_headers(setup: Setup) -> None:
    setup.upstream.fail(pace_s=0.3, times=1)
    started = time.monotonic()
    r = setup.post(Case("/v1/chat/completions", {"model": "o3", "stream": True, "messages": USER}, "", _openai_error,
                        lambda name, data: data == "[DONE]"))
    assert time.monotonic() - started < 2.0
    relayed = events(r.text)
    assert _openai_error(*relayed[-1]) and "timeout" in relayed[-1][1]["error"]["message"]
    assert setup.records()[-1]["stream_error"] == "timeout"


@pytest.mark.parametrize("surface", ["chat", "responses"])
def test_a_translated_stream_that_stops_early_is_not_completed_by_the_translator(setup: Setup, surface: str) -> None:
    case = CASES[surface]
    setup.upstream.fail(end_after=4, times=1)
    r = setup.post(Case(case.path, {**case.body, "model": "claude", "max_tokens": 64}, "", case.is_error, case.is_final))
    assert r.headers["x-langwatch-provider"] == "anthropic-a; translated-from=anthropic"
    relayed = events(r.text)
    assert case.is_error(*relayed[-1]) and not any(case.is_final(*e) for e in relayed)
    assert setup.records()[-1]["stream_error"] == "cut_short"


def test_an_event_the_proxy_cannot_translate_ends_the_stream_in_band_and_is_counted(setup: Setup) -> None:
    setup.upstream.fail(junk_after=3, path_contains="messages", times=1)
    r = setup.post(Case("/v1/chat/completions", {"model": "claude", "stream": True, "max_tokens": 64, "messages": USER},
                        "", _openai_error, lambda n, d: d == "[DONE]"))
    assert r.status_code == 200
    relayed = events(r.text)
    assert _openai_error(*relayed[-1]) and not any(d == "[DONE]" for _, d in relayed)
    setup.server.wait_idle()
    [line] = [json.loads(ln) for ln in setup.log.getvalue().splitlines()]
    assert line["stream_error"] == "untranslatable_event" and line["internal_error"] in ("TypeError", "AttributeError")
    metrics = httpx.get(setup.base_url + "/metrics").text
    assert 'gatepost_stream_errors_total{provider="anthropic-a",reason="untranslatable_event"} 1' in metrics


def test_a_stream_failure_after_the_first_event_counts_against_the_circuit(setup: Setup) -> None:
    setup.upstream.fail(die_after=3, times=1)
    r = setup.post(CASES["chat"])
    assert r.status_code == 200 and _openai_error(*events(r.text)[-1])
    metrics = httpx.get(setup.base_url + "/metrics").text
    [counted] = [ln for ln in metrics.splitlines() if ln.startswith("gatepost_stream_errors_total{")]
    assert counted == 'gatepost_stream_errors_total{provider="openai-a",reason="connect"} 1'
