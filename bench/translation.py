"""What the translation hub costs, per pair of client and target protocol (12 pairs):

- per request: `plan` (read the client's request into the hub's model, write the target's, cache
  mode applied) and the body the adapter sends, on the captured Codex (43 KB Responses), Claude
  Code (121 KB Messages) and gemini-cli (33 KB Gemini) requests and a Chat request of the same
  conversation as Codex's;
- per streamed event: an answer of 200 text deltas and a tool call, fed in one chunk per upstream
  event through the stream translator (parse, read, write), divided by the upstream's events;
- first event: a new stream translator fed the upstream's first event (and the first text delta),
  until its bytes for the client are out: the latency translation adds before the client's first
  byte. Target: <= 0.2 ms.

    .venv/bin/python bench/translation.py
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

from runtime.surfaces import CHAT, GEMINI, MESSAGES, RESPONSES, Surface
from runtime.table import Provider, Target, Timeouts
from runtime.translation import HubStream, StreamTranslator, plan
from runtime.translators import CODECS
from runtime.translators.model import (
    Event,
    Finished,
    Request,
    Started,
    Stopped,
    TextDelta,
    ToolArguments,
    ToolCallStarted,
    Usage,
    UsageSeen,
)
from runtime.upstream import ADAPTERS, Outbound, RawBody

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
ROUNDS = 60
SURFACES: dict[str, Surface] = {"chat": CHAT, "responses": RESPONSES, "messages": MESSAGES, "gemini": GEMINI}
TARGETS = {"chat": Target("p", "m", "m", "openai", "chat"), "responses": Target("p", "m", "m", "openai", "responses"),
           "messages": Target("p", "m", "m", "anthropic"), "gemini": Target("p", "m", "m", "gemini")}
PROVIDER_TYPES = {"chat": "openai", "responses": "openai", "messages": "anthropic", "gemini": "gemini"}


def requests() -> dict[str, dict[str, Any]]:
    codex = json.loads((FIXTURES / "codex-responses-request.json").read_text())
    claude = json.loads((FIXTURES / "claude-messages-request.json").read_text())
    gemini = json.loads((FIXTURES / "gemini-streamGenerateContent-request.json").read_text())
    chat = CODECS["chat"].write_request(CODECS["responses"].read_request(codex), "gpt-4o")
    return {"chat": chat, "responses": codex, "messages": claude, "gemini": gemini}


def timed(run: Callable[[], object], batch: int) -> float:
    """Median µs of one `run` over ROUNDS batches."""
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        for _ in range(batch):
            run()
        samples.append((time.perf_counter_ns() - start) / batch / 1000)
    return statistics.median(samples)


def per_request(client: str, wire: str, payload: dict[str, Any]) -> float:
    out = Outbound(client, payload, True, {}, raw=RawBody(json.dumps(payload).encode(), payload))
    target = TARGETS[wire]
    kind = PROVIDER_TYPES[wire]
    upstream = Provider("p", kind, kind, "http://127.0.0.1:9", None, None, MappingProxyType({}), Timeouts(5, 60, 180), 5, 30)

    def run() -> None:
        step = plan(SURFACES[client], target, out)
        assert step.error is None, step.error
        ADAPTERS[kind](upstream, "key", target, step.outbound)

    return timed(run, 5)


def answer_events() -> list[Event]:
    events: list[Event] = [Started("up_1", Usage(1200, 1000, 0, 1))]
    events += [TextDelta(f"word{i} ") for i in range(200)]
    events += [ToolCallStarted(0, "call_1", "exec_command"), *(ToolArguments(0, p) for p in ('{"cmd"', ': "ls', ' -la', '"}'))]
    events += [UsageSeen(Usage(1200, 1000, 0, 240)), Stopped("tool_use"), Finished()]
    return events


def upstream_stream(wire: str) -> list[bytes]:
    """The answer as `wire`'s upstream streams it, one item per SSE event."""
    writer = CODECS[wire].stream_writer(Request(stream=True, include_usage=True), "up", True)
    return [frame for event in answer_events() for frame in writer.write(event)]


def translator(client: str, wire: str) -> StreamTranslator:
    writer = CODECS[client].stream_writer(Request(stream=True, include_usage=True), "m", True)
    return StreamTranslator(HubStream(CODECS[wire].stream_reader(), writer))


def per_event(client: str, wire: str, frames: list[bytes]) -> float:
    def run() -> None:
        hub = translator(client, wire)
        for piece in frames:
            hub.feed(piece)
        hub.finish()

    return timed(run, 3) / len(frames)


def first_event(client: str, wire: str, frames: list[bytes]) -> float:
    """Until the client's first bytes: the upstream's first event, and its first text delta when
    the first event alone gives the client nothing (Gemini's writer waits for content)."""
    first = 2 if wire in ("chat", "gemini") else 3

    def run() -> None:
        hub = translator(client, wire)
        for piece in frames[:first]:
            if hub.feed(piece):
                return

    return timed(run, 200)


def main() -> None:
    bodies = requests()
    print("| client -> target | per request µs | per event µs | first event µs |")
    print("|---|---|---|---|")
    for client in SURFACES:
        for wire in SURFACES:
            if client == wire:
                continue
            frames = upstream_stream(wire)
            print(f"| {client} -> {wire} | {per_request(client, wire, bodies[client]):.1f} "
                  f"| {per_event(client, wire, frames):.2f} | {first_event(client, wire, frames):.1f} |")


if __name__ == "__main__":
    main()
