"""The proxy's listening sockets, bound before anything says it is serving.

uvicorn binds inside its start-up and answers a failure with `sys.exit(3)` after the caller has
already announced itself; binding here first turns a busy or foreign address into one
`ListenError` the CLI can report, and lets the `serving` event name the port actually bound.
"""

from __future__ import annotations

import socket

from .exceptions import ListenError

BACKLOG = 2048
"""uvicorn's own default: connections that arrive before the server accepts them wait here."""


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen(host: str, port: int) -> list[socket.socket]:
    """One bound socket per address `host` resolves to (`localhost` is often two), as uvicorn's
    own binding does."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {address(host, port)}: {exc.strerror or exc}") from exc
    bound: list[socket.socket] = []
    seen: set[tuple[int, str, int]] = set()
    try:
        for family, kind, proto, _, sockaddr in infos:
            where = (family, str(sockaddr[0]), int(sockaddr[1]))
            if where in seen:
                continue
            seen.add(where)
            sock = socket.socket(family, kind, proto)
            bound.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
            sock.listen(BACKLOG)
    except OSError as exc:
        for sock in bound:
            sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise ListenError(f"cannot listen on {address(host, port)}: {reason}") from exc
    return bound


def bound_port(sockets: list[socket.socket], asked: int) -> int:
    """The port bound: the one asked for, or the one the system chose for port 0."""
    return int(sockets[0].getsockname()[1]) if sockets else asked
