"""What `policy serve --workers` answers before any worker serves: the parent holds the bound port
while the workers load their table, and a load balancer's probe (or any request) gets a 503 saying
so at once, rather than waiting in the listening backlog for as long as the load takes.

Only until the first worker says it serves: after that a worker that is loading (a replacement)
leaves the connections to the ones serving.
"""

from __future__ import annotations

import socket

import orjson

HEAD_LIMIT = 16384
READ_TIMEOUT_S = 0.5
"""How long the parent waits for a request's head: it answers one connection at a time."""


def not_ready_answer(path: bytes) -> bytes:
    if path == b"/healthz":
        status, body = b"200 OK", b'{"status":"ok"}'
    else:
        status, body = b"503 Service Unavailable", orjson.dumps({"status": "not_ready", "reasons": ["table_not_loaded"]})
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"retry-after: 1\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def answer_starting(listener: socket.socket) -> None:
    """Accept one waiting connection, if there is one, and answer that the server is starting."""
    try:
        conn, _ = listener.accept()
    except (BlockingIOError, OSError):
        return
    with conn:
        conn.settimeout(READ_TIMEOUT_S)
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < HEAD_LIMIT:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            target = head.split(b"\r\n", 1)[0].split(b" ")
            path = target[1].split(b"?", 1)[0] if len(target) > 1 else b""
            conn.sendall(not_ready_answer(path))
        except OSError:
            return
