"""The admin dashboard in a real browser (Debian's chromium, headless, driven over WebDriver)
against a live proxy with traffic the test makes: the token is required, every page loads without
console errors at a laptop's width and a phone's, the figures on the pages equal the ledger's
(read from its file here), a budget past its warn mark is drawn as such, the refusals page shows
the messages the clients saw, and no key, hash, credential or prompt is on any page.

Screenshots: with GATEPOST_SCREENSHOTS=1 the test rewrites docs/screenshots/admin-*.png (the
README shows them); without it nothing in the tree changes (the pages carry times, so each run's
shots differ).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.admin.dashboard import admin_site
from runtime.admin.data import AdminData, open_activity_reader
from runtime.budget.cost import usd
from runtime.ledger.activity import Activity, open_activity_db
from runtime.ledger.sqlite import LEDGER_FILE, SqliteLedger
from tests.conftest import ROOT
from tests.support.apps import app_from
from tests.support.browser import chromium, chromium_missing, full_page_screenshot, prefer_dark, severe_console_entries
from tests.support.proxy_process import ProxyProcess, free_port
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream

MISSING = chromium_missing()
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(MISSING is not None, reason=f"ADMIN DASHBOARD BROWSER TEST NOT RUN: {MISSING}"),
]

ADMIN_TOKEN = "admin-token-for-the-dashboard-test"
UPSTREAM_SECRET = "upstream-credential-for-the-dashboard-test"
PROMPT = "a prompt about the penguins of Patagonia"
KEYS = {name: f"gp-dash-{name}-0123456789abcdefghijklmnop" for name in ("alice", "bob", "erin", "gone", "nobody")}
SCREENSHOTS = ROOT / "docs" / "screenshots"
PAGES = {"overview": "/admin/", "budgets": "/admin/budgets", "spend": "/admin/spend", "keys": "/admin/keys",
         "refusals": "/admin/refusals"}
PHONE = 420


def digest(name: str) -> str:
    return hashlib.sha256(KEYS[name].encode()).hexdigest()


def vk(name: str) -> str:
    return f"key_sha256: {digest(name)}, key_prefix: {KEYS[name][:12]}"


def policy(upstream: str) -> str:
    return f"""\
providers:
  openai-primary: {{type: openai, base_url: "{upstream}/v1", api_key: env:DASH_OPENAI_KEY}}
models:
  gpt-4o: {{providers: [openai-primary], price: {{input: 1000, output: 1000}}}}
  gpt-4o-mini: {{providers: [openai-primary], price: {{input: 100, output: 100}}}}
teams:
  engineering:
    members: [alice@acme.com, bob@acme.com]
    defaults: {{models_allowed: [gpt-4o]}}
  data-science: {{members: [erin@acme.com], defaults: {{models_allowed: [gpt-4o, gpt-4o-mini]}}}}
virtual_keys:
  vk-alice: {{{vk("alice")}, principal: alice@acme.com, team: engineering}}
  vk-bob: {{{vk("bob")}, principal: bob@acme.com, team: engineering}}
  vk-erin: {{{vk("erin")}, principal: erin@acme.com, team: data-science}}
  vk-gone: {{{vk("gone")}, team: engineering, status: revoked}}
budgets:
  alice-monthly: {{scope: vk, target: vk-alice, window: month, limit_usd: 0.05, on_breach: {{warn: 50%, block: 100%}}}}
  eng-daily: {{scope: team, target: engineering, window: day, limit_usd: 10, on_breach: {{warn: 80%, block: 100%}}}}
  erin-daily: {{scope: principal, target: erin@acme.com, window: day, limit_usd: 0.016}}
rate_limits:
  bob-per-minute: {{scope: vk, target: vk-bob, requests: 2/minute}}
"""


@dataclass
class Live:
    admin: str
    proxy: str
    data_dir: Path
    now: float
    refusal_messages: list[str]

    def ledger(self) -> sqlite3.Connection:
        return sqlite3.connect(f"{(self.data_dir / LEDGER_FILE).resolve().as_uri()}?mode=ro", uri=True)


def call(proxy: str, who: str, model: str = "gpt-4o") -> httpx.Response:
    return httpx.post(proxy + "/v1/chat/completions", timeout=30, headers={"authorization": f"Bearer {KEYS[who]}"},
                      json={"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": PROMPT}]})


def make_traffic(proxy: str) -> list[str]:
    """Allowed answers, a key past its budget's warn mark, and a 401, 402, 403 and 429; the
    refusals' messages as the clients got them."""
    answers = [call(proxy, "alice"), call(proxy, "alice"), call(proxy, "bob"), call(proxy, "bob"), call(proxy, "erin")]
    assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
    refused = [call(proxy, "alice", "gpt-4o-mini"), call(proxy, "bob"), call(proxy, "erin"), call(proxy, "nobody"),
               call(proxy, "gone")]
    assert [r.status_code for r in refused] == [403, 429, 402, 401, 401], [r.text for r in refused]
    return [r.json()["error"]["message"] for r in refused]


def seed_history(data_dir: Path, today: datetime) -> None:
    """Thirty earlier days of spend (as the proxy would have written it) so the charts have a shape."""
    history = Activity()
    midnight = today.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    who = [("engineering", "vk-alice", "gpt-4o"), ("engineering", "vk-bob", "gpt-4o"),
           ("data-science", "vk-erin", "gpt-4o-mini")]
    for day in range(1, 31):
        for hour in (9, 13, 17):
            for i, (team, key, model) in enumerate(who):
                pico = ((day * 7 + hour * 3 + i * 11) % 13 + 2) * 10**10 // (3 if i == 2 else 1)
                history.spent(midnight - day * 86400 + hour * 3600, team, key, model, "openai-primary", pico)
    db = open_activity_db(data_dir)
    history.flush(db)
    db.close()


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    monkeypatch.setenv("DASH_OPENAI_KEY", UPSTREAM_SECRET)
    data_dir = tmp_path / "data"
    with MockUpstream() as upstream:
        (tmp_path / "policy").mkdir()
        (tmp_path / "policy" / "policy.yaml").write_text(policy(upstream.base_url))
        ledger = SqliteLedger(data_dir)
        app = app_from(tmp_path / "policy", ledger=ledger)
        activity = Activity()
        app.activity = activity
        activity_db = open_activity_db(data_dir)
        with ServerThread(app) as proxy:
            messages = make_traffic(proxy.base_url)
            proxy.wait_idle()
            activity.flush(activity_db)
            now = time.time()
            seed_history(data_dir, datetime.fromtimestamp(now, UTC))
            data = AdminData(app, ledger, open_activity_reader(data_dir), clock=lambda: now)
            with ServerThread(admin_site(data, ADMIN_TOKEN)) as admin:
                yield Live(admin.base_url, proxy.base_url, data_dir, now, messages)
        assert app.budgets is not None
        app.budgets.close()
        ledger.close()
        activity_db.close()


def shoot(driver: Any, name: str) -> None:
    if os.environ.get("GATEPOST_SCREENSHOTS") == "1":
        full_page_screenshot(driver, SCREENSHOTS / f"admin-{name}.png")


def by_css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def all_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def click_through(driver: Any, selector: str) -> None:
    """Click a link or button that loads a page, and wait until the new page has replaced the old one."""
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.wait import WebDriverWait

    page = by_css(driver, "html")
    by_css(driver, selector).click()
    WebDriverWait(driver, 10).until(staleness_of(page))


def fits_width(driver: Any) -> bool:
    return bool(driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"))


def assert_nothing_secret(html: str) -> None:
    for name, key in KEYS.items():
        assert key not in html and digest(name) not in html
    for secret in (UPSTREAM_SECRET, ADMIN_TOKEN, PROMPT, "penguins"):
        assert secret not in html


def test_the_dashboard_needs_the_token_and_shows_what_the_ledger_holds(live: Live, tmp_path: Path) -> None:
    assert httpx.get(live.admin + "/admin/budgets").status_code == 401
    assert httpx.get(live.admin + "/admin/api/status", headers={"accept": "text/html"}).status_code == 401
    with chromium(tmp_path / "profile") as driver:
        signed_in = sign_in(driver, live)
        assert signed_in["httpOnly"] and signed_in["sameSite"] == "Strict"
        check_overview(driver, live)
        check_budgets(driver, live)
        check_spend(driver, live)
        check_keys(driver, live)
        check_refusals(driver, live)
        check_narrow_and_dark(driver, live)
        click_through(driver, ".session button")
        assert "/admin/login" in driver.current_url and driver.get_cookies() == []
        driver.get(live.admin + "/admin/keys")
        assert "/admin/login" in driver.current_url and all_css(driver, "#token")
        assert severe_console_entries(driver) == []


def sign_in(driver: Any, live: Live) -> dict[str, Any]:
    driver.get(live.admin + "/admin/budgets")
    assert driver.current_url == live.admin + "/admin/login?next=%2Fadmin%2Fbudgets"
    assert severe_console_entries(driver) == []
    shoot(driver, "login")
    by_css(driver, "#token").send_keys("not-the-admin-token")
    click_through(driver, ".login button")
    assert "not the admin token" in by_css(driver, "#login-error").text
    assert driver.get_cookies() == []
    assert all("401" in entry for entry in severe_console_entries(driver))
    by_css(driver, "#token").send_keys(ADMIN_TOKEN)
    click_through(driver, ".login button")
    assert driver.current_url == live.admin + "/admin/budgets"
    [cookie] = driver.get_cookies()
    assert cookie["name"] == "gatepost_admin"
    return dict(cookie)


def visit(driver: Any, live: Live, name: str, query: str = "") -> str:
    driver.get(live.admin + PAGES[name] + query)
    assert driver.current_url == live.admin + PAGES[name] + query
    assert severe_console_entries(driver) == [], name
    assert fits_width(driver), f"{name} is wider than the window"
    html = str(driver.page_source)
    assert_nothing_secret(html)
    return html


def today_totals(live: Live) -> tuple[int, int, int]:
    """Requests, refusals and spend since 00:00 UTC, from the ledger file's daily rollup (each
    request is counted once per dimension: the team one is read), and the ledger's charges."""
    day = int(live.now) // 86400
    with live.ledger() as db:
        requests, refused, spent = db.execute(
            "SELECT SUM(requests), SUM(refused), SUM(spent) FROM activity WHERE unit = 'day' AND dimension = 'team'"
            " AND bucket = ?", (day,)).fetchone()
        hourly = db.execute("SELECT SUM(spent) FROM activity WHERE unit = 'hour' AND dimension = 'team'"
                            " AND bucket >= ?", (day * 24,)).fetchone()[0]
        [charged] = db.execute("SELECT SUM(amount) FROM charges").fetchone()
    assert spent == hourly == charged, "today's spend is what the ledger charged"
    return int(requests), int(refused), int(spent)


def check_overview(driver: Any, live: Live) -> None:
    visit(driver, live, "overview")
    requests, refused, spent = today_totals(live)
    assert (requests, refused) == (10, 5)
    assert by_css(driver, "#card-requests .figure").text == str(requests)
    assert by_css(driver, "#card-refusals .figure").text == str(refused)
    assert by_css(driver, "#card-spend .figure").text == usd(spent)
    assert by_css(driver, "#card-budgets .count-warn").text == "1"
    assert by_css(driver, "#card-budgets .count-blocked").text == "1"
    assert [row.text.split()[0] for row in all_css(driver, "#providers tbody tr")] == ["openai-primary"]
    shoot(driver, "overview")


def check_budgets(driver: Any, live: Live) -> None:
    visit(driver, live, "budgets")
    with live.ledger() as db:
        rows = db.execute("SELECT instance, spent FROM counters").fetchall()
    assert rows
    shown = {li.get_attribute("data-instance"): li for li in all_css(driver, "#budgets li.budget")}
    for instance, spent in rows:
        item = shown[instance]
        assert int(item.get_attribute("data-spent-pico")) == spent
        assert item.find_element("css selector", ".spent").text == usd(spent)
    states = {instance: li.get_attribute("class") for instance, li in shown.items()}
    [alice] = [i for i in states if i.startswith("alice-monthly")]
    [erin] = [i for i in states if i.startswith("erin-daily")]
    assert "budget-warn" in states[alice].split() and "budget-blocked" in states[erin].split()
    assert all_css(driver, f'li[data-instance="{alice}"] svg .bar-fill.bar-warn')
    assert all_css(driver, f'li[data-instance="{alice}"] svg .mark-warn')
    order = list(shown)
    assert order.index(erin) < order.index(alice), "closest to blocking first"
    assert "policy.yaml:" in shown[alice].text
    assert all_css(driver, ".legend .key-warn")
    shoot(driver, "budgets")


def check_spend(driver: Any, live: Live) -> None:
    visit(driver, live, "spend")
    with live.ledger() as db:
        teams = dict(db.execute("SELECT name, SUM(spent) FROM activity WHERE unit = 'day' AND dimension = 'team'"
                                " GROUP BY name").fetchall())
    total = sum(teams.values())
    assert int(by_css(driver, "#spend-total").get_attribute("data-pico")) == total
    assert by_css(driver, "#spend-total").text == usd(total)
    for team in ("engineering", "data-science"):
        row = by_css(driver, f'#spend-lines tr[data-name="{team}"]')
        assert int(row.get_attribute("data-pico")) == teams[team]
        assert row.text.endswith(usd(teams[team]))
    assert by_css(driver, "svg.spend-chart title").get_attribute("textContent").startswith("Spend by team")
    assert len(all_css(driver, "svg.spend-chart .columns rect")) > 30
    shoot(driver, "spend")
    click_through(driver, '.switch a[href*="window=hour"]')
    assert "window=hour" in driver.current_url and severe_console_entries(driver) == []
    click_through(driver, '.switch a[href*="group=model"]')
    assert {"group=model", "window=hour"} <= set(driver.current_url.split("?")[1].split("&"))
    assert by_css(driver, "svg.spend-chart title").get_attribute("textContent") == "Spend by model, hourly, last 48 hours"
    assert severe_console_entries(driver) == []
    shoot(driver, "spend-hourly-by-model")


def check_keys(driver: Any, live: Live) -> None:
    visit(driver, live, "keys")
    assert [row.get_attribute("data-key") for row in all_css(driver, "#keys tbody tr")] == [
        "vk-alice", "vk-bob", "vk-erin", "vk-gone"]
    assert by_css(driver, 'tr[data-key="vk-gone"] .badge').text == "revoked"
    shoot(driver, "keys")
    by_css(driver, "#q").send_keys("erin@")
    click_through(driver, ".filters button")
    assert driver.current_url.endswith("/admin/keys?q=erin%40")
    [row] = all_css(driver, "#keys tbody tr")
    assert row.get_attribute("data-key") == "vk-erin"
    assert row.find_element("css selector", ".last-used").text.startswith(
        datetime.fromtimestamp(live.now, UTC).strftime("%Y-%m-%d"))
    assert severe_console_entries(driver) == []


def check_refusals(driver: Any, live: Live) -> None:
    visit(driver, live, "refusals")
    shown = [cell.text for cell in all_css(driver, "#refusals td.message")]
    assert sorted(shown) == sorted(live.refusal_messages)
    rows = {row.find_element("css selector", "code").text: row.text for row in all_css(driver, "#refusals tbody tr")}
    assert set(rows) == {"model_not_allowed", "rate_limit_exceeded", "budget_exceeded", "invalid_api_key"}
    assert "policy.yaml:" in rows["budget_exceeded"] and "vk-erin" in rows["budget_exceeded"]
    shoot(driver, "refusals")
    visit(driver, live, "refusals", "?reason=budget_exceeded")
    assert [cell.text for cell in all_css(driver, "#refusals td.message")] == [live.refusal_messages[2]]


def check_narrow_and_dark(driver: Any, live: Live) -> None:
    driver.set_window_size(PHONE, 900)
    for name in PAGES:
        visit(driver, live, name)
        if name in ("overview", "refusals"):
            shoot(driver, f"{name}-narrow")
    driver.set_window_size(1280, 900)
    prefer_dark(driver, True)
    visit(driver, live, "budgets")
    background = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 20, 24)"
    shoot(driver, "budgets-dark")
    visit(driver, live, "spend")
    shoot(driver, "spend-dark")
    prefer_dark(driver, False)


def test_policy_serve_admin_port_serves_the_dashboard(tmp_path: Path) -> None:
    """Without a browser: the listener `policy serve --admin-port` opens answers the login form and,
    signed in, the pages; the proxy's own port has none of them."""
    (tmp_path / "policy").mkdir()
    source = (ROOT / "examples" / "quickstart" / "policy.yaml").read_text()
    (tmp_path / "policy" / "policy.yaml").write_text(
        source.replace("gateway:\n", "gateway:\n  admin: {token: env:DASH_ADMIN_TOKEN}\n", 1))
    admin_port = free_port()
    admin = f"http://127.0.0.1:{admin_port}"
    with ProxyProcess(tmp_path / "policy", tmp_path / "serve.log", {"DASH_ADMIN_TOKEN": ADMIN_TOKEN},
                      "--admin-port", str(admin_port)) as proxy:
        page = httpx.get(admin + "/admin/refusals", headers={"accept": "text/html"}, follow_redirects=True)
        assert page.status_code == 200 and 'name="token"' in page.text and "/admin/login" in str(page.url)
        signed = httpx.post(admin + "/admin/login", data={"token": ADMIN_TOKEN, "next": "/admin/budgets"})
        assert signed.status_code == 303
        with httpx.Client(base_url=admin, cookies=signed.cookies) as browser:
            for path in PAGES.values():
                answer = browser.get(path, headers={"accept": "text/html"})
                assert answer.status_code == 200 and "<h1>" in answer.text, path
                assert_nothing_secret(answer.text)
        assert httpx.get(proxy.base_url + "/admin/", headers={"accept": "text/html"}).status_code == 404
