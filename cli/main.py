"""The `policy` command line: the one place where the language, the compiler and the runtime meet.

`policy`, `compiler`, `artifact` and `runtime` never import this package; each command imports
the layers it composes, and only when it runs, so `policy --help` stays fast.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import cast

from .exit_codes import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_USAGE
from .parser import build_parser

COMMANDS: dict[str, tuple[str, str]] = {
    "compile": ("compile", "run_compile"),
    "keys": ("keys", "run_keys_new"),
    "serve": ("serve", "run_serve"),
    "explain": ("explain", "run_explain"),
    "test": ("test", "run_test"),
    "diff": ("diff", "run_diff"),
    "fmt": ("fmt", "run_fmt"),
    "init": ("init", "run_init"),
    "budgets": ("budgets", "run_budgets"),
    "schema": ("schema", "run_schema"),
}
"""Command name -> (module of `cli.commands`, its entry function)."""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _run(argv)
        sys.stdout.flush()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    return code


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    found = COMMANDS.get(args.command)
    if found is None:
        return EXIT_USAGE
    module, function = found
    run = cast(Callable[[object], int], getattr(importlib.import_module(f"cli.commands.{module}"), function))
    return run(args)


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush at exit does not hit the closed
    pipe again and print a traceback of its own."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
