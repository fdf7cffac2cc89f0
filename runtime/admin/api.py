"""The admin app: read-only JSON under `/admin/api/`, its OpenAPI document at `/admin/openapi.json`,
and whatever routers the dashboard adds, behind the admin token and the security headers.

`AdminGuard` wraps the whole FastAPI app (its 404s and errors included): a request without the
token is answered 401 before any route is looked up, except on `open_paths` (the dashboard's login
form); every answer carries a restrictive Content-Security-Policy, `Cache-Control: no-store` and
the usual hardening headers. No docs UI is served (Swagger and ReDoc load from CDNs).

Routes that read only the ledger file (keys, refusals, spend) are plain functions, which FastAPI
runs in its thread pool, so a long query never holds up the proxy's event loop; the others read the
proxy's in-process state and ledger and run on the loop (a Redis ledger is asked from the pool).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from datetime import datetime
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from ..exceptions import LedgerError
from ..proxy.asgi import Receive, Scope, Send
from .auth import AdminToken
from .data import MAX_PER_PAGE, AdminData
from .models import (
    BudgetInfo,
    CircuitInfo,
    Granularity,
    GroupBy,
    KeyInfo,
    Page,
    RateLimitInfo,
    RefusalCount,
    RefusalInfo,
    SpendSeries,
    Status,
)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
T = TypeVar("T")
API_PREFIX = "/admin/api"
OPENAPI_PATH = "/admin/openapi.json"

Unauthorized = Callable[[Request], Awaitable[Response | None]]
"""The dashboard's answer to a request without the token (its login page for HTML), or None for
the plain JSON 401."""


class AdminGuard:
    """ASGI middleware: the token on every path but `open_paths`, the security headers on every answer."""

    def __init__(self, app: Any, token: AdminToken, open_paths: Iterable[str] = (),
                 unauthorized: Unauthorized | None = None) -> None:
        self.app = app
        self.token = token
        self.open_paths = frozenset(open_paths)
        self.unauthorized = unauthorized

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                own = {name for name, _ in SECURITY_HEADERS}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in own]
                message = {**message, "headers": [*kept, *SECURITY_HEADERS]}
            await send(message)

        if scope["path"] in self.open_paths or self.token.accepts_request(scope["headers"]):
            await self.app(scope, receive, with_headers)
            return
        answer = await self.unauthorized(Request(scope, receive)) if self.unauthorized is not None else None
        if answer is None:
            answer = Response(
                orjson.dumps({"error": {"code": "unauthorized", "message": "the admin token is required: send "
                                        "`Authorization: Bearer <token>` (gateway.admin.token)"}}),
                status_code=401, media_type="application/json", headers={"WWW-Authenticate": 'Bearer realm="admin"'},
            )
        await answer(scope, receive, with_headers)


PageNumber = Annotated[int, Query(ge=1, description="From 1")]
PerPage = Annotated[int, Query(ge=1, le=MAX_PER_PAGE)]


def api_router(data: AdminData) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX, tags=["admin"])

    async def from_ledger(read: Callable[[], T]) -> T:
        """A remote ledger (Redis) is asked from a worker thread, as the proxy tends it; the local
        one (SQLite and its in-memory front) on the loop, which alone uses it."""
        if data.ledger is not None and data.ledger.remote:
            return await run_in_threadpool(read)
        return read()

    @router.get("/status", response_model=Status, summary="Live revision, today's traffic and providers' health")
    async def status() -> Status:
        return await from_ledger(data.status)

    @router.get("/keys", response_model=Page[KeyInfo], summary="Virtual keys (never their hashes), by id")
    def keys(search: Annotated[str | None, Query(description="Part of a key's id, team or principal")] = None,
             page: PageNumber = 1, per_page: PerPage = 50) -> Page[KeyInfo]:
        return data.keys(search, page, per_page)

    @router.get("/budgets", response_model=list[BudgetInfo],
                summary="Every budget instance in its current window, closest to blocking first")
    async def budgets() -> list[BudgetInfo]:
        return await from_ledger(data.budgets)

    @router.get("/rate-limits", response_model=list[RateLimitInfo], summary="Each rate-limit instance's current use")
    async def rate_limits() -> list[RateLimitInfo]:
        return await from_ledger(data.rate_limits)

    @router.get("/circuits", response_model=list[CircuitInfo], summary="Circuit state per provider and credential")
    async def circuits() -> list[CircuitInfo]:
        return data.circuits()

    @router.get("/refusals", response_model=Page[RefusalInfo],
                summary="Recent 401/402/403/429 refusals, newest first, with the message the client saw")
    def refusals(reason: Annotated[str | None, Query(description="An error code: budget_exceeded, ...")] = None,
                 key: Annotated[str | None, Query(description="A virtual key's id")] = None,
                 page: PageNumber = 1, per_page: PerPage = 50) -> Page[RefusalInfo]:
        return data.refusals(reason, key, page, per_page)

    @router.get("/refusals/counts", response_model=list[RefusalCount], summary="Refusals kept, by error code")
    def refusal_counts(since: Annotated[datetime | None, Query(description="Default: the last 24 hours")] = None
                       ) -> list[RefusalCount]:
        return data.refusal_counts(since)

    @router.get("/spend", response_model=SpendSeries,
                summary="Spend over time per team, key, model or provider (daily: 90 days, hourly: 48 hours)")
    def spend(group_by: GroupBy = "team", granularity: Granularity = "day",
              since: Annotated[datetime | None, Query(description="UTC; default: 90 days or 48 hours ago")] = None,
              until: Annotated[datetime | None, Query(description="UTC, exclusive; default: now")] = None,
              top: Annotated[int, Query(ge=0, description="Lines given (most spent first), the rest summed "
                                        "as '(others)'; 0: every line")] = 20,
              ) -> SpendSeries:
        return data.spend(group_by, granularity, since, until, top)

    return router


async def _ledger_unavailable(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": {"code": "ledger_unavailable", "message": str(exc)}}, status_code=503)


def build_admin_app(data: AdminData, token: str, extra_routers: Iterable[APIRouter] = (),
                    open_paths: Iterable[str] = (), unauthorized: Unauthorized | None = None) -> FastAPI:
    """The admin app over `data`, guarded by `token`. `extra_routers` (the dashboard's) are
    included after the API; `open_paths` are answered without the token (a login form), and
    `unauthorized` may answer a request without it (a login page) instead of the JSON 401."""
    app = FastAPI(
        title="Gatepost admin API", version="1", description="Read-only: what the gateway serves, spends and refuses.",
        openapi_url=OPENAPI_PATH, docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None,
    )
    app.include_router(api_router(data))
    for router in extra_routers:
        app.include_router(router)
    app.add_exception_handler(LedgerError, _ledger_unavailable)
    app.add_middleware(AdminGuard, token=AdminToken(token), open_paths=open_paths, unauthorized=unauthorized)
    return app
