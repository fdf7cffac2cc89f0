"""The gateway's bounds on client connections, seen by clients on raw sockets and httpx: header,
body and idle timeouts, header size and count, open connections and requests in flight."""

from __future__ import annotations

import json
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ALICE_KEY, UPSTREAM_AZURE_SECRET, UPSTREAM_OPENAI_SECRET, policy_text
from tests.support.apps import app_from
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

AUTH = {"authorization": f"Bearer {ALICE_KEY}"}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
SURFACES = {
    "openai": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "gemini": "/v1beta/models/gpt-4o:generateContent",
}
EOF_BOUND_S = 30
"""Bounds a failing test's wait for the proxy to close a connection; a passing one waits on the EOF."""


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Start the proxy on a policy whose `gateway:` has these settings; yields (proxy, upstream)."""
    monkeypatch.setenv("E2E_OPENAI_KEY", UPSTREAM_OPENAI_SECRET)
    monkeypatch.setenv("E2E_AZURE_KEY", UPSTREAM_AZURE_SECRET)
    with MockUpstream() as upstream:

        @contextmanager
        def start(**gateway: object) -> Iterator[tuple[ServerThread, MockUpstream]]:
            policy = tmp_path / "policy"
            policy.mkdir(exist_ok=True)
            settings = "".join(f"  {name}: {value}\n" for name, value in gateway.items())
            text = policy_text(upstream.base_url).replace("  max_body_bytes: 65536\n", f"  max_body_bytes: 65536\n{settings}")
            (policy / "policy.yaml").write_text(text)
            with ServerThread(app_from(policy)) as proxy:
                yield proxy, upstream

        yield start


def connect(proxy: ServerThread) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=EOF_BOUND_S)


def until_eof(sock: socket.socket) -> bytes:
    """Everything the proxy sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def status_and_body(answer: bytes) -> tuple[int, dict[str, bytes], Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(b":") for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


def assert_shape(surface: str, body: Any, status: int, code: str) -> None:
    if surface == "openai":
        assert body["error"]["code"] == code, body
    elif surface == "anthropic":
        assert body["type"] == "error" and body["error"]["code"] == code, body
    else:
        assert body["error"]["code"] == status and body["error"]["details"][0]["reason"] == code, body


def test_trickling_connections_do_not_starve_a_client_and_are_closed_at_the_header_timeout(serve: Any) -> None:
    with serve(header_timeout_s=1) as (proxy, _):
        tricklers = [connect(proxy) for _ in range(200)]
        for n, sock in enumerate(tricklers):
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gatepost\r\nX-Trickle-%d: 1\r\n" % n)
        answered = httpx.post(proxy.base_url + "/v1/chat/completions", json=CHAT, headers=AUTH, timeout=10)
        assert answered.status_code == 200
        for sock in tricklers:
            sock.setblocking(False)
        open_now = sum(1 for sock in tricklers if _still_open(sock))
        assert open_now == 200, "the client was answered while every trickler was open"

        answers = _trickle_until_closed(tricklers)
        assert len(answers) == 200
        for answer in answers:
            status, headers, body = status_and_body(answer)
            assert status == 408 and headers[b"connection"] == b"close"
            assert_shape("openai", body, 408, "request_timeout")
            assert "gateway.header_timeout_s" in body["error"]["message"]
        metrics = httpx.get(proxy.base_url + "/metrics").text
        assert 'gatepost_client_connections_closed_total{reason="header_timeout"} 200' in metrics


def _still_open(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True


def _trickle_until_closed(tricklers: list[socket.socket]) -> list[bytes]:
    """Send each open trickler one more header line whenever none has news, until the proxy has
    closed every one; returns what each received."""
    selector = selectors.DefaultSelector()
    received = dict.fromkeys(tricklers, b"")
    for sock in tricklers:
        selector.register(sock, selectors.EVENT_READ)
    deadline = time.monotonic() + EOF_BOUND_S
    line = 0
    while selector.get_map() and time.monotonic() < deadline:
        ready = selector.select(timeout=0.1)
        if not ready:
            line += 1
            for key in list(selector.get_map().values()):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    sock.send(b"X-Line-%d: more\r\n" % line)
                except OSError:
                    pass
        for key, _ in ready:
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                continue
            if chunk:
                received[sock] += chunk
            else:
                selector.unregister(sock)
                sock.close()
    assert not selector.get_map(), f"{len(selector.get_map())} tricklers still open"
    return list(received.values())


def test_a_silent_connection_and_an_idle_one_are_closed(serve: Any) -> None:
    with serve(header_timeout_s=0.5, idle_timeout_s=0.2) as (proxy, _):
        silent = connect(proxy)
        assert until_eof(silent) == b"", "a connection that never sent a byte is closed without an answer"
        idle = connect(proxy)
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: gatepost\r\n\r\n")
        first = idle.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        idle.settimeout(4)
        assert until_eof(idle) == b"", "closed after its idle timeout (uvicorn's own is 5 s)"


def test_a_body_shorter_than_its_content_length_gets_408_at_the_body_timeout(serve: Any) -> None:
    with serve(body_timeout_s=0.5) as (proxy, upstream):
        for surface, path in SURFACES.items():
            sock = connect(proxy)
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: gatepost\r\nAuthorization: Bearer {ALICE_KEY}\r\n"
                         "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n".encode() + b'{"model": "gpt')
            status, headers, body = status_and_body(until_eof(sock))
            assert status == 408 and headers[b"connection"] == b"close", surface
            assert_shape(surface, body, 408, "request_timeout")
            assert "gateway.body_timeout_s" in json.dumps(body)
        proxy.wait_idle()
        assert upstream.requests == [], "a body cut short is never forwarded"
        assert httpx.post(proxy.base_url + "/v1/chat/completions", json=CHAT, headers=AUTH).status_code == 200


@pytest.mark.parametrize("surface", SURFACES)
def test_oversize_headers_and_too_many_headers_get_431(serve: Any, surface: str) -> None:
    path = SURFACES[surface]
    with serve() as (proxy, upstream):
        big = {**AUTH, "x-padding": "a" * 100_000}
        many = {**AUTH, **{f"x-header-{n}": "1" for n in range(5000)}}
        for headers, says in ((big, "gateway.max_header_bytes"), (many, "gateway.max_headers")):
            r = httpx.post(proxy.base_url + path, json=CHAT, headers=headers)
            assert r.status_code == 431 and r.headers["connection"] == "close"
            assert_shape(surface, r.json(), 431, "headers_too_large")
            assert says in r.text and r.headers["x-langwatch-policy-revision"]
            assert len(r.headers["x-request-id"]) == 32, "answers the protocol writes carry a request id too"
        assert upstream.requests == []
        assert httpx.post(proxy.base_url + "/v1/chat/completions", json=CHAT, headers=AUTH).status_code == 200


def test_requests_beyond_max_in_flight_get_503_overloaded_in_each_surfaces_shape(serve: Any) -> None:
    with serve(max_in_flight=2) as (proxy, upstream):
        upstream.fail(hold=True, times=2)
        held: list[int] = []
        threads = [threading.Thread(target=lambda: held.append(
            httpx.post(proxy.base_url + "/v1/chat/completions", json=CHAT, headers=AUTH, timeout=30).status_code
        )) for _ in range(2)]
        for thread in threads:
            thread.start()
        upstream.wait_for_requests(2)
        for surface, path in SURFACES.items():
            r = httpx.post(proxy.base_url + path, json=CHAT, headers=AUTH)
            assert r.status_code == 503 and r.headers["retry-after"] == "2", surface
            assert_shape(surface, r.json(), 503, "overloaded")
            assert "gateway.max_in_flight" in r.text and r.headers["x-langwatch-fallback-count"] == "0"
        assert httpx.get(proxy.base_url + "/healthz").status_code == 200
        upstream.release()
        for thread in threads:
            thread.join()
        assert held == [200, 200]
        assert httpx.post(proxy.base_url + "/v1/chat/completions", json=CHAT, headers=AUTH).status_code == 200
        assert len(upstream.requests) == 3


def test_connections_beyond_max_connections_get_503_overloaded_in_each_surfaces_shape(serve: Any) -> None:
    with serve(max_connections=3, header_timeout_s=60) as (proxy, _):
        holders = [connect(proxy) for _ in range(3)]
        for sock in holders:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gatepost\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        for surface, path in SURFACES.items():
            r = httpx.post(proxy.base_url + path, json=CHAT, headers=AUTH)
            assert r.status_code == 503 and r.headers["retry-after"] == "2", surface
            assert r.headers["connection"] == "close"
            assert_shape(surface, r.json(), 503, "overloaded")
            assert "gateway.max_connections" in r.text
        assert httpx.get(proxy.base_url + "/healthz").status_code == 200, "health is answered beyond the cap"
        assert 'reason="max_connections"} 3' in httpx.get(proxy.base_url + "/metrics").text
        for sock in holders:
            sock.close()
        wait_until(lambda: httpx.post(proxy.base_url + "/v1/chat/completions", json=CHAT, headers=AUTH).status_code == 200)
