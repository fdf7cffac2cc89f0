"""The event framer: whole events out, an event held in pieces until it ends, bounded in size, and
the final event of each protocol noticed as it is relayed."""

from __future__ import annotations

import pytest

from runtime.exceptions import AnswerTooLarge
from runtime.streams import EventFramer

LIMIT = 64 * 1024


def test_events_split_anywhere_come_out_whole() -> None:
    stream = b'data: {"a": 1}\n\ndata: {"b": 2}\r\n\r\ndata: [DONE]\n\n'
    for size in (1, 2, 3, 5, 7, len(stream)):
        framer = EventFramer("chat", LIMIT)
        out = b"".join(framer.feed(stream[i:i + size]) for i in range(0, len(stream), size))
        assert out == stream and framer.ended and framer.close() == (b"", True)


@pytest.mark.parametrize("size", [1000, 1023, 4096])
def test_a_large_event_gathered_in_pieces_comes_out_whole(size: int) -> None:
    stream = b'data: {"x": "' + b"a" * 300_000 + b'"}\r\n\r\n' + b"data: [DONE]\n\n"
    framer = EventFramer("chat", 1024 * 1024)
    out = b"".join(framer.feed(stream[i:i + size]) for i in range(0, len(stream), size))
    assert out == stream and framer.ended


def test_an_event_growing_past_the_limit_raises_naming_it() -> None:
    framer = EventFramer("chat", LIMIT)
    framer.feed(b'data: {"x": "')
    with pytest.raises(AnswerTooLarge, match=r"gateway.max_event_bytes \(65,536 bytes\)"):
        for _ in range(LIMIT // 1024 + 1):
            framer.feed(b"a" * 1024)


def test_whole_events_before_a_too_large_one_are_relayed_first() -> None:
    framer = EventFramer("chat", LIMIT)
    first = b'data: {"a": 1}\n\n'
    assert framer.feed(first + b"a" * (LIMIT + 1)) == first
    with pytest.raises(AnswerTooLarge):
        framer.feed(b"a")


def test_an_event_over_the_limit_that_arrives_whole_raises() -> None:
    with pytest.raises(AnswerTooLarge):
        EventFramer("chat", LIMIT).feed(b'data: {"x": "' + b"a" * LIMIT + b'"}\n\n')


@pytest.mark.parametrize(("wire", "last"), [
    ("chat", b"data: [DONE]\n\n"),
    ("responses", b'event: response.completed\ndata: {"type": "response.completed"}\n\n'),
    ("responses", b'event: response.incomplete\ndata: {"type": "response.incomplete"}\n\n'),
    ("messages", b'event: message_stop\ndata: {"type": "message_stop"}\n\n'),
    ("gemini", b'data: {"candidates": [{"finishReason": "STOP"}]}\n\n'),
])
def test_the_final_event_of_each_protocol_ends_the_stream(wire: str, last: bytes) -> None:
    framer = EventFramer(wire, LIMIT)
    framer.feed(b'data: {"type": "ping", "text": "[DONE] message_stop finishReason"}\n\n')
    assert not framer.ended
    framer.feed(last)
    assert framer.ended
