"""What the admin surface shows, read from the live proxy and its ledger; never written.

`AdminData` reads three things: the proxy's serving table (`Gatepost.serving`, replaced whole on
reload: read once per answer), its circuits (in the process, as the proxy keeps them), and the
ledger: budget and rate-limit use through the proxy's own `Ledger` (exact: this process's
pending settles are written first), spend over time, last use and refusals from the activity
tables of the ledger file (`runtime/ledger/activity.py`), which every process serving that file
writes to.

`budgets`, `rate_limits` and `status` call the proxy's ledger, which is used from the event loop
only: call them there. `keys`, `refusals` and `spend` read the ledger file through a connection of
their own and may be called from a worker thread (the API does, so a long query never holds up a
proxied request).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..app import Gatepost
from ..budget.gate import decimal_usd, slot_for
from ..ledger.base import CounterRow, Ledger
from ..ledger.sqlite import LEDGER_FILE
from ..table import KeyEntry
from . import queries
from .models import (
    BudgetInfo,
    BudgetState,
    CircuitInfo,
    CircuitState,
    CredentialCircuit,
    Granularity,
    GroupBy,
    KeyInfo,
    Page,
    ProviderHealth,
    RateLimitInfo,
    RefusalCount,
    RefusalInfo,
    SpendLine,
    SpendPoint,
    SpendSeries,
    Status,
)
from .queries import OTHERS as OTHERS

MAX_PER_PAGE = 500
DAYS_KEPT = 90
HOURS_SHOWN = 48


class AdminData:
    """`activity` is a connection to the ledger file holding the activity tables
    (`open_activity_reader`); None when there is no such file yet (nothing served with a ledger):
    spend and refusals are then empty."""

    def __init__(self, app: Gatepost, ledger: Ledger | None, activity: sqlite3.Connection | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.ledger = ledger
        self.activity = activity
        self.clock = clock
        self._lock = threading.Lock()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        if self.activity is None:
            return []
        with self._lock:
            try:
                return self.activity.execute(sql, args).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise

    def status(self) -> Status:
        serving = self.app.serving
        table = serving.table
        midnight = self._now().replace(hour=0, minute=0, second=0, microsecond=0)
        requests, refused, spent = queries.totals_since(self._read, int(midnight.timestamp()) // 3600)
        budgets = self.budgets()
        return Status(
            revision=table.revision,
            loaded_at=datetime.fromtimestamp(serving.loaded_at, UTC),
            sources=list(table.sources),
            virtual_keys=len(table.keys),
            requests_today=requests,
            spend_today_pico=spent,
            spend_today_usd=decimal_usd(spent),
            refusals_today=refused,
            budgets_warn=sum(1 for b in budgets if b.state == "warn"),
            budgets_blocked=sum(1 for b in budgets if b.state == "blocked"),
            providers=[self._health(pid) for pid in sorted(table.providers)],
        )

    def _health(self, pid: str) -> ProviderHealth:
        serving = self.app.serving
        provider = serving.table.providers[pid]
        credentials = serving.table.providers[pid].credentials
        missing = [c.id for c in credentials if (pid, c.id) in serving.credential_problems]
        circuit = self._circuit(pid)
        return ProviderHealth(provider=pid, type=provider.type, state=circuit.state, ready_in_s=circuit.ready_in_s,
                              credentials=len(credentials), credentials_missing=missing)

    def keys(self, search: str | None = None, page: int = 1, per_page: int = 50) -> Page[KeyInfo]:
        """Keys whose id, team or principal contains `search` (case-insensitive), by id."""
        table = self.app.serving.table
        now = self._now()
        needle = (search or "").casefold()
        found = [k for _, k in sorted(table.keys.items())
                 if not needle or any(needle in (v or "").casefold() for v in (k.id, k.team, k.principal))]
        page, per_page = _paging(page, per_page)
        shown = found[(page - 1) * per_page:page * per_page]
        seen = queries.last_used(self._read, [k.id for k in shown])
        items = [_key_info(k, now, seen.get(k.id)) for k in shown]
        return Page[KeyInfo](total=len(found), page=page, per_page=per_page, items=items)

    def budgets(self) -> list[BudgetInfo]:
        """Every budget instance of the table in its current window, at the table's limits, with
        the ledger's spend; sorted by how close each is to blocking, closest first."""
        table = self.app.serving.table
        now = self._now()
        rows = {(r.instance, r.window): r for r in (self.ledger.counters() if self.ledger is not None else [])}
        shown = []
        for instance, spec in table.budgets.items():
            slot = slot_for(instance, spec, now)
            row = rows.get((instance, slot.window))
            shown.append(_budget_info(CounterRow(
                instance, slot.window, slot.budget, slot.scope, slot.target, slot.window_kind, slot.limit_pico,
                slot.block_pico, slot.warn_pico, row.spent if row else 0, row.reserved if row else 0), spec.source))
        return sorted(shown, key=lambda b: (-(b.spent_pico / b.block_pico if b.block_pico else 1.0), b.instance))

    def rate_limits(self) -> list[RateLimitInfo]:
        table = self.app.serving.table
        usage = {u.instance: u for u in (self.ledger.limit_usage(self.clock()) if self.ledger is not None else [])}
        shown = []
        for instance in sorted(table.rate_limits):
            spec, used = table.rate_limits[instance], usage.get(instance)
            requests_used = used.requests_used if used else 0.0
            tokens_used = used.tokens_used if used else 0.0
            in_flight = used.in_flight if used else 0
            fractions = [requests_used / spec.requests.count if spec.requests else 0.0,
                         tokens_used / spec.tokens.count if spec.tokens else 0.0,
                         in_flight / spec.in_flight if spec.in_flight else 0.0]
            shown.append(RateLimitInfo(
                instance=instance, limit=spec.limit, scope=spec.scope, target=spec.target,
                models=list(spec.models) if spec.models is not None else None,
                requests_used=round(requests_used, 3), requests_limit=spec.requests.count if spec.requests else None,
                requests_period_s=spec.requests.period_s if spec.requests else None,
                tokens_used=round(tokens_used, 3), tokens_limit=spec.tokens.count if spec.tokens else None,
                tokens_period_s=spec.tokens.period_s if spec.tokens else None,
                in_flight=in_flight, in_flight_limit=spec.in_flight, fraction_used=round(max(fractions), 4),
                source=spec.source,
            ))
        return shown

    def circuits(self) -> list[CircuitInfo]:
        return [self._circuit(pid) for pid in sorted(self.app.serving.table.providers)]

    def _circuit(self, pid: str) -> CircuitInfo:
        serving = self.app.serving
        provider = serving.table.providers[pid]
        usable = {c.id for c in serving.usable.get(pid, ())}
        credentials = []
        for credential in serving.table.providers[pid].credentials:
            failures, cooling, resting = self.app.circuits.credential_state(credential)
            state: CircuitState = ("no_credential" if credential.id not in usable else "open" if cooling > 0
                                   else "resting" if resting > 0 else "closed")
            credentials.append(CredentialCircuit(id=credential.id, state=state, failures=failures,
                                                 ready_in_s=round(max(cooling, resting), 3), weight=credential.weight))
        live = [c for c in credentials if c.state != "no_credential"]
        provider_state: CircuitState
        if not live:
            provider_state = "no_credential"
        elif all(c.state in ("open", "resting") for c in live):
            provider_state = "open"
        else:
            provider_state = "closed"
        ready = min((c.ready_in_s for c in live), default=0.0) if provider_state == "open" else 0.0
        return CircuitInfo(provider=pid, state=provider_state, ready_in_s=ready,
                           failures_to_open=provider.circuit_failures, cooldown_s=provider.circuit_cooldown_s,
                           credentials=credentials)

    def refusals(self, reason: str | None = None, key: str | None = None, page: int = 1,
                 per_page: int = 50) -> Page[RefusalInfo]:
        """The most recent refusals first, of one error code (`reason`) and key when given."""
        page, per_page = _paging(page, per_page)
        total, rows = queries.refusals(self._read, reason, key, (page - 1) * per_page, per_page)
        items = [RefusalInfo(at=datetime.fromtimestamp(float(str(at)), UTC), status=int(str(status)), code=str(code),
                             key=_text(k), model=_text(model), source=_text(source), message=str(message))
                 for at, status, code, k, model, source, message in rows]
        return Page[RefusalInfo](total=total, page=page, per_page=per_page, items=items)

    def refusal_counts(self, since: datetime | None = None) -> list[RefusalCount]:
        """Refusals kept, by error code, most frequent first (since `since`, by default the last 24 h)."""
        start = since or self._now() - timedelta(days=1)
        return [RefusalCount(code=code, count=count) for code, count in queries.refusal_counts(self._read, start)]

    def spend(self, group_by: GroupBy = "team", granularity: Granularity = "day", since: datetime | None = None,
              until: datetime | None = None, top: int = 20) -> SpendSeries:
        """Spend and requests per bucket and per team, key, model or provider: by day over the
        last 90 days, by hour over the last 48 hours unless `since`/`until` say otherwise (UTC;
        `until` is exclusive). The `top` lines that spent most are given, the rest summed as one
        line named `OTHERS` (`top` 0: every line)."""
        step = 24 if granularity == "day" else 1
        now_hour = int(self.clock()) // 3600
        end = _hour_of(until) if until is not None else (now_hour // step + 1) * step
        end = -(-end // step) * step
        start = _hour_of(since) if since is not None else end - (DAYS_KEPT * 24 if step == 24 else HOURS_SHOWN)
        start = start // step * step
        buckets = list(range(start, end, step))
        names, rows = queries.spend(self._read, group_by, granularity, start // step, end // step, top)
        series = {name: ([0] * len(buckets), [0] * len(buckets)) for name in names}
        for name, bucket, requests, spent in rows:
            pico, count = series[name]
            i = bucket - start // step
            pico[i] += spent
            count[i] += requests
        times = [_at(b) for b in buckets]
        lines = []
        # Built without validation (`model_construct`): every number is the ledger's integer.
        for name, (pico, count) in series.items():
            total = sum(pico)
            lines.append(SpendLine.model_construct(
                name=name, total_pico=total, total_usd=decimal_usd(total), requests=sum(count),
                points=[SpendPoint.model_construct(at=at, spent_pico=p, spent_usd=decimal_usd(p) if p else "0",
                                                   requests=c)
                        for at, p, c in zip(times, pico, count, strict=True)],
            ))
        total = sum(line.total_pico for line in lines)
        return SpendSeries(group_by=group_by, granularity=granularity, since=_at(start), until=_at(end),
                           buckets=times, total_pico=total, total_usd=decimal_usd(total), lines=lines)


def open_activity_reader(data_dir: Path) -> sqlite3.Connection | None:
    """A read-only connection to the ledger file in `data_dir`, or None when it does not exist."""
    path = data_dir / LEDGER_FILE
    if not path.exists():
        return None
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10, isolation_level=None,
                         check_same_thread=False)
    db.execute("PRAGMA busy_timeout=10000")
    return db


def _paging(page: int, per_page: int) -> tuple[int, int]:
    return max(1, page), min(max(1, per_page), MAX_PER_PAGE)


def _hour_of(when: datetime) -> int:
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return int(aware.timestamp()) // 3600


def _at(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _key_info(key: KeyEntry, now: datetime, last_used: float | None) -> KeyInfo:
    status = "expired" if key.status == "active" and key.expires_at is not None and key.expires_at <= now else key.status
    return KeyInfo(
        id=key.id, team=key.team, principal=key.principal, status=status, expires_at=key.expires_at,
        profile=key.profile, models=sorted(n for n, r in key.routes.items() if not r.alias_chain),
        aliases=sorted(n for n, r in key.routes.items() if r.alias_chain), budgets=list(key.budgets),
        rate_limits=list(key.rate_limits),
        last_used=datetime.fromtimestamp(last_used, UTC) if last_used is not None else None, source=key.source,
    )


def _budget_info(row: CounterRow, source: str | None) -> BudgetInfo:
    state: BudgetState = ("blocked" if row.spent + row.reserved >= row.block_pico
                          else "warn" if row.warn_pico is not None and row.spent >= row.warn_pico else "ok")
    limit = row.limit_pico
    return BudgetInfo(
        instance=row.instance, budget=row.budget, scope=row.scope, target=row.target, window=row.window_kind,
        window_label=row.window, spent_pico=row.spent, reserved_pico=row.reserved, limit_pico=limit,
        warn_pico=row.warn_pico, block_pico=row.block_pico, spent_usd=decimal_usd(row.spent),
        reserved_usd=decimal_usd(row.reserved), limit_usd=decimal_usd(limit),
        warn_usd=decimal_usd(row.warn_pico) if row.warn_pico is not None else None,
        block_usd=decimal_usd(row.block_pico), fraction_used=round(row.spent / limit, 6) if limit else 0.0,
        warn_fraction=round(row.warn_pico / limit, 6) if limit and row.warn_pico is not None else None,
        block_fraction=round(row.block_pico / limit, 6) if limit else 1.0, state=state, source=source,
    )
