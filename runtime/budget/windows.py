"""Budget windows on calendar boundaries in the budget's own timezone.

A window is named by its label (`2026-11-24`, `2026-W48`, `2026-11`, `total`); the ledger keys spend
by budget instance and label, so a new day starts a new counter at local midnight, not UTC's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Window:
    label: str
    start: datetime | None
    end: datetime | None


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def window_for(kind: str, tz: str, now: datetime) -> Window:
    """The window of `kind` (day | week | month | total) containing the instant `now`."""
    if kind == "total":
        return Window("total", None, None)
    zone = _zone(tz)
    local = now.astimezone(zone).date()
    if kind == "day":
        start, end = local, local + timedelta(days=1)
        label = local.isoformat()
    elif kind == "week":
        start = local - timedelta(days=local.weekday())
        end = start + timedelta(days=7)
        year, week, _ = local.isocalendar()
        label = f"{year}-W{week:02d}"
    elif kind == "month":
        start = local.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        label = f"{local.year}-{local.month:02d}"
    else:
        raise ValueError(f"unknown window {kind!r}")
    return Window(label, _local_midnight(start, zone), _local_midnight(end, zone))
