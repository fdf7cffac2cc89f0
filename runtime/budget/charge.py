"""What one request costs, as the proxy learns it: the answering model, the usage read from the
answer, and the rule for what to charge when the answer is incomplete."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..table import LoadedTable
from .cost import PICO_PER_USD, Usage, cost_pico
from .gate import Admission
from .tap import UsageTap


class Charge:
    """Settles to the real cost when usage is known; to the estimate when an answer was cut
    short or its usage is missing (never lose a charge); to nothing when no target answered or
    the provider refused the request (a non-2xx answer is not billed)."""

    def __init__(self, admission: Admission | None) -> None:
        self.admission = admission
        self.model: str | None = None
        self.status: int | None = None
        self.tap: UsageTap | None = None
        self.usage: Usage | None = None
        self.broken = False
        self.complete = False
        self.stream = False

    def answered(self, model: str, status: int, stream: bool) -> None:
        self.model = model
        self.status = status
        self.stream = stream
        if 200 <= status < 300:
            self.tap = UsageTap(sse=stream)

    def finish(self) -> None:
        if self.tap is not None:
            self.usage = self.tap.finish()

    def amount(self, table: LoadedTable) -> int | None:
        """Pico-USD to charge; None means the reservation's estimate."""
        return self.settlement(table)[0]

    def settlement(self, table: LoadedTable) -> tuple[int | None, str, int | None]:
        """What its reservation settles to: `amount`; how that was decided; the tokens to settle a
        token rate limit to (input + output when the answer reported them, none when no target
        answered or the provider refused, None for the estimate)."""
        model, status, usage = self.model, self.status, self.usage
        if model is None or status is None or not 200 <= status < 300:
            return 0, "nothing: no target answered" if model is None else f"nothing: provider answered {status}", 0
        if usage is None or self.broken:
            how = "estimate: the answer was cut short" if self.broken or not self.complete else "estimate: no usage reported"
            return None, how, None
        price = table.models[model].price
        return cost_pico(usage, price) if price is not None else 0, "usage", usage.input_tokens + usage.output_tokens

    @staticmethod
    def usd_float(amount: int | None) -> float:
        """`amount` (as `amount` answers it) in dollars, for the spend metric."""
        return (amount or 0) / PICO_PER_USD

    @staticmethod
    def cost_text(amount: int | None, admission: Admission | None) -> str:
        """`amount` (as `amount` answers it; None is the admission's estimate) in exact dollars."""
        if amount is None:
            amount = admission.estimate if admission is not None else 0
        return str(Decimal(amount) / PICO_PER_USD)

    def usage_record(self) -> dict[str, Any]:
        u = self.usage
        assert u is not None
        return {
            "input_tokens": u.input_tokens,
            "cached_input_tokens": u.cached_input_tokens,
            "output_tokens": u.output_tokens,
            "reasoning_tokens": u.reasoning_tokens,
        }
