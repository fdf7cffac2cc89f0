"""The paths the gateway serves as one table: each path (or path pattern), the methods it accepts
and its handler. The same table answers what it does not serve: a 404 for a path it does not
know, a 405 whose `Allow` names the methods of one it does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from ..errors import error_headers
from ..state import Serving
from ..surfaces import GEMINI, gemini_route, surface_of_path
from .answers import answer
from .asgi import Receive, Scope, Send, WatchedSend

Params = tuple[str, str] | None
"""What a pattern read from the path: a Gemini path's (model, method)."""
Handler = Callable[[Scope, Receive, WatchedSend, Params], Awaitable[None]]
Pattern = Callable[[str], Params]

POST = ("POST",)
GET = ("GET",)
READS = ("GET", "HEAD")

GEMINI_PATHS = " (Gemini: POST /v1beta/models/{model}:generateContent, :streamGenerateContent, :countTokens)"


@dataclass(frozen=True, slots=True)
class Route:
    path: str | Pattern
    methods: tuple[str, ...]
    handler: Handler
    proxied: bool = False
    """A path of an API the gateway proxies (Gemini's countTokens shares its family's paths): its
    405 carries Fallback-Count 0, as every answer there does."""

    @property
    def allow(self) -> bytes:
        return ", ".join(self.methods).encode()


def gemini_generate(path: str) -> Params:
    found = gemini_route(path)
    return found if found is not None and found[1] != "countTokens" else None


def gemini_count_tokens(path: str) -> Params:
    found = gemini_route(path)
    return found if found is not None and found[1] == "countTokens" else None


class Routes:
    """Exact paths are found by one dict look-up; patterns are tried in order after them."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._paths: dict[str, tuple[Route, Params]] = {}
        self._patterns: list[tuple[Pattern, Route]] = []
        for route in routes:
            if isinstance(route.path, str):
                self._paths[route.path] = (route, None)
            else:
                self._patterns.append((route.path, route))

    def find(self, path: str) -> tuple[Route | None, Params]:
        found = self._paths.get(path)
        if found is not None:
            return found
        for pattern, route in self._patterns:
            params = pattern(path)
            if params is not None:
                return route, params
        return None, None

    def meant(self, path: str) -> str | None:
        """The served path a missed one most likely meant, and why it was missed: a client whose
        base URL lacks `/v1` (`/chat/completions`), or has it once too often (`/v1/v1/messages`)."""
        if not path.startswith("/v1/") and self.find(f"/v1{path}")[0] is not None:
            return f"/v1{path}? (the client's base URL is missing /v1)"
        if path.startswith("/v1/v1/") and self.find(path[3:])[0] is not None:
            return f"{path[3:]}? (the client's base URL ends in /v1 and the client adds another)"
        return None


async def unrouted(
    send: Send, serving: Serving, method: str, path: str, route: Route | None, meant: str | None = None
) -> None:
    """404 when no route has the path (naming the path it most likely meant), 405 when its route
    takes other methods; both in the error shape of the path's API family (`surface_of_path`)."""
    surface = surface_of_path(path)
    if route is None:
        served = GEMINI_PATHS if surface is GEMINI else ""
        hint = f": did you mean {method} {meant}" if meant else served
        body = surface.error_body(404, "not_found", f"no route for {method} {path}{hint}", None, None)
        await answer(send, serving, 404, body, error_headers(404))
        return
    allow = route.allow
    body = surface.error_body(405, "method_not_allowed", f"{path} accepts {allow.decode()}, not {method}", None, None)
    headers = [*error_headers(405), (b"allow", allow)]
    if route.proxied:
        headers.append((serving.header_prefix + b"fallback-count", b"0"))
    await answer(send, serving, 405, body, headers)
