"""A request's side of budgets and rate limits: its estimate reserved and its rate limits admitted
before any provider is called, settled to what it cost (and the tokens it used, its slots in
flight given back) once the answer has ended, and the cost and usage logged."""

from __future__ import annotations

from typing import Any

from ..budget.gate import Admission, BudgetGate, RateLimited
from ..decision import Deny
from ..exceptions import LedgerError
from ..metrics import Metrics
from ..ratelimit.applying import applies
from .exchange import Exchange


class Spend:
    def __init__(self, gate: BudgetGate | None, metrics: Metrics) -> None:
        self.gate = gate
        self.metrics = metrics

    async def admit(self, exchange: Exchange, payload: dict[str, Any], size: int) -> Admission | Deny | RateLimited | None:
        """For a key with budgets or rate limits: its estimate reserved and its limits admitted, or a
        refusal when a budget is spent, a limit has no room, or the ledger cannot say (neither is
        ever enforced blind). None when nothing applies: the ledger is not asked."""
        decision = exchange.decision
        key, gate = decision.key, self.gate
        what = "budgets" if key.budgets else "rate limits"
        table, model = exchange.serving.table, decision.route.model
        if gate is None:
            if not key.budgets and not any(applies(table.rate_limits[i], model) for i in key.rate_limits):
                return None
            return Deny(503, "ledger_unavailable", f"virtual key {key.label} has {what} but no ledger is configured", key)
        limits = gate.limits_for(table, key, model)
        if not key.budgets and not limits:
            return None
        try:
            if gate.inline:
                admitted = gate.admit_inline(table, key, decision.targets, payload, size, limits=limits)
            else:
                admitted = await gate.admit_async(table, key, decision.targets, payload, size, limits=limits)
        except LedgerError as exc:
            message = f"the spend ledger cannot be reached, so {what} cannot be enforced: {exc}"
            return Deny(503, "ledger_unavailable", message, key)
        if type(admitted) is Admission:
            return admitted
        if isinstance(admitted, Deny):
            exchange.record.decision = admitted.code
            exchange.record.budget = (admitted.meta or {}).get("instance")
        elif isinstance(admitted, RateLimited):
            exchange.record.decision = "rate_limited"
            exchange.record.rate_limit = admitted.limited.figures.instance
        return admitted

    async def settle(self, exchange: Exchange) -> None:
        """The charge (see Charge) settled and logged, whatever ended the request."""
        charge, table, record = exchange.charge, exchange.serving.table, exchange.record
        admission = charge.admission
        gate = self.gate
        if admission is not None and gate is not None:
            amount, how, tokens = charge.settlement(table)
            try:
                if gate.inline:
                    gate.settle_inline(admission, amount, how, tokens)
                else:
                    await gate.settle_async(admission, amount, how, tokens)
            except LedgerError as exc:
                record.ledger_error = str(exc)
            record.cost_usd = charge.cost_text(amount, admission)
        else:
            amount = charge.amount(table)
            if charge.usage is not None:
                record.cost_usd = charge.cost_text(amount, None)
        if charge.usage is not None:
            record.usage = charge.usage_record()
            if record.vk:
                self.metrics.spend.inc(record.vk, charge.model or "-", amount=charge.usd_float(amount))
