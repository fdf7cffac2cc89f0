"""What the admin surface's activity tables learn of a request once it has ended: who spent what
where, or who was refused and why (`runtime/ledger/activity.py`). Memory only: the ledger keeper
writes it behind."""

from __future__ import annotations

import time

from ..decision import Deny
from ..ledger.activity import Activity, Refusal
from ..table import LoadedTable
from .exchange import Exchange

REFUSALS = frozenset({401, 402, 403, 429})
"""The gateway's own refusals the admin surface lists (a provider's 429 is the provider's)."""


def observe(activity: Activity, exchange: Exchange, status: int) -> None:
    at = time.time()
    record, deny = exchange.record, exchange.refusal
    if deny is not None and deny.status in REFUSALS:
        table = exchange.serving.table
        message = exchange.serving.scrub.text(deny.message)
        refusal = Refusal(at, deny.status, deny.code, record.vk, record.model, policy_line(table, deny), message)
        activity.refused(refusal, deny.key.team if deny.key is not None else None)
        return
    charge = getattr(exchange, "charge", None)
    decision = getattr(exchange, "decision", None)
    pico = 0
    model = record.model
    if charge is not None:
        amount = charge.amount(exchange.serving.table)
        if amount is None:
            amount = charge.admission.estimate if charge.admission is not None else 0
        pico = amount
        model = charge.model or (decision.route.model if decision is not None else model)
    team = decision.key.team if decision is not None else None
    activity.spent(at, team, record.vk, model, record.provider, pico)


def policy_line(table: LoadedTable, deny: Deny) -> str | None:
    """The line behind a refusal: the budget or rate limit that refused, else the key's status,
    expiry or `models_allowed`, else the key itself."""
    meta, key = deny.meta or {}, deny.key
    if deny.code == "budget_exceeded" and (budget := table.budgets.get(str(meta.get("instance")))) is not None:
        return budget.source
    if deny.code == "rate_limit_exceeded" and (limit := table.rate_limits.get(str(meta.get("instance")))) is not None:
        return limit.source
    if key is None:
        return None
    if deny.status == 401:
        return (key.status_source if key.status != "active" else key.expires_source) or key.source
    if deny.code == "model_not_allowed":
        return key.allowed_source or key.source
    return key.source
