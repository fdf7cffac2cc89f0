"""The admin token: `gateway.admin.token` is a reference to where the token is kept, never the token."""

from __future__ import annotations

from collections.abc import Iterator

from .. import codes
from ..context import Context
from ..diagnostics import Diagnostic
from .providers import CREDENTIAL_PREFIXES, SHELL_VARIABLE, _names_a_variable, _reference_hint

WHERE = ("gateway", "admin", "token")


def check_admin_token(ctx: Context) -> Iterator[Diagnostic]:
    """Anything but `env:NAME` or `file:PATH` is the token itself (GP501), or names the variable
    that holds it without the `env:` that says so (GP505)."""
    gateway = ctx.policy.gateway
    if gateway is None or gateway.admin is None:
        return
    value = gateway.admin.token
    if value.startswith(CREDENTIAL_PREFIXES) and value not in CREDENTIAL_PREFIXES:
        return
    shell = SHELL_VARIABLE.fullmatch(value.strip())
    names_variable = _names_a_variable(value, shell)
    yield Diagnostic.of(
        codes.INVALID_SECRET_REF if names_variable else codes.PLAINTEXT_SECRET,
        "gateway.admin.token must be an env:NAME or file:PATH reference" if names_variable
        else "gateway.admin.token is a literal token; secrets never belong in the policy",
        ctx.index.value(*WHERE),
        hint=_reference_hint(shell, "token") + ("" if names_variable or not ctx.in_git_repository
                                                else "; choose a new token, this one is in git history now"),
        secret=None if names_variable else value,
    )
