"""Reading the policy's written values the same way in the checks and in lowering."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from policy.models import RATE_FORMS, RATE_UNITS

from .errors import UnreadableValue

RATE = re.compile(r"^(0|[1-9][0-9]*)/([a-z]+)$")

PERCENT_DECIMALS = 2
"""The artifact holds thresholds in basis points (8000 = 80%), so 80.25% is exact and 80.255% is not."""


def parse_percent(value: str | int | Decimal | None) -> Decimal | None:
    """'80%' or 80 -> Decimal(80); raises UnreadableValue for anything else, finer than a basis point included."""
    if value is None:
        return None
    text = str(value).strip()
    if text.endswith("%"):
        text = text[:-1].strip()
    try:
        number = Decimal(text)
    except InvalidOperation as exc:
        raise UnreadableValue(f"'{value}' is not a percentage such as 80%") from exc
    if not number.is_finite() or number <= 0 or number > 1000:
        raise UnreadableValue(f"'{value}' must be a percentage above 0% and at most 1000%")
    if decimal_places(number) > PERCENT_DECIMALS:
        raise UnreadableValue(
            f"'{value}' is finer than a basis point, which the table cannot hold: "
            f"at most {PERCENT_DECIMALS} decimals, e.g. 80.25%"
        )
    return number


def decimal_places(value: Decimal) -> int:
    """Digits after the point that carry a value: 2 for 1.50 and 1.25, 0 for 1E+23; never raises."""
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def normalise_condition(value: str | int) -> str:
    """A fallback condition as text, the way a check compares it with the known ones: 429 is `429`.

    Conditions are case-sensitive like every enumerated value (the check refuses `5XX`, naming
    `5xx`); lowering folds case only for conditions the check already accepted."""
    return str(value).strip().lower()


def parse_rate(text: str, most: int) -> tuple[int, int]:
    """'60/minute' -> (60, 60): the count and the period in seconds; the count from 1 to `most`.
    Raises UnreadableValue, naming the accepted forms, for anything else."""
    found = RATE.match(text)
    if found is None or found.group(2) not in RATE_UNITS:
        raise UnreadableValue(f"'{text}' is not a rate such as 60/minute")
    count = int(found.group(1))
    if not 1 <= count <= most:
        raise UnreadableValue(f"'{text}' must allow from 1 to {most:,} per {found.group(2)}")
    return count, RATE_UNITS[found.group(2)]


RATE_HINT = f"write {RATE_FORMS}, e.g. 60/minute"
