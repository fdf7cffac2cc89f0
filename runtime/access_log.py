"""One JSON line per request: who (VK id and key prefix, never the key), what, where it went, how it ended."""

from __future__ import annotations

import sys
from typing import Any, TextIO

import orjson


class AccessLog:
    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self._stream = stream
        self.enabled = enabled

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        stream = self._stream or sys.stderr
        stream.write(orjson.dumps(record).decode() + "\n")
        stream.flush()


class EventLog(AccessLog):
    """Operational events (reloads, start-up problems) as JSON lines, beside the access log."""

    def event(self, event: str, **fields: Any) -> None:
        self.write({"event": event, **fields})
