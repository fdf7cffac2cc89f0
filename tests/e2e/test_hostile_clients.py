"""Bad input from clients, sent over raw sockets to `policy serve` running as a process: each case
gets its status in the shape of its surface's SDK (or a clean close where HTTP allows no answer),
no traceback in the answer or the proxy's output, the proxy healthy afterwards, and its memory
bounded.

`test_proxy_contract.py` covers the gateway's answers to well-formed requests; this module covers
what is not well-formed, or is well-formed in ways meant to hurt."""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ALICE_KEY, UPSTREAM_AZURE_SECRET, UPSTREAM_OPENAI_SECRET, policy_text
from tests.support.proxy_process import ProxyProcess
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e

KEY = f"Authorization: Bearer {ALICE_KEY}\r\n"
CHAT = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}'
RSS_GROWTH_BOUND_KB = 200 * 1024
"""What the bad inputs may add to the proxy's resident memory, peak included: a 50 MB body must
never be held whole (the body limit is 10 MiB), nor a million-deep nesting parsed."""
ANSWER_BOUND_S = 30
"""Bounds a failing case's wait for an answer; a passing case waits on the answer or the close."""


@dataclass(frozen=True)
class Proxy:
    process: ProxyProcess
    upstream: MockUpstream
    baseline_rss_kb: int

    @property
    def pid(self) -> int:
        assert self.process.proc is not None
        return self.process.proc.pid


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    root = tmp_path_factory.mktemp("hostile")
    policy = root / "policy"
    policy.mkdir()
    env = {"E2E_OPENAI_KEY": UPSTREAM_OPENAI_SECRET, "E2E_AZURE_KEY": UPSTREAM_AZURE_SECRET}
    with MockUpstream() as upstream:
        text = policy_text(upstream.base_url).replace(
            "  max_body_bytes: 65536\n", "  header_timeout_s: 1\n  body_timeout_s: 1\n"
        )
        (policy / "policy.yaml").write_text(text)
        with ProxyProcess(policy, root / "serve.log", env, "--no-watch") as process:
            yield Proxy(process, upstream, _memory(process.proc.pid if process.proc else 0)["VmRSS"])


def _memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak) of a process, in kB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class _KeptOpen(io.BufferedReader):
    """One buffered reader for every answer of a connection: `http.client` closes its reader after
    an answer with `Connection: close`, and a reader per answer would swallow the next one."""

    def close(self) -> None:
        pass


class _Connection:
    """A raw socket: bytes go out as given (from a thread, so a proxy that answers before reading
    everything is not blocked by our sending), answers are read as HTTP/1.1 responses in order."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_BOUND_S)
        self._file = _KeptOpen(socket.SocketIO(self.sock, "rb"))

    def makefile(self, *args: object, **kwargs: object) -> io.BufferedReader:
        return self._file

    def send(self, *parts: bytes) -> threading.Thread:
        def run() -> None:
            try:
                for part in parts:
                    self.sock.sendall(part)
            except OSError:
                pass

        sender = threading.Thread(target=run, daemon=True)
        sender.start()
        return sender

    def answer(self) -> Answer | None:
        """The next answer, or None when the proxy closed the connection without one."""
        response = http.client.HTTPResponse(self)  # type: ignore[arg-type]
        try:
            response.begin()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            return None
        return Answer(response.status, response.headers, response.read())

    def closed(self) -> bool:
        try:
            return self._file.read() == b""
        except ConnectionResetError:
            return True


@dataclass(frozen=True)
class Case:
    request: tuple[bytes, ...]
    status: int | None
    """None: HTTP allows no answer, the connection is closed."""
    shape: str = "openai"
    code: str | None = None
    then: tuple[int, ...] = ()
    """Statuses of the answers that follow on the same connection (pipelining)."""


def head(method: str, target: str, *headers: str, body: bytes = b"", close: bool = True) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: gatepost", *headers]
    if body and not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def post(path: str, body: bytes, *headers: str, close: bool = True) -> bytes:
    return head("POST", path, KEY.strip(), "Content-Type: application/json", *headers, body=body, close=close)


def chunked(size: int, piece: int = 1 << 20) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        n = min(piece, size - sent)
        yield b"%x\r\n" % n + b"x" * n + b"\r\n"
        sent += n
    yield b"0\r\n\r\n"


def _cases() -> dict[str, Case]:
    chat, messages, gemini = "/v1/chat/completions", "/v1/messages", "/v1beta/models/gpt-4o:generateContent"
    fifty_mb = 50 * 1024 * 1024
    deep = b"[" * 1_000_000
    return {
        "malformed json": Case((post(chat, b'{"model": "gpt-4o", "messages": [}'),), 400, code="invalid_json"),
        "malformed json (anthropic)": Case((post(messages, b"{'model': 1}"),), 400, "anthropic", "invalid_json"),
        "malformed json (gemini)": Case((post(gemini, b"{"),), 400, "gemini", "invalid_json"),
        "empty body": Case((post(chat, b"", "Content-Length: 0"),), 400, code="invalid_json"),
        "a json array": Case((post(chat, b"[1, 2]"),), 400, code="invalid_request_error"),
        "a json string": Case((post(chat, b'"hi"'),), 400, code="invalid_request_error"),
        "model of the wrong type": Case((post(chat, b'{"model": 5, "messages": "hi"}'),), 400),
        "model an object": Case((post(chat, b'{"model": {"$ne": null}, "messages": []}'),), 400),
        "messages of the wrong type": Case((post(chat, b'{"model": "gpt-4o", "messages": 5}'),), 200, shape=""),
        "50 MB body (Content-Length)": Case((post(chat, b"", f"Content-Length: {fifty_mb}"),), 400,
                                            code="request_too_large"),
        "50 MB body (chunked)": Case((post(chat, b"", "Transfer-Encoding: chunked"), *chunked(fifty_mb)), 400,
                                     code="request_too_large"),
        "a million [": Case((post(chat, deep),), 400, code="invalid_json"),
        "a million [ (anthropic)": Case((post(messages, deep),), 400, "anthropic", "invalid_json"),
        "invalid utf-8": Case((post(chat, b'{"model": "gpt-4o\xff\xfe", "messages": []}'),), 400, code="invalid_json"),
        "lone surrogate escape": Case((post(chat, b'{"model": "\\ud800", "messages": []}'),), 400, code="invalid_json"),
        "nul in the body": Case((post(chat, b'{"model": "gpt-4o\x00", "messages": []}'),), 400, code="invalid_json"),
        "nul in a header": Case((post(chat, CHAT, "X-Nul: a\x00b"),), 400, code="malformed_http"),
        "nul in the path": Case((head("GET", "/v1/\x00models"),), 400, code="malformed_http"),
        "encoded nul in the path": Case((head("GET", "/v1/%00models"),), 404, code="not_found"),
        "5,000 headers": Case((post(chat, CHAT, *(f"X-H{n}: 1" for n in range(5000))),), 431,
                              code="headers_too_large"),
        "100 KB header": Case((post(messages, CHAT, "X-Big: " + "a" * 100_000),), 431, "anthropic",
                              "headers_too_large"),
        "100 KB target": Case((head("GET", "/" + "a" * 100_000),), 431, code="headers_too_large"),
        "10 MB header, never ended": Case((b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 10_000_000,), 431,
                                          code="headers_too_large"),
        "content-length and transfer-encoding": Case(
            (post(chat, b"0\r\n\r\n", "Content-Length: 5", "Transfer-Encoding: chunked"),), 400, code="malformed_http"),
        "two content-lengths": Case((post(chat, CHAT, f"Content-Length: {len(CHAT)}", "Content-Length: 3"),), 400,
                                    code="malformed_http"),
        "content-length list": Case((post(chat, CHAT, f"Content-Length: {len(CHAT)}, {len(CHAT)}"),), 400,
                                    code="malformed_http"),
        "negative content-length": Case((post(chat, b"", "Content-Length: -1"),), 400, code="malformed_http"),
        "content-length overflow": Case((post(chat, b"", "Content-Length: 99999999999999999999999"),), 400,
                                        code="malformed_http"),
        "bad chunk size": Case((post(chat, b"zz\r\nabc\r\n0\r\n\r\n", "Transfer-Encoding: chunked"),), 400,
                               code="malformed_http"),
        "chunk size overflow": Case((post(chat, b"fffffffffffffffffff\r\n", "Transfer-Encoding: chunked"),), 400,
                                    code="malformed_http"),
        "transfer-encoding not chunked": Case((post(chat, CHAT, "Transfer-Encoding: gzip"),), 400,
                                              code="malformed_http"),
        "transfer-encoding chunked twice": Case(
            (post(chat, b"0\r\n\r\n", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"),), 400,
            code="malformed_http"),
        "obsolete line folding": Case((post(chat, CHAT, "X-Folded: a\r\n b"),), 400, code="malformed_http"),
        "bare cr in a header": Case((post(chat, CHAT, "X-A: b\rX-B: c"),), 400, code="malformed_http"),
        "space before the colon": Case((post(chat, CHAT, "Content-Length : 3"),), 400, code="malformed_http"),
        "crlf injected through the path": Case((head("GET", "/x%0d%0aSet-Cookie:%20a=b"),), 404, code="not_found"),
        "pipelined requests": Case(
            (head("GET", "/healthz", close=False) + post(chat, CHAT, close=False) + head("GET", "/readyz"),), 200,
            shape="", then=(200, 200)),
        "pipelined before a malformed one": Case(
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\nFOO\x01 / HTTP/1.1\r\n\r\n",),
            200, shape="", then=(200, 400)),
        "absolute-form target": Case((post("http://evil.example/v1/chat/completions", CHAT),), 200, shape=""),
        "asterisk target": Case((head("OPTIONS", "*"),), 404, code="not_found"),
        "dot segments": Case((head("GET", "/v1/../../etc/passwd"),), 404, code="not_found"),
        "double slashes": Case((post("//v1//chat/completions", CHAT),), 404, code="not_found"),
        "authority-form target": Case((head("CONNECT", "evil.example:443"),), 400, code="malformed_http"),
        "unknown method": Case((head("FOO", "/v1/chat/completions"),), 400, code="malformed_http"),
        "lowercase method": Case((head("post", "/v1/chat/completions"),), 400, code="malformed_http"),
        "method not allowed": Case((head("DELETE", "/v1/chat/completions"),), 405, code="method_not_allowed"),
        "http/2 preface": Case((b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",), 400, code="malformed_http"),
        "tls client hello": Case((bytes.fromhex("160301020001000200030300") + b"\x00" * 64,), 400,
                                 code="malformed_http"),
        "http/0.9": Case((b"GET /healthz\r\n\r\n",), 200, shape=""),
        "http/1.0 without host": Case((b"GET /healthz HTTP/1.0\r\n\r\n",), 200, shape=""),
        "unsupported version": Case((b"GET /healthz HTTP/3.7\r\nHost: x\r\n\r\n",), 400, code="malformed_http"),
        "websocket upgrade": Case((head("GET", "/v1/responses", "Upgrade: websocket", "Connection: Upgrade",
                                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"),),
                                  405, code="method_not_allowed"),
        "expect 100-continue over the limit": Case(
            (post(chat, b"", "Expect: 100-continue", f"Content-Length: {fifty_mb}"),), 400, code="request_too_large"),
        "a 10 KB bearer token": Case((head("POST", chat, "Authorization: Bearer " + "k" * 10_000, body=CHAT),), 401,
                                     code="invalid_api_key"),
        "a key with control characters": Case((head("POST", chat, "X-Api-Key: gp-\x7f\x01", body=CHAT),), 400,
                                              code="malformed_http"),
        "slowloris": Case((b"POST /v1/chat/completions HTTP/1.1\r\n", b"Host: gatepost\r\n", b"X-Slow: 1\r\n"), 408,
                          code="request_timeout"),
        "a body that never comes": Case((post(chat, b'{"model": ', f"Content-Length: {len(CHAT)}"),), 408,
                                        code="request_timeout"),
        "nothing at all": Case((b"",), None),
        "garbage bytes": Case((bytes(range(256)) * 4,), 400, code="malformed_http"),
    }


CASES = _cases()


@pytest.mark.parametrize("name", CASES)
def test_bad_input_gets_a_typed_answer_and_leaves_the_proxy_healthy(proxy: Proxy, name: str) -> None:
    case = CASES[name]
    log = proxy.process.log
    log_before = log.stat().st_size
    conn = _Connection(proxy.process.port)
    conn.send(*case.request)
    answers = [conn.answer() for _ in range(1 + len(case.then))]
    if case.status is None:
        assert answers == [None] and conn.closed()
    else:
        assert [a.status if a else None for a in answers] == [case.status, *case.then], name
        first = answers[0]
        assert first is not None
        assert b"Traceback" not in first.body and b"Exception" not in first.body
        if case.shape:
            _assert_shape(case, first)
        assert conn.closed(), "every case ends with the connection closed"
    conn.sock.close()

    assert httpx.get(proxy.process.base_url + "/healthz", timeout=10).status_code == 200
    output = log.read_bytes()[log_before:]
    assert b"Traceback" not in output and b"Exception in ASGI" not in output, output[-2000:].decode("latin-1")
    memory = _memory(proxy.pid)
    grown = {k: v - proxy.baseline_rss_kb for k, v in memory.items()}
    assert grown["VmHWM"] < RSS_GROWTH_BOUND_KB, grown


def _assert_shape(case: Case, answer: Answer) -> None:
    assert answer.headers["content-type"] == "application/json"
    body: Any = json.loads(answer.body)
    if case.shape == "openai":
        error = body["error"]
        assert set(error) >= {"message", "type", "code", "param"}, body
        code = error["code"]
    elif case.shape == "anthropic":
        assert body["type"] == "error" and set(body["error"]) >= {"type", "message"}, body
        code = body["error"]["code"]
    else:
        assert body["error"]["code"] == case.status and body["error"]["status"], body
        code = body["error"]["details"][0]["reason"]
    if case.code is not None:
        assert code == case.code, body


def test_the_absolute_form_host_is_not_where_the_request_goes(proxy: Proxy) -> None:
    conn = _Connection(proxy.process.port)
    count = len(proxy.upstream.requests)
    conn.send(post("http://evil.example/v1/chat/completions", CHAT))
    answer = conn.answer()
    assert answer is not None and answer.status == 200
    assert len(proxy.upstream.requests) == count + 1, "forwarded to the configured provider, on loopback"


def test_a_crlf_in_the_path_is_not_a_header(proxy: Proxy) -> None:
    conn = _Connection(proxy.process.port)
    conn.send(head("GET", "/x%0d%0aSet-Cookie:%20a=b"))
    answer = conn.answer()
    assert answer is not None and answer.status == 404
    assert "set-cookie" not in {k.lower() for k in answer.headers}

