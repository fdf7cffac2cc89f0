"""A request's side of budgets: its estimate reserved before any provider is called, settled to
what it cost once the answer has been relayed, and the cost and usage logged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..budget.gate import Admission, BudgetGate
from ..decision import Deny
from ..exceptions import LedgerError
from ..metrics import Metrics
from .exchange import Exchange


class Spend:
    def __init__(self, gate: BudgetGate | None, metrics: Metrics) -> None:
        self.gate = gate
        self.metrics = metrics

    async def admit(self, exchange: Exchange, payload: dict[str, Any], size: int) -> Admission | Deny:
        """For a key with budgets: its estimate reserved, or a refusal when a budget is spent or the
        ledger cannot say (budgets are never enforced blind)."""
        key, targets = exchange.decision.key, exchange.decision.targets
        if self.gate is None:
            return Deny(503, "ledger_unavailable", f"virtual key {key.label} has budgets but no ledger is configured", key)
        table = exchange.serving.table
        try:
            admitted = await self.gate.admit_async(table, key, targets, payload, size, datetime.now(UTC))
        except LedgerError as exc:
            message = f"the spend ledger cannot be reached, so budgets cannot be enforced: {exc}"
            return Deny(503, "ledger_unavailable", message, key)
        if isinstance(admitted, Deny):
            exchange.record.decision = admitted.code
            exchange.record.budget = (admitted.meta or {}).get("instance")
        return admitted

    async def settle(self, exchange: Exchange) -> None:
        """The charge (see Charge) settled and logged, whatever ended the request."""
        charge, table, record = exchange.charge, exchange.serving.table, exchange.record
        admission = charge.admission
        if admission is not None and self.gate is not None:
            try:
                await self.gate.settle_async(admission, charge.amount(table), charge.how)
            except LedgerError as exc:
                record.ledger_error = str(exc)
            record.cost_usd = charge.cost_text(table, admission)
        elif charge.usage is not None:
            record.cost_usd = charge.cost_text(table, None)
        if charge.usage is not None:
            record.usage = charge.usage_record()
            if record.vk:
                self.metrics.spend.inc(record.vk, charge.model or "-", amount=charge.usd_float(table))
