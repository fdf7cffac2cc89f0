"""The admin dashboard: HTML pages at `/admin/` drawn on the server from the same `AdminData` the
JSON API answers from, included in the admin app (`admin_site`).

No script and no file from elsewhere: Jinja2 templates (autoescaped: key ids, team names and the
messages clients saw are data, never markup), one stylesheet and inline SVG charts
(`charts.py`), all shipped in the package, so the admin app's Content-Security-Policy holds
(`default-src 'none'`, style and images from the app only). Filters and the spend window are
query parameters, so every view is a link.

Signing in: a browser without the token asking for a page is sent to `/admin/login` (a JSON
client still gets the API's 401); the form posts the token, which is checked in constant time and
kept in the `gatepost_admin` cookie (HttpOnly, SameSite=Strict, path /admin); signing out clears it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool

from ..budget.cost import usd
from . import charts
from .api import build_admin_app
from .auth import AdminToken, clear_cookie_header, cookie_header
from .data import AdminData
from .models import Granularity, GroupBy

PREFIX = "/admin"
LOGIN_PATH = f"{PREFIX}/login"
STATIC_PATH = f"{PREFIX}/static"
HERE = Path(__file__).parent
STATIC_FILES = {
    "dashboard.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
OPEN_PATHS = frozenset({LOGIN_PATH, *(f"{STATIC_PATH}/{name}" for name in STATIC_FILES)})
"""Answered without the token: the login form and what it is drawn with."""
KEYS_PER_PAGE = 25
REFUSALS_PER_PAGE = 25
LOGIN_FORM_LIMIT = 16_384

SPEND_GROUPS: dict[str, GroupBy] = {"team": "team", "model": "model", "key": "key", "provider": "provider"}
WINDOWS: dict[str, tuple[Granularity, str]] = {
    "day": ("day", "daily, last 90 days"),
    "hour": ("hour", "hourly, last 48 hours"),
}


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at is not None else "never"


def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["usd"] = usd
    env.filters["when"] = _when
    env.globals["budget_bar"] = charts.budget_bar
    env.globals["swatch"] = charts.swatch
    return env


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a dashboard path on this listener, never another site."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/"


def _wants_html(request: Request) -> bool:
    return request.method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", "")


async def login_redirect(request: Request) -> Response | None:
    """A browser without the token asking for a page goes to the login form (and back after);
    anything else gets the API's JSON 401."""
    path = request.url.path
    if not _wants_html(request) or path.startswith(f"{PREFIX}/api") or not path.startswith(PREFIX):
        return None
    wanted = path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{LOGIN_PATH}?{urlencode({'next': _safe_next(wanted)})}", status_code=303)


class Pages:
    """The templates, rendered (autoescaped) into HTML answers."""

    def __init__(self) -> None:
        self.env = _templates()

    def render(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status_code)


def dashboard_router(data: AdminData, token: AdminToken) -> APIRouter:
    """The dashboard's pages, login and static files, under `/admin/`."""
    pages = Pages()
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        return pages.render("login.html", next=_safe_next(request.query_params.get("next")), error=None)

    @router.post("/login")
    async def login(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > LOGIN_FORM_LIMIT:
                return Response("the sign-in form is larger than it can be", status_code=413, media_type="text/plain")
        try:
            form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
        except ValueError:
            form = {}
        given = (form.get("token") or [""])[0].strip()
        target = _safe_next(form.get("next", [""])[0])
        if not token.accepts(given):
            return pages.render("login.html", status_code=401, next=target,
                                error="That is not the admin token (gateway.admin.token).")
        answer = RedirectResponse(target, status_code=303)
        answer.headers["set-cookie"] = cookie_header(given, secure=request.url.scheme == "https")
        return answer

    @router.post("/logout")
    async def logout() -> Response:
        answer = RedirectResponse(LOGIN_PATH, status_code=303)
        answer.headers["set-cookie"] = clear_cookie_header()
        return answer

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        media_type = STATIC_FILES.get(name)
        if media_type is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response((HERE / "static" / name).read_bytes(), media_type=media_type)

    @router.get("/")
    async def overview() -> Response:
        status = data.status()
        budgets = data.budgets()
        counts = await run_in_threadpool(data.refusal_counts)
        return pages.render("overview.html", page="overview", status=status, budgets=budgets[:5],
                            budgets_total=len(budgets), refusal_counts=counts)

    @router.get("/budgets")
    async def budgets() -> Response:
        status = data.status()
        return pages.render("budgets.html", page="budgets", status=status, budgets=data.budgets(),
                            rate_limits=data.rate_limits())

    @router.get("/spend")
    async def spend(request: Request) -> Response:
        status = data.status()
        group = SPEND_GROUPS.get(request.query_params.get("group", ""), "team")
        window = request.query_params.get("window", "day")
        granularity, window_label = WINDOWS.get(window, WINDOWS["day"])
        series = await run_in_threadpool(data.spend, group, granularity)
        drawn = charts.bands(series)
        title = f"Spend by {group}, {window_label}"
        return pages.render("spend.html", page="spend", status=status, series=series, bands=drawn,
                            chart=charts.stacked_spend(series, drawn, title), title=title, group=group,
                            window=granularity, groups=SPEND_GROUPS, windows=WINDOWS,
                            link=_link_maker(f"{PREFIX}/spend", {"group": group, "window": granularity}))

    @router.get("/keys")
    async def keys(request: Request) -> Response:
        status = data.status()
        search = request.query_params.get("q", "").strip()
        number = _page_number(request)
        found = await run_in_threadpool(data.keys, search or None, number, KEYS_PER_PAGE)
        return pages.render("keys.html", page="keys", status=status, keys=found, search=search,
                            pages=_page_count(found.total, found.per_page),
                            link=_link_maker(f"{PREFIX}/keys", {"q": search}))

    @router.get("/refusals")
    async def refusals(request: Request) -> Response:
        status = data.status()
        reason = request.query_params.get("reason", "").strip()
        key = request.query_params.get("key", "").strip()
        number = _page_number(request)
        found = await run_in_threadpool(data.refusals, reason or None, key or None, number, REFUSALS_PER_PAGE)
        counts = await run_in_threadpool(data.refusal_counts)
        return pages.render("refusals.html", page="refusals", status=status, refusals=found, reason=reason, key=key,
                            counts=counts, pages=_page_count(found.total, found.per_page),
                            link=_link_maker(f"{PREFIX}/refusals", {"reason": reason, "key": key}))

    return router


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return max(1, int(raw)) if raw.isdigit() else 1


def _page_count(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))


def _link_maker(path: str, current: dict[str, str]) -> Callable[..., str]:
    """`link(page=2)`: this view's address with some parameters changed (empty ones left out)."""

    def link(**changes: object) -> str:
        merged = {**current, **{k: str(v) for k, v in changes.items()}}
        query = urlencode({k: v for k, v in merged.items() if v and not (k == "page" and v == "1")}, quote_via=quote)
        return f"{path}?{query}" if query else path

    return link


def admin_site(data: AdminData, token: str) -> FastAPI:
    """The admin listener's app: the JSON API and the dashboard, both behind `token`."""
    return build_admin_app(data, token, extra_routers=[dashboard_router(data, AdminToken(token))],
                           open_paths=OPEN_PATHS, unauthorized=login_redirect)

