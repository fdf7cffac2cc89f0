"""Request ids: the client's `x-request-id` when it is one a log and a header can carry safely,
else a new one. Every answer returns it, the access log records it and the provider is sent it,
so one id follows a request from the client through the gateway to the provider.

A client's id that is too long or holds other characters is replaced, not refused: the request is
the client's business, the id only a label (and one that could forge log lines or headers is no
label). A new id is 128 random bits in hex: unique across replicas without coordination. They come
from `random` (reseeded in every forked child) rather than the OS: an id needs to be unique, not
secret (a client may send any id it likes), and a system call per request is not free.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterable

HEADER = b"x-request-id"
MAX_LENGTH = 128
ALLOWED = (string.ascii_letters + string.digits + "-_.:+/=").encode()
"""UUIDs, prefixed ids (`req_...`), base64 and W3C trace ids; nothing a header or a log line would
read as structure."""


def request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The request's id: its first `x-request-id` if that one is valid, else a new one."""
    for name, value in headers:
        if name == HEADER:
            if 0 < len(value) <= MAX_LENGTH and not value.translate(None, ALLOWED):
                return value.decode("ascii")
            break
    return new_request_id()


def new_request_id() -> str:
    return random.getrandbits(128).to_bytes(16).hex()
