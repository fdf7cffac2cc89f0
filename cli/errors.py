"""The command line's exceptions; each command catches them and turns them into a message on
stderr and an exit code (`cli.exit_codes`), never a traceback:

    PolicyError     a policy directory that does not compile; `report` holds the rendered
                    diagnostics. A runtime TableError (a source that must not be served),
                    so the reloader refuses it like a bad artifact and keeps serving.
    SideError       one side of `policy diff` that cannot be read or compiled; carries the
                    exit code that says which (usage, or a policy that does not compile).
"""

from __future__ import annotations

from runtime.table import TableError


class PolicyError(TableError):
    """A policy directory that does not compile; `report` is the rendered diagnostics."""

    def __init__(self, report: str) -> None:
        super().__init__(report)
        self.report = report


class SideError(Exception):
    """A side of `policy diff` that cannot be read; `exit_code` is what the command exits with."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
