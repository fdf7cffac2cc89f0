"""OpenTelemetry traces (gateway.telemetry), as a real OTLP/HTTP collector on loopback receives them:
a span per request after the GenAI conventions with the gateway's own attributes, a client span
per upstream attempt, the client's traceparent continued and sent upstream, the trace id in the
access log, prompt and answer text only when opted in, and a collector that cannot be reached
costing nothing but a counter."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.sources import load_source, source_files
from runtime.access_log import AccessLog, EventLog
from runtime.app import Gatepost
from runtime.reload import Reloader
from tests.support.apps import app_from
from tests.support.otlp import OtlpReceiver, ReceivedSpan
from tests.support.proxy_process import free_port
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e
KEY = "gp-e2e-telemetry-0123456789abcdefghijkl"
PROMPT = "what is the capital of France?"
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


def policy(primary: str, backup: str, endpoint: str, record_content: bool = False, sampling_ratio: float = 1) -> str:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    return f"""\
gateway:
  telemetry:
    endpoint: {endpoint}
    service_name: gatepost-e2e
    sampling_ratio: {sampling_ratio}
    record_content: {str(record_content).lower()}
providers:
  primary: {{type: openai, base_url: "{primary}/v1", api_key: env:E2E_KEY}}
  backup: {{type: anthropic, base_url: "{backup}", api_key: env:E2E_KEY}}
models:
  gpt-4o: {{providers: [primary], price: {{input: 2.50, output: 10.00}}}}
  claude-haiku-4-5: {{providers: [backup], price: {{input: 1.00, output: 5.00}}}}
teams:
  engineering: {{members: [alice@acme.com]}}
virtual_keys:
  vk-alice-traced:
    key_sha256: {digest}
    principal: alice@acme.com
    team: engineering
    models_allowed: [gpt-4o]
    fallback: {{on: [5xx], chain: [{{provider: backup, model: claude-haiku-4-5}}]}}
"""


def without_telemetry(text: str) -> str:
    return text[text.index("providers:"):]


def reload(setup: Traced, text: str) -> None:
    (setup.source / "policy.yaml").write_text(text)
    reloader = Reloader(setup.app, setup.source, load_source, source_files, EventLog(io.StringIO()), retire_grace_s=0)
    assert asyncio.run(reloader.reload("SIGHUP"))


@dataclass
class Traced:
    base_url: str
    app: Gatepost
    primary: MockUpstream
    backup: MockUpstream
    collector: OtlpReceiver
    log: io.StringIO
    server: ServerThread
    source: Path

    def chat(self, stream: bool = False, model: str = "gpt-4o", headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(
            self.base_url + "/v1/chat/completions",
            json={"model": model, "stream": stream, "messages": [{"role": "user", "content": PROMPT}]},
            headers={"authorization": f"Bearer {KEY}", **(headers or {})}, timeout=20,
        )

    def records(self) -> list[dict[str, Any]]:
        self.server.wait_idle()
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line.startswith("{")]

    def metrics(self) -> str:
        return httpx.get(self.base_url + "/metrics").text


def traced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record_content: bool = False,
           endpoint: str | None = None, telemetry: bool = True, from_environment: bool = False,
           sampling_ratio: float = 1) -> Iterator[Traced]:
    monkeypatch.setenv("E2E_KEY", "upstream-credential")
    monkeypatch.delenv("GATEPOST_OTLP_ENDPOINT", raising=False)
    with MockUpstream() as primary, MockUpstream() as backup, OtlpReceiver() as collector:
        if from_environment:
            monkeypatch.setenv("GATEPOST_OTLP_ENDPOINT", collector.url)
        text = policy(primary.base_url, backup.base_url, endpoint or collector.url, record_content, sampling_ratio)
        (tmp_path / "policy.yaml").write_text(text if telemetry else without_telemetry(text))
        log = io.StringIO()
        app = app_from(tmp_path, access_log=AccessLog(log), events=EventLog(io.StringIO()))
        with ServerThread(app) as server:
            yield Traced(server.base_url, app, primary, backup, collector, log, server, tmp_path)


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Traced]:
    yield from traced(tmp_path, monkeypatch)


def request_spans(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return [s for s in spans if s.kind == "server"]


def test_a_request_is_one_server_span_after_the_genai_conventions(setup: Traced) -> None:
    r = setup.chat()
    assert r.status_code == 200
    [span] = request_spans(setup.collector.wait_for(2))
    assert span.name == "chat gpt-4o" and not span.error
    assert span.resource["service.name"] == "gatepost-e2e"
    a = span.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "gpt-4o"
    assert a["gen_ai.response.model"] == "gpt-4o" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert a["gatepost.key.id"] == "vk-alice-traced" and a["gatepost.team"] == "engineering"
    assert a["gatepost.principal"] == "alice@acme.com"
    assert a["gatepost.policy.revision"] == r.headers["x-langwatch-policy-revision"]
    assert a["gatepost.decision"] == "allow" and a["gatepost.cost_usd"] > 0
    assert a["http.response.status_code"] == 200
    assert not any(KEY[:20] in str(v) or ("sha256" in str(v) and len(str(v)) == 64) for v in a.values())
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a
    assert PROMPT not in json.dumps([s.attributes for s in setup.collector.spans])


def test_a_stream_is_traced_to_its_end(setup: Traced) -> None:
    r = setup.chat(stream=True)
    assert r.status_code == 200 and "[DONE]" in r.text
    [span] = request_spans(setup.collector.wait_for(2))
    assert span.name == "chat gpt-4o" and span.attributes["gatepost.decision"] == "allow"
    assert span.attributes["gen_ai.usage.output_tokens"] > 0
    [attempt] = [s for s in setup.collector.spans if s.kind == "client"]
    assert attempt.parent_span_id == span.span_id and attempt.attributes["http.response.status_code"] == 200


def test_a_refused_request_is_a_span_with_the_reason(setup: Traced) -> None:
    r = setup.chat(model="claude-haiku-4-5")
    assert r.status_code == 403
    [span] = setup.collector.wait_for(1)
    a = span.attributes
    assert span.kind == "server" and span.name == "chat claude-haiku-4-5"
    assert a["gatepost.decision"] == "refuse" and a["gatepost.decision.reason"] == "model_not_allowed"
    assert a["error.type"] == "model_not_allowed" and a["http.response.status_code"] == 403
    assert not span.error
    assert not setup.primary.requests and not setup.backup.requests


def test_each_upstream_attempt_is_a_client_span_naming_why_it_fell_back(setup: Traced) -> None:
    setup.primary.fail(status=503, times=1)
    r = setup.chat()
    assert r.status_code == 200 and r.headers["x-langwatch-provider"].startswith("backup")
    spans = setup.collector.wait_for(3)
    [request] = request_spans(spans)
    failed, answered = sorted((s for s in spans if s.kind == "client"), key=lambda s: s.attributes["gatepost.provider"] != "primary")
    assert request.attributes["gen_ai.provider.name"] == "anthropic"
    assert request.attributes["gen_ai.response.model"] == "claude-haiku-4-5"
    assert request.attributes["gatepost.fallback_count"] == 1
    assert failed.parent_span_id == answered.parent_span_id == request.span_id
    assert failed.name == "chat gpt-4o" and failed.error
    assert failed.attributes["gen_ai.provider.name"] == "openai" and failed.attributes["http.response.status_code"] == 503
    assert failed.attributes["gatepost.fallback.reason"] == "503" and failed.attributes["error.type"] == "503"
    assert answered.name == "chat claude-haiku-4-5" and "gatepost.fallback.reason" not in answered.attributes
    assert answered.attributes["gen_ai.provider.name"] == "anthropic" and not answered.error


def test_the_clients_traceparent_is_continued_and_sent_upstream(setup: Traced) -> None:
    traceparent = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
    r = setup.chat(headers={"traceparent": traceparent, "tracestate": "vendor=opaque"})
    assert r.status_code == 200
    spans = setup.collector.wait_for(2)
    [request] = request_spans(spans)
    [attempt] = [s for s in spans if s.kind == "client"]
    assert request.trace_id == attempt.trace_id == CLIENT_TRACE
    assert request.parent_span_id == CLIENT_SPAN
    [sent] = setup.primary.requests
    assert sent.headers["traceparent"] == f"00-{CLIENT_TRACE}-{attempt.span_id}-01"
    assert sent.headers["tracestate"] == "vendor=opaque"
    [line] = setup.records()
    assert line["trace_id"] == CLIENT_TRACE


def test_the_trace_id_is_in_the_access_log(setup: Traced) -> None:
    setup.chat()
    [request] = request_spans(setup.collector.wait_for(2))
    [line] = setup.records()
    assert line["trace_id"] == request.trace_id and len(request.trace_id) == 32


def test_an_unsampled_client_trace_is_not_recorded_but_still_sent_upstream(setup: Traced) -> None:
    r = setup.chat(headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-00"})
    assert r.status_code == 200
    [sent] = setup.primary.requests
    assert sent.headers["traceparent"].startswith(f"00-{CLIENT_TRACE}-") and sent.headers["traceparent"].endswith("-00")
    setup.chat()
    spans = setup.collector.wait_for(2)
    assert all(s.trace_id != CLIENT_TRACE for s in spans)


def test_a_client_trace_state_goes_upstream_with_an_unsampled_trace(setup: Traced) -> None:
    headers = {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-00", "tracestate": "vendor=opaque"}
    assert setup.chat(headers=headers).status_code == 200
    [sent] = setup.primary.requests
    assert sent.headers["tracestate"] == "vendor=opaque"
    [line] = setup.records()
    assert line["trace_id"] == CLIENT_TRACE


def test_the_last_traceparent_a_client_sends_is_the_one_continued(setup: Traced) -> None:
    other = "0af7651916cd43dd8448eb211c80319c"
    headers = [("authorization", f"Bearer {KEY}"), ("traceparent", f"00-{other}-{CLIENT_SPAN}-01"),
               ("traceparent", f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01")]
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": PROMPT}]}
    assert httpx.post(setup.base_url + "/v1/chat/completions", json=body, headers=headers, timeout=20).status_code == 200
    [request] = request_spans(setup.collector.wait_for(2))
    assert request.trace_id == CLIENT_TRACE and request.parent_span_id == CLIENT_SPAN


def test_a_request_the_ratio_leaves_unsampled_still_names_its_trace_upstream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for setup in traced(tmp_path, monkeypatch, sampling_ratio=0):
        setup.primary.fail(status=503, times=1)
        r = setup.chat()
        assert r.status_code == 200 and r.headers["x-langwatch-provider"].startswith("backup")
        [line] = setup.records()
        trace_id = line["trace_id"]
        assert len(trace_id) == 32 and int(trace_id, 16)
        [first], [second] = setup.primary.requests, setup.backup.requests
        traceparent = first.headers["traceparent"]
        version, sent_trace, span_id, flags = traceparent.split("-")
        assert (version, sent_trace, flags) == ("00", trace_id, "00") and len(span_id) == 16 and int(span_id, 16)
        assert second.headers["traceparent"] == traceparent and "tracestate" not in first.headers
        tracer = setup.app.tracing.tracer_for(setup.app.serving.table.gateway.telemetry)
        assert tracer is not None and tracer.processor.force_flush()
        assert not setup.collector.spans


def test_prompt_and_answer_are_recorded_only_when_opted_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for setup in traced(tmp_path, monkeypatch, record_content=True):
        r = setup.chat()
        assert r.status_code == 200
        [span] = request_spans(setup.collector.wait_for(2))
        assert PROMPT in span.attributes["gen_ai.input.messages"]
        answer = r.json()["choices"][0]["message"]["content"]
        assert answer and answer in span.attributes["gen_ai.output.messages"]


def test_an_unreachable_collector_costs_requests_nothing_but_a_counter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")
    for setup in traced(tmp_path, monkeypatch, endpoint=f"http://127.0.0.1:{free_port()}"):
        for _ in range(3):
            assert setup.chat().status_code == 200
        tracer = setup.app.tracing.tracer_for(setup.app.serving.table.gateway.telemetry)
        assert tracer is not None
        tracer.processor.force_flush()
        text = setup.metrics()
        assert 'gatepost_trace_spans_dropped_total{reason="export_failed"} 6' in text
        assert "gatepost_trace_spans_exported_total 0" in text
        assert not setup.collector.spans


def test_a_reload_that_changes_telemetry_takes_effect_on_the_next_request(setup: Traced) -> None:
    setup.chat()
    [first] = request_spans(setup.collector.wait_for(2))
    text = (setup.source / "policy.yaml").read_text()
    reload(setup, text.replace("service_name: gatepost-e2e", "service_name: gatepost-reloaded"))
    setup.chat()
    [_, second] = request_spans(setup.collector.wait_for(4))
    assert (first.resource["service.name"], second.resource["service.name"]) == ("gatepost-e2e", "gatepost-reloaded")
    reload(setup, without_telemetry(text))
    assert setup.chat().status_code == 200
    *_, last = setup.records()
    assert "trace_id" not in last and len(setup.collector.spans) == 4


def test_a_reload_that_changes_a_keys_team_names_the_new_team_on_the_next_span(setup: Traced) -> None:
    setup.chat()
    [first] = request_spans(setup.collector.wait_for(2))
    text = (setup.source / "policy.yaml").read_text()
    reload(setup, text.replace("engineering", "platform").replace("alice@acme.com", "bob@acme.com"))
    setup.chat()
    [_, second] = request_spans(setup.collector.wait_for(4))
    assert (first.attributes["gatepost.team"], second.attributes["gatepost.team"]) == ("engineering", "platform")
    assert second.attributes["gatepost.principal"] == "bob@acme.com"


def test_the_environment_endpoint_turns_tracing_on_without_a_policy_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for setup in traced(tmp_path, monkeypatch, telemetry=False, from_environment=True):
        assert setup.chat().status_code == 200
        [span] = request_spans(setup.collector.wait_for(2))
        assert span.resource["service.name"] == "gatepost" and span.attributes["gatepost.key.id"] == "vk-alice-traced"
        assert setup.collector.paths == ["/v1/traces"]
