"""Each upstream fault of issue 14 against a fault-injecting upstream on loopback: answers and
events past the gateway's size limits, streams whose upstream holds or drops the connection after
the final event, providers echoing the gateway's credential, 200s that are not their protocol's,
and a route that stops falling back on a condition it does not list."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.access_log import AccessLog
from runtime.ledger.sqlite import SqliteLedger
from tests.support.apps import app_from
from tests.support.ledger_charges import recorded_charges
from tests.support.proxy_process import ProxyProcess
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e
KEY = "gp-e2e-faults-0123456789abcdefghijklmnop"
SINGLE_KEY = "gp-e2e-single-0123456789abcdefghijklmno"
TIMEOUT_ONLY_KEY = "gp-e2e-timeout-only-0123456789abcdefghij"
OPENAI_SECRET = "upstream-openai-credential-for-fault-tests"
ANTHROPIC_SECRET = "upstream-anthropic-credential-for-fault-tests"
GEMINI_SECRET = "upstream-gemini-credential-for-fault-tests"
SECRETS = (OPENAI_SECRET, ANTHROPIC_SECRET, GEMINI_SECRET)
MIB = 1024 * 1024


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def policy(upstream: str, gateway: str = "{header_prefix: X-LangWatch-, max_answer_bytes: 65536, max_event_bytes: 65536}") -> str:
    return f"""\
gateway: {gateway}
providers:
  openai-a: {{type: openai, base_url: "{upstream}/v1", api_key: env:E2E_OPENAI_KEY}}
  openai-b: {{type: openai, base_url: "{upstream}/v1", api_key: env:E2E_OPENAI_KEY}}
  anthropic-a: {{type: anthropic, base_url: "{upstream}", api_key: env:E2E_ANTHROPIC_KEY}}
  gemini-a: {{type: gemini, base_url: "{upstream}", api_key: env:E2E_GEMINI_KEY}}
models:
  gpt-4o: {{providers: [openai-a, openai-b], price: {{input: 2.50, output: 10.00}}}}
  claude: {{providers: [anthropic-a], price: {{input: 1.00, output: 5.00}}}}
  gemini-2.5-flash: {{providers: [gemini-a], price: {{input: 0.30, output: 2.50}}}}
virtual_keys:
  vk-faults:
    key_sha256: {digest(KEY)}
    models_allowed: [gpt-4o, claude, gemini-2.5-flash]
    fallback: {{on: [5xx, timeout, 429, connect], chain: [openai-b]}}
  vk-single:
    key_sha256: {digest(SINGLE_KEY)}
    models_allowed: [gpt-4o]
  vk-timeout-only:
    key_sha256: {digest(TIMEOUT_ONLY_KEY)}
    models_allowed: [gpt-4o]
    fallback: {{on: [timeout], chain: [openai-b]}}
budgets:
  faults-total: {{scope: org, target: "*", window: total, limit_usd: 1000}}
"""


USER = [{"role": "user", "content": "hi"}]
STREAMS: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/v1/chat/completions",
             {"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True}, "messages": USER}),
    "responses": ("/v1/responses", {"model": "gpt-4o", "stream": True, "input": "hi"}),
    "messages": ("/v1/messages", {"model": "claude", "max_tokens": 64, "stream": True, "messages": USER}),
    "gemini": ("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
               {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
}
FINAL = {"chat": "data: [DONE]", "responses": "event: response.completed", "messages": "event: message_stop",
         "gemini": '"finishReason": "STOP"'}


@dataclass
class Setup:
    base_url: str
    upstream: MockUpstream
    server: ServerThread
    log: io.StringIO
    ledger: SqliteLedger
    policy_text: str

    def post(self, path: str, body: dict[str, Any], key: str = KEY) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}", "x-api-key": key, "x-goog-api-key": key}
        return httpx.post(self.base_url + path, json=body, headers=headers, timeout=20)

    def chat(self, key: str = KEY, stream: bool = False) -> httpx.Response:
        return self.post("/v1/chat/completions", {"model": "gpt-4o", "messages": USER, "stream": stream}, key)

    def records(self) -> list[dict[str, Any]]:
        self.server.wait_idle()
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line.startswith("{")]

    def charges(self) -> list[tuple[str, int, int, str]]:
        self.server.wait_idle()
        return recorded_charges(self.ledger)

    def line_of(self, text: str) -> int:
        return next(i for i, line in enumerate(self.policy_text.splitlines(), 1) if text in line)


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    monkeypatch.setenv("E2E_OPENAI_KEY", OPENAI_SECRET)
    monkeypatch.setenv("E2E_ANTHROPIC_KEY", ANTHROPIC_SECRET)
    monkeypatch.setenv("E2E_GEMINI_KEY", GEMINI_SECRET)
    log = io.StringIO()
    with MockUpstream() as upstream:
        text = policy(upstream.base_url)
        (tmp_path / "policy.yaml").write_text(text)
        ledger = SqliteLedger(tmp_path / "data")
        app = app_from(tmp_path, access_log=AccessLog(log), ledger=ledger)
        with ServerThread(app) as server:
            yield Setup(server.base_url, upstream, server, log, ledger, text)
        assert app.budgets is not None
        app.budgets.close()
        ledger.close()


def sse_events(text: str) -> list[str]:
    return [block for block in text.replace("\r\n", "\n").split("\n\n") if block.strip()]


# A stream ends at its final event.

@pytest.mark.parametrize("after", ["hold", "drop"])
@pytest.mark.parametrize("surface", STREAMS)
def test_a_stream_ends_at_its_final_event_and_is_charged_its_usage(setup: Setup, surface: str, after: str) -> None:
    path, body = STREAMS[surface]
    setup.upstream.fail(after_final=after, times=1)
    r = setup.post(path, body)
    assert r.status_code == 200
    events = sse_events(r.text)
    assert FINAL[surface] in events[-1], events[-1]
    assert "provider_error" not in r.text and "upstream stream failed" not in r.text
    [(_, estimate, amount, how)] = setup.charges()
    assert how == "usage" and 0 < amount != estimate
    record = setup.records()[-1]
    assert record["status"] == 200 and "stream_error" not in record and record["usage"]["output_tokens"] == 5


def test_an_upstream_that_ends_its_body_after_the_final_event_keeps_its_connection(setup: Setup) -> None:
    path, body = STREAMS["chat"]
    for _ in range(3):
        assert setup.post(path, body).text.rstrip().endswith("data: [DONE]")
    ports = {request.port for request in setup.upstream.requests}
    assert len(setup.upstream.requests) == 3 and len(ports) == 1


# Answers and events beyond the gateway's limits.

def test_a_whole_answer_over_max_answer_bytes_is_a_502_naming_the_limit(setup: Setup) -> None:
    setup.upstream.fail(flood=50 * MIB, times=1)
    r = setup.chat(key=SINGLE_KEY)
    assert r.status_code == 502
    error = r.json()["error"]
    assert error["code"] == "provider_error"
    assert "sent an answer larger than gateway.max_answer_bytes (65,536 bytes)" in error["message"]
    fault = setup.upstream.last_fault
    assert fault is not None and fault.stopped.wait(10) and fault.sent < 10 * MIB
    [(_, _, amount, how)] = setup.charges()
    assert amount == 0 and how.startswith("nothing")


def test_an_endless_first_event_is_a_502_naming_the_event_limit(setup: Setup) -> None:
    setup.upstream.fail(flood=50 * MIB, times=1)
    r = setup.chat(key=SINGLE_KEY, stream=True)
    assert r.status_code == 502
    assert "sent an event larger than gateway.max_event_bytes (65,536 bytes)" in r.json()["error"]["message"]
    fault = setup.upstream.last_fault
    assert fault is not None and fault.stopped.wait(10) and fault.sent < 10 * MIB


@pytest.mark.parametrize("surface", STREAMS)
def test_an_event_over_the_limit_mid_stream_ends_it_with_the_surfaces_error_event(setup: Setup, surface: str) -> None:
    path, body = STREAMS[surface]
    setup.upstream.fail(flood=50 * MIB, flood_after=2, times=1)
    r = setup.post(path, body)
    assert r.status_code == 200
    last = sse_events(r.text)[-1]
    assert "upstream stream failed: too_large" in last and "gateway.max_event_bytes (65,536 bytes)" in last
    if surface in ("responses", "messages"):
        assert last.startswith("event: error")
    fault = setup.upstream.last_fault
    assert fault is not None and fault.stopped.wait(10) and fault.sent < 10 * MIB
    assert setup.records()[-1]["stream_error"] == "too_large"


# The gateway's credential never reaches a client or the log.

def test_a_relayed_400_echoing_the_credential_is_scrubbed(setup: Setup) -> None:
    setup.upstream.fail(status=400, echo=True, times=1)
    r = setup.chat()
    assert r.status_code == 400 and "invalid request; it carried authorization: Bearer [redacted credential]" in r.text
    setup.upstream.fail(status=400, echo=True, times=1)
    r2 = setup.post("/v1/messages", {"model": "claude", "max_tokens": 8, "messages": USER})
    assert r2.status_code == 400 and "x-api-key: [redacted credential]" in r2.text
    for text in (r.text, r2.text, setup.log.getvalue()):
        assert not any(secret in text for secret in SECRETS)


@pytest.mark.parametrize("surface", ["chat", "messages"])
@pytest.mark.parametrize("stream", [True, False])
def test_an_answer_echoing_the_credential_is_scrubbed(setup: Setup, surface: str, stream: bool) -> None:
    path, body = STREAMS[surface]
    setup.upstream.fail(echo=True, times=1)
    r = setup.post(path, {**body, "stream": stream})
    assert r.status_code == 200 and "[redacted credential]" in r.text
    assert not any(secret in r.text or secret in setup.log.getvalue() for secret in SECRETS)
    assert any(secret in str(setup.upstream.requests[-1].headers) for secret in SECRETS)


# A 200 that is not its protocol's is a failure of the provider.

NOT_ITS_PROTOCOL = {
    "an HTML page": (False, ("text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
                     "answered 200 with an HTML page, not JSON"),
    "invalid JSON": (False, ("application/json", b'{"id": "chatcmpl-1", "choices": ['), "answered 200 with a body of type"),
    "SSE whose first event is not JSON": (True, ("text/event-stream", b"data: <html>maintenance</html>\n\n"),
                                          "an event stream whose first event is not a JSON object"),
    "an HTML page for a stream": (True, ("text/html", b"<html>maintenance</html>"),
                                  "answered 200 with an HTML page, not an event stream"),
}


@pytest.mark.parametrize("case", NOT_ITS_PROTOCOL)
def test_a_200_that_is_not_its_protocols_falls_back_like_a_5xx(setup: Setup, case: str) -> None:
    stream, raw, _ = NOT_ITS_PROTOCOL[case]
    setup.upstream.fail(raw=raw, times=1)
    r = setup.chat(stream=stream)
    assert r.status_code == 200 and r.headers["x-langwatch-provider"] == "openai-b"
    assert r.headers["x-langwatch-fallback-count"] == "1"
    assert setup.records()[-1]["attempts"][0]["reason"] == "invalid_answer"


@pytest.mark.parametrize("case", NOT_ITS_PROTOCOL)
def test_a_200_that_is_not_its_protocols_without_fallback_is_a_502_and_charges_nothing(setup: Setup, case: str) -> None:
    stream, raw, said = NOT_ITS_PROTOCOL[case]
    setup.upstream.fail(raw=raw, times=1)
    r = setup.chat(key=SINGLE_KEY, stream=stream)
    assert r.status_code == 502 and r.json()["error"]["code"] == "provider_error"
    message = r.json()["error"]["message"]
    assert message.startswith("the only target failed: openai-a (gpt-4o) answered 200") and said in message
    [(_, _, amount, how)] = setup.charges()
    assert amount == 0 and how == "nothing: no target answered"


# The error of a route counts the route, not the attempts.

def test_a_route_that_does_not_fall_back_on_5xx_says_which_targets_were_not_tried_and_why(setup: Setup) -> None:
    setup.upstream.fail(status=500, times=1)
    r = setup.chat(key=TIMEOUT_ONLY_KEY)
    assert r.status_code == 502
    line = setup.line_of("fallback: {on: [timeout]")
    assert r.json()["error"]["message"] == (
        "openai-a (gpt-4o) answered 500; openai-b (gpt-4o) was not tried: "
        f"this route falls back on timeout only, not on 5xx (policy.yaml:{line})"
    )
    assert len(setup.upstream.requests) == 1


# Memory stays bounded while an upstream sends 300 MB.

def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_a_300_mb_answer_or_event_keeps_the_proxy_under_a_memory_bound(tmp_path: Path) -> None:
    """With the default limits (32 MiB answers, 16 MiB events) the proxy, a process of its own
    here, reads at most a limit's worth, drops the connection and answers 502; its peak RSS stays
    far below the 300 MB it was sent (it held 645 MB before the limits)."""
    env = {"E2E_OPENAI_KEY": OPENAI_SECRET, "E2E_ANTHROPIC_KEY": ANTHROPIC_SECRET, "E2E_GEMINI_KEY": GEMINI_SECRET}
    with MockUpstream() as upstream:
        (tmp_path / "policy").mkdir()
        (tmp_path / "policy" / "policy.yaml").write_text(policy(upstream.base_url, "{header_prefix: X-LangWatch-}"))
        with ProxyProcess(tmp_path / "policy", tmp_path / "proxy.log", env, "--no-watch") as proxy:
            assert proxy.proc is not None
            before = vm_kib(proxy.proc.pid, "VmHWM")
            headers = {"authorization": f"Bearer {SINGLE_KEY}"}
            for stream, limit in ((False, "max_answer_bytes (33,554,432 bytes)"), (True, "max_event_bytes (16,777,216 bytes)")):
                upstream.fail(flood=300 * 1000 * 1000, times=1)
                r = httpx.post(proxy.base_url + "/v1/chat/completions", headers=headers, timeout=60,
                               json={"model": "gpt-4o", "messages": USER, "stream": stream})
                assert r.status_code == 502 and limit in r.json()["error"]["message"]
                fault = upstream.last_fault
                assert fault is not None and fault.stopped.wait(10) and fault.sent < 100 * MIB
            peak = vm_kib(proxy.proc.pid, "VmHWM")
            assert httpx.get(proxy.base_url + "/healthz").status_code == 200
    assert peak < before + 160 * 1024, f"peak RSS {peak // 1024} MiB, {before // 1024} MiB before the floods"
