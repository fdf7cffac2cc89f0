"""The compiler's exceptions. What is wrong with a policy is a Diagnostic with a stable code,
never an exception that escapes `compile_policy`; these are raised between the compiler's own
modules and each is turned into a located Diagnostic where it is caught:

    CompilerError            the base; nothing outside the compiler needs to catch it
     └─ UnreadableValue      a written value that is not what its field takes (a percentage
                             such as `80 %` or `eighty`); also a ValueError
"""

from __future__ import annotations


class CompilerError(Exception):
    """Raised inside the compiler and turned into a Diagnostic before `compile_policy` returns."""


class UnreadableValue(CompilerError, ValueError):
    """A value whose text the field cannot take; the message says what was expected."""
