"""Provider credentials scrubbed from whatever reaches a client: relayed upstream bodies (whole
answers, stream events, relayed 4xx) and the gateway's own error messages.

A provider that echoes the request's `Authorization` or `x-api-key` header in its answer would
otherwise hand the gateway's key to every caller. The check runs on every relayed chunk, so it is
one substring test per distinct credential prefix (`sk-proj-`, `AIzaSy..`), and the replacing
happens only when one is found.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

REDACTED = b"[redacted credential]"
MIN_SECRET_CHARS = 8
"""Shorter values are not credentials any provider issues; replacing them would corrupt answers."""
NEEDLE_BYTES = 8


class CredentialScrubber:
    def __init__(self, secrets: Iterable[str]) -> None:
        values: set[bytes] = set()
        for secret in secrets:
            if len(secret) < MIN_SECRET_CHARS:
                continue
            raw = secret.encode()
            values.update((raw, orjson.dumps(secret)[1:-1], raw.replace(b"/", b"\\/")))
        self._values = tuple(sorted(values, key=len, reverse=True))
        self._needles = tuple({value[:NEEDLE_BYTES] for value in self._values})

    def __call__(self, data: bytes) -> bytes:
        """`data` without any credential's value."""
        for needle in self._needles:
            if needle in data:
                for value in self._values:
                    data = data.replace(value, REDACTED)
                return data
        return data

    def text(self, text: str) -> str:
        return self(text.encode()).decode(errors="replace") if self._needles else text
