"""The exit codes of every `policy` command, kept apart so commands and the parser share them
without importing each other.

Like Cedar's, they keep "your policy is wrong" apart from "the tool could not run".
"""

from __future__ import annotations

EXIT_OK = 0
"""Clean: the policy compiles, the tests pass, the command did what it was asked."""
EXIT_POLICY = 1
"""The policy is wrong: errors (or warnings under --strict), failing policy tests, a bad table."""
EXIT_USAGE = 2
"""The tool could not run: a usage error, an unreadable file or ledger."""
EXIT_CHANGED = 3
"""`policy diff` found changes."""
EXIT_CANNOT_SERVE = 4
"""`policy serve` cannot listen on its address (in use, not permitted, not this host's)."""
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
"""Whoever read the output stopped reading (`policy keys new | head -3`): 128 + SIGPIPE, as a
shell reports a command its pipe closed on."""
