"""Bedrock's event-stream frames: the test encoder's frames decode with botocore's own parser, and
the gateway relays the Messages events inside them as SSE, whole or split at any byte."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from runtime.exceptions import NotItsProtocol
from runtime.upstream.eventstream import EventStreamAnswer
from tests.support import claude_answers, eventstream

EVENTS = claude_answers.stream_events(claude_answers.message("anthropic.claude-haiku-4-5-20251001-v1:0", "hello there"))


class Chunks:
    """An upstream answer that arrives in the given pieces."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.status = 200
        self.headers = [(b"content-type", b"application/vnd.amazon.eventstream"), (b"x-amzn-requestid", b"abc")]
        self.pieces = pieces
        self.closed = False

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece

    async def read(self) -> bytes:
        return b"".join(self.pieces)

    async def aclose(self) -> None:
        self.closed = True

    async def end(self) -> None:
        self.closed = True


def relayed(pieces: list[bytes]) -> bytes:
    return asyncio.run(EventStreamAnswer(Chunks(pieces)).read())


def test_encoded_frames_decode_with_botocores_parser() -> None:
    frames = EventStreamBuffer()
    frames.add_data(b"".join(eventstream.chunk(event) for event in EVENTS) + eventstream.exception("throttlingException", "slow down"))
    messages = list(frames)
    assert len(messages) == len(EVENTS) + 1
    first = messages[0]
    assert first.headers == {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    assert messages[-1].headers[":exception-type"] == "throttlingException"


def test_a_corrupted_frame_fails_botocores_checksum() -> None:
    frame = bytearray(eventstream.chunk(EVENTS[0]))
    frame[-10] ^= 0xFF
    frames = EventStreamBuffer()
    frames.add_data(bytes(frame))
    with pytest.raises(ChecksumMismatch):
        list(frames)


@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
def test_frames_split_anywhere_relay_as_the_messages_events_they_carry(size: int) -> None:
    data = b"".join(eventstream.chunk(event) for event in EVENTS)
    sse = relayed([data[i:i + size] for i in range(0, len(data), size)]).decode()
    blocks = [b for b in sse.split("\n\n") if b]
    assert [b.splitlines()[0] for b in blocks] == [f"event: {e['type']}" for e in EVENTS]
    assert [json.loads(b.splitlines()[1][len("data: "):]) for b in blocks] == EVENTS


def test_an_exception_frame_becomes_anthropics_in_band_error_event() -> None:
    sse = relayed([eventstream.chunk(EVENTS[0]), eventstream.exception("throttlingException", "Too many tokens")]).decode()
    error = json.loads(sse.split("event: error\ndata: ")[1])
    assert error == {"type": "error", "error": {"type": "rate_limit_error",
                                                "message": "Bedrock throttlingException: Too many tokens"}}


def test_the_answer_is_labelled_as_the_sse_it_now_is() -> None:
    answer = EventStreamAnswer(Chunks([]))
    assert (b"content-type", b"text/event-stream") in answer.headers and (b"x-amzn-requestid", b"abc") in answer.headers
    assert (b"content-type", b"application/vnd.amazon.eventstream") not in answer.headers


def test_bytes_that_are_not_an_event_stream_are_not_its_protocol() -> None:
    with pytest.raises(NotItsProtocol):
        relayed([b"<html>" + b"x" * 64 + b"</html>"])
