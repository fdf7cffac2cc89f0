"""The JSON body an adapter sends upstream.

When a request reaches its target as the client wrote it (no translation, no cache rewrite, no
added `stream_options`), the client's own bytes are sent, with only the top-level `model` spliced
in or cut out. Re-serialising would change whitespace, escapes and number formats, and
`respect` promises the client's cache directives byte for byte: providers key their
prompt caches on the exact prefix.
"""

from __future__ import annotations

import re

import orjson

from .base import Outbound

_KEY = b'"model"'
_COLON = re.compile(rb"[ \t\r\n]*:[ \t\r\n]*")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_SPACE = b" \t\r\n"
_LEADING = re.compile(rb"[ \t\r\n]*")
_TRAILING = re.compile(rb"[ \t\r\n]*\}[ \t\r\n]*\Z")


def with_model(out: Outbound, model: str) -> bytes:
    """The body with its top-level `model` set to `model`."""
    raw = _client_bytes(out)
    if raw is not None:
        if out.payload.get("model") == model:
            return raw
        found = _model_value(raw)
        if found is not None:
            _, start, end = found
            return raw[:start] + orjson.dumps(model) + raw[end:]
    return orjson.dumps({**out.payload, "model": model})


def without_model(out: Outbound) -> bytes:
    """The body without its top-level `model` (the model is in the URL)."""
    raw = _client_bytes(out)
    if raw is not None:
        if "model" not in out.payload:
            return raw
        found = _model_member(raw)
        if found is not None:
            start, end = found
            return raw[:start] + raw[end:]
    return orjson.dumps({k: v for k, v in out.payload.items() if k != "model"})


def _client_bytes(out: Outbound) -> bytes | None:
    raw = out.raw
    return raw.data if raw is not None and raw.payload is out.payload else None


def _model_value(raw: bytes) -> tuple[int, int, int] | None:
    """(start of the key, start and end of its string value) of the one top-level "model" member
    with a string value, or None. Members whose value is not a string (a tool schema's "model"
    property) are passed over without measuring their depth, which is what costs."""
    found = None
    at = raw.find(_KEY)
    while at >= 0:
        before = _skip_space_back(raw, at - 1)
        colon = _COLON.match(raw, at + len(_KEY))
        value = _STRING.match(raw, colon.end()) if colon is not None and raw[before:before + 1] in (b"{", b",") else None
        if value is not None and _top_level(raw, before, at, value.end()):
            if found is not None:
                return None
            found = (at, value.start(), value.end())
        at = raw.find(_KEY, at + 1)
    return found


def _model_member(raw: bytes) -> tuple[int, int] | None:
    """The span to cut so the object loses its "model" member and stays valid JSON."""
    found = _model_value(raw)
    if found is None:
        return None
    start, _, end = found
    after = end
    while raw[after:after + 1] in (b" ", b"\t", b"\r", b"\n"):
        after += 1
    if raw[after:after + 1] == b",":
        return start, after + 1
    comma = _skip_space_back(raw, start - 1)
    return (comma, end) if raw[comma:comma + 1] == b"," else (start, end)


def _skip_space_back(raw: bytes, i: int) -> int:
    """The index of the last non-space byte at or before i."""
    while i > 0 and raw[i] in _SPACE:
        i -= 1
    return i


def _top_level(raw: bytes, before: int, at: int, end: int) -> bool:
    """Whether the member at `at` belongs to the outermost object: at once when it is the first
    or the last member, else by counting brackets."""
    leading = _LEADING.match(raw)
    if raw[before:before + 1] == b"{" and leading is not None and leading.end() == before:
        return True
    if _TRAILING.match(raw, end) is not None:
        return True
    return _depth(raw, at) == 1


def _depth(raw: bytes, at: int) -> int:
    """How deep position `at` (outside any string) is nested, counted on the shorter side."""
    if at <= len(raw) // 2:
        return _balance(raw[:at])
    return -_balance(raw[at:])


def _balance(part: bytes) -> int:
    """Opened minus closed brackets outside strings, for a slice that starts outside a string."""
    unescaped = part.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[::2])
    return outside.count(b"{") + outside.count(b"[") - outside.count(b"}") - outside.count(b"]")
