"""The dashboard's pages without a browser: who gets the login form and who the API's 401, what
signing in and out does to the cookie, pages that hold under the admin CSP (no script, no inline
style), what clients sent shown as text, never as markup, and the charts' classes and bands. The
browser test (tests/e2e/test_admin_dashboard.py) drives the same pages in chromium."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runtime.admin import charts
from runtime.admin.dashboard import REFUSALS_PER_PAGE as REFUSALS_SHOWN
from runtime.admin.dashboard import admin_site
from runtime.admin.data import AdminData, open_activity_reader
from runtime.admin.models import BudgetInfo, SpendLine, SpendPoint, SpendSeries
from runtime.ledger.activity import Activity, Refusal, open_activity_db
from tests.conftest import EXAMPLES
from tests.support.apps import app_from

TOKEN = "admin-token-for-page-tests"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
HTML = {"accept": "text/html,application/xhtml+xml"}
PAGES = ("/admin/", "/admin/budgets", "/admin/spend", "/admin/spend?window=hour&group=model", "/admin/keys",
         "/admin/keys?q=alice", "/admin/refusals", "/admin/refusals?reason=model_not_allowed")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    now = time.time()
    activity = Activity()
    activity.spent(now - 3600, "engineering", "vk-alice-codex", "gpt-4o", "openai-primary", 12 * 10**9)
    activity.refused(Refusal(now, 403, "model_not_allowed", "vk-alice-codex", HOSTILE, "policy/keys.yaml:3",
                             f"model '{HOSTILE}' is not allowed for virtual key vk-alice-codex"), "engineering")
    for i in range(REFUSALS_SHOWN + 5):
        activity.refused(Refusal(now + 1 + i, 401, "invalid_api_key", None, None, None,
                                 f"invalid API key number {i}"), None)
    db = open_activity_db(tmp_path)
    activity.flush(db)
    app = app_from(EXAMPLES / "acme")
    data = AdminData(app, None, open_activity_reader(tmp_path), clock=lambda: now)
    with TestClient(admin_site(data, TOKEN), base_url="http://127.0.0.1") as test_client:
        yield test_client
    db.close()


def signed_in(client: TestClient) -> TestClient:
    client.cookies.set("gatepost_admin", TOKEN, path="/admin")
    return client


def test_a_browser_without_the_token_is_sent_to_the_login_form_and_back(client: TestClient) -> None:
    answer = client.get("/admin/budgets?x=1", headers=HTML, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/login?next=%2Fadmin%2Fbudgets%3Fx%3D1"
    form = client.get(answer.headers["location"])
    assert form.status_code == 200 and 'name="token"' in form.text and 'value="/admin/budgets?x=1"' in form.text


def test_a_client_without_the_token_gets_the_api_401_not_a_page(client: TestClient) -> None:
    for path, headers in (("/admin/", {}), ("/admin/keys", {"accept": "application/json"}),
                          ("/admin/api/status", HTML)):
        answer = client.get(path, headers=headers, follow_redirects=False)
        assert answer.status_code == 401, path
        assert answer.json()["error"]["code"] == "unauthorized"


def test_signing_in_sets_a_strict_http_only_cookie_and_signing_out_clears_it(client: TestClient) -> None:
    wrong = client.post("/admin/login", data={"token": "nope", "next": "/admin/keys"}, follow_redirects=False)
    assert wrong.status_code == 401 and "not the admin token" in wrong.text and "set-cookie" not in wrong.headers
    right = client.post("/admin/login", data={"token": TOKEN, "next": "/admin/keys"}, follow_redirects=False)
    assert right.status_code == 303 and right.headers["location"] == "/admin/keys"
    cookie = right.headers["set-cookie"]
    assert cookie.startswith("gatepost_admin=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/admin" in cookie
    assert client.get("/admin/keys", headers=HTML).status_code == 200
    out = client.post("/admin/logout", follow_redirects=False)
    assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]


@pytest.mark.parametrize("target", ["https://elsewhere.example/", "//elsewhere.example/admin/", "/elsewhere",
                                    "/admin\\..\\x"])
def test_signing_in_only_ever_goes_back_to_a_dashboard_page(client: TestClient, target: str) -> None:
    answer = client.post("/admin/login", data={"token": TOKEN, "next": target}, follow_redirects=False)
    assert answer.headers["location"] == "/admin/"


def test_every_page_holds_under_the_admin_csp(client: TestClient) -> None:
    signed_in(client)
    for path in PAGES:
        answer = client.get(path, headers=HTML)
        assert answer.status_code == 200, path
        assert "default-src 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["cache-control"] == "no-store"
        html = answer.text.lower()
        assert "<script" not in html and " style=" not in html and "<style" not in html and "http://" not in html
        assert 'href="/admin/static/dashboard.css"' in html, path
    css = client.get("/admin/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "prefers-color-scheme: dark" in css.text and "url(" not in css.text and "@import" not in css.text


def test_what_a_client_sent_is_shown_as_text(client: TestClient) -> None:
    signed_in(client)
    for path in ("/admin/refusals?reason=model_not_allowed", "/admin/spend?group=model"):
        html = client.get(path, headers=HTML).text
        assert "<script>alert" not in html and "<img src=x" not in html
    shown = client.get("/admin/refusals?reason=model_not_allowed", headers=HTML).text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in shown


def test_refusals_are_paged_newest_first_and_filtered_by_links(client: TestClient) -> None:
    signed_in(client)
    first = client.get("/admin/refusals", headers=HTML).text
    assert f"{REFUSALS_SHOWN + 6} refusals kept" in first and "page 1 of 2" in first
    assert 'href="/admin/refusals?page=2" rel="next"' in first and f"invalid API key number {REFUSALS_SHOWN + 4}<" in first
    second = client.get("/admin/refusals?page=2", headers=HTML).text
    assert second.count('class="message"') == 6 and "invalid API key number 0<" in second
    assert 'href="/admin/refusals" rel="prev"' in second
    only = client.get("/admin/refusals?reason=model_not_allowed", headers=HTML).text
    assert "1 refusal kept" in only and 'href="/admin/refusals?reason=model_not_allowed&amp;key=vk-alice-codex"' in only


def test_a_sign_in_form_too_large_or_malformed_is_refused(client: TestClient) -> None:
    assert client.post("/admin/login", content=b"token=" + b"x" * 20_000).status_code == 413
    refused = client.post("/admin/login", content=b"a=1&b=2&c=3&d=4&e=5&token=" + TOKEN.encode())
    assert refused.status_code == 401 and "set-cookie" not in refused.headers


def test_the_stylesheet_and_login_form_need_no_token(client: TestClient) -> None:
    assert client.get("/admin/static/dashboard.css").status_code == 200
    assert client.get("/admin/static/favicon.svg").headers["content-type"] == "image/svg+xml"
    assert client.get("/admin/static/../api/status", follow_redirects=False).status_code in (401, 404)


def budget(spent: int, warn: int | None, state: str) -> BudgetInfo:
    limit = 100 * 10**12
    return BudgetInfo(
        instance="eng-daily", budget="eng-daily", scope="team", target="engineering", window="day",
        window_label="2026-12-01", spent_pico=spent, reserved_pico=0, limit_pico=limit, warn_pico=warn,
        block_pico=limit, spent_usd="", reserved_usd="0", limit_usd="100", warn_usd=None, block_usd="100",
        fraction_used=spent / limit, warn_fraction=warn / limit if warn is not None else None, block_fraction=1.0,
        state=state,  # type: ignore[arg-type]
        source="policy/budgets.yaml:2",
    )


def test_a_budget_bar_is_classed_by_its_state_with_both_marks() -> None:
    past_warn = str(charts.budget_bar(budget(85 * 10**12, 80 * 10**12, "warn")))
    assert 'class="bar-fill bar-warn"' in past_warn
    assert past_warn.count('class="mark-warn"') == 1 and past_warn.count('class="mark-block"') == 1
    assert "warn at $80.00 (80%)" in past_warn and "block at $100.00 (100%)" in past_warn
    no_warn = str(charts.budget_bar(budget(10**12, None, "ok")))
    assert 'bar-ok' in no_warn and "mark-warn" not in no_warn


def test_more_lines_than_colours_are_summed_as_others() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    buckets = [start + timedelta(days=i) for i in range(3)]
    lines = [SpendLine(name=f"team-{i}", total_pico=(20 - i) * 3, total_usd="", requests=3,
                       points=[SpendPoint(at=b, spent_pico=20 - i, spent_usd="", requests=1) for b in buckets])
             for i in range(10)]
    series = SpendSeries(group_by="team", granularity="day", since=buckets[0], until=buckets[-1], buckets=buckets,
                         total_pico=sum(line.total_pico for line in lines), total_usd="", lines=lines)
    drawn = charts.bands(series)
    assert [b.name for b in drawn] == [f"team-{i}" for i in range(7)] + ["(others)"]
    assert drawn[-1].values == (13 + 12 + 11,) * 3
    svg = str(charts.stacked_spend(series, drawn, "Spend by team"))
    assert svg.count("<rect") == 8 * 3 and "<title>(others), 2026-12-02:" in svg
