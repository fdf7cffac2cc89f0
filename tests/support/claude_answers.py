"""Claude's answers as the mock Bedrock and Vertex give them: a Messages `message`, and the stream
events that spell it out."""

from __future__ import annotations

import uuid
from typing import Any

INPUT_TOKENS = 11
OUTPUT_TOKENS = 5


def message(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "msg_" + uuid.uuid4().hex[:12], "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS,
                  "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
    }


def stream_events(answer: dict[str, Any]) -> list[dict[str, Any]]:
    text = answer["content"][0]["text"]
    start = {**answer, "content": [], "stop_reason": None, "usage": {**answer["usage"], "output_tokens": 1}}
    words = text.split(" ")
    deltas = [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word + " " * (i < len(words) - 1)}}
              for i, word in enumerate(words)]
    return [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *deltas,
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": OUTPUT_TOKENS}},
        {"type": "message_stop"},
    ]
