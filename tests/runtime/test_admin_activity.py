"""The admin surface's activity: what the request path notes is what the spend queries read back,
summed per hour and day, with the biggest spenders first and the rest as one line."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runtime.admin.data import OTHERS, AdminData, open_activity_reader
from runtime.ledger.activity import Activity, Refusal, open_activity_db
from runtime.ledger.base import LedgerError
from tests.conftest import ROOT
from tests.support.apps import app_from

NOW = datetime(2026, 12, 1, 15, 30, tzinfo=UTC).timestamp()
DAY = 86_400


def admin_over(data: Path) -> AdminData:
    return AdminData(app_from(ROOT / "examples" / "quickstart"), None, open_activity_reader(data), clock=lambda: NOW)


def test_the_top_spenders_come_first_and_the_rest_is_one_line(tmp_path: Path) -> None:
    activity, db = Activity(), open_activity_db(tmp_path)
    for k in range(25):
        for days_ago in (0, 3):
            activity.spent(NOW - days_ago * DAY, "eng", f"vk-{k:02d}", "gpt-4o", "openai", (k + 1) * 1000)
    activity.refused(Refusal(NOW, 429, "rate_limit_exceeded", "vk-00", "gpt-4o", "limits.yaml:3", "slow down"), "eng")
    activity.flush(db)
    admin = admin_over(tmp_path)
    series = admin.spend("key", "day", top=3)
    assert [line.name for line in series.lines] == ["vk-24", "vk-23", "vk-22", OTHERS]
    assert series.lines[0].total_pico == 2 * 25_000 and series.lines[0].requests == 2
    assert series.lines[-1].total_pico == 2 * sum(range(1, 23)) * 1000 and series.lines[-1].requests == 44
    assert series.total_pico == 2 * sum(range(1, 26)) * 1000
    assert len(series.buckets) == 90 and series.buckets[-1] == datetime(2026, 12, 1, tzinfo=UTC)
    assert [p.spent_pico for p in series.lines[0].points if p.spent_pico] == [25_000, 25_000]
    everything = admin.spend("key", "day", top=0)
    assert len(everything.lines) == 25 and everything.total_pico == series.total_pico
    hourly = admin.spend("team", "hour")
    assert len(hourly.buckets) == 48 and hourly.buckets[-1] == datetime(2026, 12, 1, 15, tzinfo=UTC)
    assert [(line.name, line.total_pico, line.requests) for line in hourly.lines] == [
        ("eng", sum(range(1, 26)) * 1000, 25)]
    status = admin.status()
    assert (status.requests_today, status.refusals_today, status.spend_today_pico) == (26, 1, sum(range(1, 26)) * 1000)


def test_a_flush_the_file_refuses_keeps_what_gathered_for_the_next(tmp_path: Path) -> None:
    activity, db = Activity(), open_activity_db(tmp_path)
    activity.spent(NOW, "eng", "vk-a", "gpt-4o", "openai", 5)
    blocker = sqlite3.connect(tmp_path / "ledger.sqlite3", timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    db.execute("PRAGMA busy_timeout=0")
    with pytest.raises(LedgerError):
        activity.flush(db)
    blocker.execute("ROLLBACK")
    blocker.close()
    activity.spent(NOW, "eng", "vk-a", "gpt-4o", "openai", 7)
    activity.flush(db)
    [line] = admin_over(tmp_path).spend("key", "hour").lines
    assert (line.name, line.total_pico, line.requests) == ("vk-a", 12, 2)


def test_refusals_beyond_the_kept_number_are_dropped_oldest_first_and_still_counted(tmp_path: Path) -> None:
    activity, db = Activity(keep_refusals=3), open_activity_db(tmp_path)
    for i in range(5):
        activity.refused(Refusal(NOW + i, 403, "model_not_allowed", "vk-a", f"m{i}", None, "no"), "eng")
    activity.flush(db)
    admin = admin_over(tmp_path)
    page = admin.refusals()
    assert page.total == 3 and [r.model for r in page.items] == ["m4", "m3", "m2"]
    assert admin.status().refusals_today == 5
