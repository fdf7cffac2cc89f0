"""The parent of `policy serve --workers`, before any worker serves: a 503 at once, not a wait."""

from __future__ import annotations

import select
import socket
import threading

import httpx

from runtime.starting import answer_starting


def answering(listener: socket.socket, count: int) -> threading.Thread:
    def run() -> None:
        for _ in range(count):
            select.select([listener], [], [], 10)
            answer_starting(listener)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_readyz_and_requests_are_503_while_the_table_loads_and_healthz_is_live() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        thread = answering(listener, 3)
        ready = httpx.get(base + "/readyz?verbose=1")
        assert ready.status_code == 503 and ready.headers["retry-after"] == "1"
        assert ready.json() == {"status": "not_ready", "reasons": ["table_not_loaded"]}
        assert httpx.post(base + "/v1/chat/completions", json={"model": "gpt-4o"}).status_code == 503
        assert httpx.get(base + "/healthz").json() == {"status": "ok"}
        thread.join(timeout=10)
