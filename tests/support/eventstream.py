"""An AWS event-stream frame encoder for the mock Bedrock (botocore only parses them).

A frame: total length and headers length (big-endian uint32), the CRC32 of those 8 bytes, the
headers, the payload, and the CRC32 of everything before it. A header: its name's length (one
byte), the name, its value type (7: string), the value's length (uint16) and the value.
"""

from __future__ import annotations

import base64
import json
import struct
from binascii import crc32
from typing import Any

STRING = 7


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", crc32(message))


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", STRING, len(raw_value)) + raw_value


def chunk(event: dict[str, Any]) -> bytes:
    """A Bedrock `chunk` event carrying one Messages stream event, base64 in `bytes`."""
    payload = json.dumps({"bytes": base64.b64encode(json.dumps(event).encode()).decode(), "p": "abcd"}).encode()
    return frame({":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}, payload)


def exception(kind: str, message: str) -> bytes:
    """An exception frame, as Bedrock sends one mid-stream (`throttlingException`, ...)."""
    payload = json.dumps({"message": message}).encode()
    return frame({":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}, payload)
