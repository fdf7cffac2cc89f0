"""Cool-down: a half-open try that reaches no verdict hands its permit back, whatever ended it
(a 429, a request that skips the target, a client that went away, an error in the proxy), so the
provider is tried again rather than skipped for good."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest

from runtime.app import Gatepost
from runtime.circuit import Circuits
from runtime.metrics import Metrics
from runtime.table import Credential, Provider, Timeouts
from runtime.upstream import UpstreamCall
from runtime.upstream.base import BufferedResponse
from tests.support.apps import app_from
from tests.support.clock import ManualClock

KEY = "gp-unit-circuit-0123456789abcdefghijklm"
COOLDOWN_S = 0.05
JSON = [(b"content-type", b"application/json")]
CHAT_ANSWER = {"id": "c", "object": "chat.completion", "model": "m", "usage": {"prompt_tokens": 1, "completion_tokens": 1},
               "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}
MESSAGE_ANSWER = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "stop_reason": "end_turn",
                  "content": [{"type": "text", "text": "ok"}], "usage": {"input_tokens": 1, "output_tokens": 1}}

Action = Callable[[UpstreamCall], Awaitable[BufferedResponse]]


def provider_with(*weights: int, failures: int = 1, cooldown_s: float = 10.0) -> Provider:
    """A provider `p`: one credential named as it (an `api_key`), or one per weight (`api_keys`)."""
    base = Provider("p", "openai", "openai", None, "env:K", None, MappingProxyType({}), Timeouts(1, 1, 1), failures,
                    cooldown_s)
    if not weights:
        return replace(base, credentials=(Credential("p", "p", "env:K", 1, base),))
    credentials = tuple(Credential("p", f"p#{n}", f"env:K{n}", w, base) for n, w in enumerate(weights, start=1))
    return replace(base, credentials=credentials, pooled=True)


def test_a_permit_released_without_a_verdict_lets_the_next_request_probe() -> None:
    clock = ManualClock(0.0)
    circuits = Circuits(Metrics(), clock)
    p = provider_with()
    circuits.failed(p, p.credentials[0], p.credentials)
    clock.advance(5.0)
    assert circuits.admit(p.credentials) is None
    clock.advance(6.0)
    probe = circuits.admit(p.credentials)
    assert probe is not None and probe.probe
    assert circuits.admit(p.credentials) is None
    circuits.release(probe)
    again = circuits.admit(p.credentials)
    assert again is not None and again.probe


def test_a_stale_permit_does_not_release_another_requests_probe() -> None:
    clock = ManualClock(0.0)
    circuits = Circuits(Metrics(), clock)
    p = provider_with()
    closed = circuits.admit(p.credentials)
    assert closed is not None and not closed.probe
    circuits.failed(p, p.credentials[0], p.credentials)
    clock.advance(11.0)
    probe = circuits.admit(p.credentials)
    circuits.release(closed)
    assert probe is not None and circuits.admit(p.credentials) is None


def picks(circuits: Circuits, p: Provider, count: int) -> list[str]:
    chosen = []
    for _ in range(count):
        permit = circuits.admit(p.credentials)
        assert permit is not None
        chosen.append(permit.credential.id)
        circuits.release(permit)
    return chosen


def test_credentials_share_requests_by_weight_interleaved_and_in_a_fixed_order() -> None:
    circuits = Circuits(Metrics(), ManualClock(0.0))
    assert picks(circuits, provider_with(3, 1), 8) == ["p#1", "p#1", "p#2", "p#1"] * 2
    assert picks(Circuits(Metrics(), ManualClock(0.0)), provider_with(5, 1, 1), 7) == [
        "p#1", "p#1", "p#2", "p#1", "p#3", "p#1", "p#1"]


def test_a_resting_credential_is_left_out_until_its_rest_ends_and_the_provider_stays_closed() -> None:
    clock, metrics = ManualClock(0.0), Metrics()
    circuits = Circuits(metrics, clock)
    p = provider_with(1, 1)
    circuits.rest(p, p.credentials[0], p.credentials, 20.0, "429")
    assert picks(circuits, p, 3) == ["p#2"] * 3 and not circuits.is_open(p.credentials)
    assert metrics.circuit_open.values == {}
    clock.advance(20.0)
    assert sorted(picks(circuits, p, 2)) == ["p#1", "p#2"]


def test_the_provider_opens_only_when_every_credential_rests_or_cools_down() -> None:
    clock, metrics = ManualClock(0.0), Metrics()
    circuits = Circuits(metrics, clock)
    p = provider_with(1, 1, failures=1, cooldown_s=30.0)
    circuits.failed(p, p.credentials[0], p.credentials)
    assert not circuits.is_open(p.credentials) and metrics.circuit_opened.values == {}
    circuits.rest(p, p.credentials[1], p.credentials, 300.0, "refused")
    assert circuits.is_open(p.credentials) and circuits.admit(p.credentials) is None
    assert metrics.circuit_opened.values == {("p",): 1} and metrics.circuit_open.values == {("p",): 1}
    assert circuits.ready_in(p.credentials) == 30.0
    clock.advance(30.0)
    probe = circuits.admit(p.credentials)
    assert probe is not None and probe.probe and probe.credential.id == "p#1"
    circuits.succeeded(probe.credential)
    assert metrics.circuit_open.values == {("p",): 0}
    assert metrics.credential_cooldowns.values == {("p", "p#1", "failures"): 1, ("p", "p#2", "refused"): 1}


def test_a_request_is_not_given_a_credential_it_tried_already() -> None:
    circuits = Circuits(Metrics(), ManualClock(0.0))
    p = provider_with(3, 1)
    first = circuits.admit(p.credentials)
    assert first is not None and first.credential.id == "p#1"
    other = circuits.admit(p.credentials, skip={"p#1"})
    assert other is not None and other.credential.id == "p#2"
    assert circuits.admit(p.credentials, skip={"p#1", "p#2"}) is None


def status(code: int) -> Action:
    async def answer(call: UpstreamCall) -> BufferedResponse:
        return BufferedResponse(code, JSON, [b'{"error": {"message": "mock"}}'])

    return answer


async def answered(call: UpstreamCall) -> BufferedResponse:
    body = MESSAGE_ANSWER if call.url.endswith("/v1/messages") else CHAT_ANSWER
    return BufferedResponse(200, JSON, [orjson.dumps(body)])


def hanging(reached: asyncio.Event) -> Action:
    """An upstream that never answers; `reached` is set once the request is waiting on it."""

    async def hang(call: UpstreamCall) -> BufferedResponse:
        reached.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return hang


async def boom(call: UpstreamCall) -> BufferedResponse:
    raise RuntimeError("a bug in the proxy")


class Scripted:
    """A transport answering from a script, then with a 200."""

    def __init__(self) -> None:
        self.script: list[Action] = []
        self.calls = 0

    async def send(self, call: UpstreamCall) -> BufferedResponse:
        self.calls += 1
        action = self.script.pop(0) if self.script else answered
        return await action(call)

    async def aclose(self) -> None:
        return None


Rig = tuple[Gatepost, Scripted, Scripted, ManualClock]
"""The app (its circuits on a manual clock), the primary and backup transports, and that clock."""


def policy(tmp_path: Path) -> Path:
    import hashlib

    digest = hashlib.sha256(KEY.encode()).hexdigest()
    (tmp_path / "policy.yaml").write_text(f"""\
gateway: {{header_prefix: X-LangWatch-}}
providers:
  primary: {{type: anthropic, base_url: "http://127.0.0.1:9", api_key: env:UNIT_KEY, circuit: {{failures: 1, cooldown_s: {COOLDOWN_S}}}}}
  backup: {{type: openai, base_url: "http://127.0.0.1:9/v1", api_key: env:UNIT_KEY}}
models:
  claude: {{providers: [primary]}}
  gpt-4o: {{providers: [backup]}}
virtual_keys:
  vk-circuit:
    key_sha256: {digest}
    models_allowed: [claude, gpt-4o]
    cache: {{mode: disable}}
    fallback: {{on: [5xx, 429, timeout, connect], chain: [{{provider: backup, model: gpt-4o}}]}}
""")
    return tmp_path


@pytest.fixture
def proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    monkeypatch.setenv("UNIT_KEY", "upstream-credential")
    clock = ManualClock()
    app = app_from(policy(tmp_path), clock=clock)
    primary, backup = Scripted(), Scripted()
    app.serving = replace(app.serving, transports={"primary": primary, "backup": backup})
    return app, primary, backup, clock


async def ask(app: Gatepost, body: dict[str, Any] | None = None) -> tuple[int, dict[bytes, bytes]]:
    payload = orjson.dumps(body or {"model": "claude", "messages": [{"role": "user", "content": "hi"}]})
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "query_string": b"",
             "headers": [(b"authorization", f"Bearer {KEY}".encode()), (b"content-type", b"application/json")]}
    received = False
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:
            await asyncio.Event().wait()
        received = True
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(dict(message))

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], dict(start["headers"])


def provider_of(headers: dict[bytes, bytes]) -> str:
    return headers[b"x-langwatch-provider"].decode().split(";")[0]


async def open_then_cool_down(app: Gatepost, primary: Scripted, clock: ManualClock) -> None:
    primary.script.append(status(503))
    code, headers = await ask(app)
    assert code == 200 and provider_of(headers) == "backup"
    code, headers = await ask(app)
    assert provider_of(headers) == "backup" and primary.calls == 1
    clock.advance(COOLDOWN_S * 1.5)


async def tried_again(app: Gatepost, primary: Scripted) -> None:
    before = primary.calls
    code, headers = await ask(app)
    assert code == 200 and provider_of(headers) == "primary" and primary.calls == before + 1


def test_a_probe_answered_with_429_lets_the_next_request_try_again(proxy: Rig) -> None:
    app, primary, _, clock = proxy

    async def scenario() -> None:
        await open_then_cool_down(app, primary, clock)
        primary.script.append(status(429))
        code, headers = await ask(app)
        assert code == 200 and provider_of(headers) == "backup"
        await tried_again(app, primary)

    asyncio.run(scenario())


def test_a_request_that_skips_the_cooled_provider_takes_no_probe(proxy: Rig) -> None:
    app, primary, _, clock = proxy

    async def scenario() -> None:
        await open_then_cool_down(app, primary, clock)
        untranslatable = {"model": "claude", "n": 2, "messages": [{"role": "user", "content": "hi"}]}
        code, headers = await ask(app, untranslatable)
        assert code == 200 and provider_of(headers) == "backup" and primary.calls == 1
        await tried_again(app, primary)

    asyncio.run(scenario())


def test_a_probe_whose_client_went_away_lets_the_next_request_try_again(proxy: Rig) -> None:
    app, primary, _, clock = proxy

    async def scenario() -> None:
        await open_then_cool_down(app, primary, clock)
        reached = asyncio.Event()
        primary.script.append(hanging(reached))
        gone = asyncio.create_task(ask(app))
        await reached.wait()
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        await tried_again(app, primary)

    asyncio.run(scenario())


def test_a_probe_that_raised_lets_the_next_request_try_again(proxy: Rig) -> None:
    app, primary, _, clock = proxy

    async def scenario() -> None:
        await open_then_cool_down(app, primary, clock)
        primary.script.append(boom)
        status, _ = await ask(app)
        assert status == 500, "the proxy answers its own fault with a typed 500"
        await tried_again(app, primary)

    asyncio.run(scenario())


def test_a_failed_probe_cools_the_provider_down_again(proxy: Rig) -> None:
    app, primary, _, clock = proxy

    async def scenario() -> None:
        await open_then_cool_down(app, primary, clock)
        primary.script.append(status(500))
        _, headers = await ask(app)
        assert provider_of(headers) == "backup" and primary.calls == 2
        _, headers = await ask(app)
        assert provider_of(headers) == "backup" and primary.calls == 2

    asyncio.run(scenario())
