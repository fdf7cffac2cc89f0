"""Semantic checks, one concern per module, run in this order; each yields Diagnostics.

LOCAL_CHECKS read one entity at a time, so they run even while a file of the repository does not
parse; the others relate entities to each other and wait until every file has been read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..context import Context
from ..diagnostics import Diagnostic
from .access import check_aliases, check_models_allowed
from .admin import check_admin_token
from .budgets import check_budgets
from .cache import check_cache
from .fallback import check_fallback, check_fallback_conditions
from .inheritance import check_inheritance
from .protocols import check_protocols
from .providers import check_providers
from .rate_limits import check_rate_limits
from .registry import check_registry
from .secrets import check_keys, check_literal_secrets

Check = Callable[[Context], Iterator[Diagnostic]]

LOCAL_CHECKS: tuple[Check, ...] = (
    check_fallback_conditions,
    check_literal_secrets,
    check_admin_token,
)

CHECKS: tuple[Check, ...] = (
    check_fallback_conditions,
    check_providers,
    check_registry,
    check_inheritance,
    check_models_allowed,
    check_aliases,
    check_fallback,
    check_protocols,
    check_cache,
    check_budgets,
    check_rate_limits,
    check_keys,
    check_literal_secrets,
    check_admin_token,
)

__all__ = ["CHECKS", "LOCAL_CHECKS", "Check"]
