"""What `policy serve` reads from its environment, for a container that sets variables rather
than arguments: each setting a flag, and the variable it falls back to. A flag given wins; a
variable that is set but not valid is a usage error naming it, as a bad flag is.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from runtime.workers import available_cores


class SettingError(Exception):
    """An environment variable `policy serve` reads whose value it cannot use."""


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def worker_count(text: str) -> int:
    """A count of worker processes, or `auto`: the cores this process may run on."""
    if text.strip().lower() == "auto":
        return available_cores()
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers (a whole number from 1, or auto)") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"{count} is not a number of workers (a whole number from 1, or auto)")
    return count


def grace_seconds(text: str) -> int:
    try:
        seconds = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a grace period (whole seconds from 0)") from None
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"{seconds} is not a grace period (whole seconds from 0)")
    return seconds


def non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("it is empty")
    return text


def directory(text: str) -> Path:
    return Path(non_empty(text))


@dataclass(frozen=True)
class Setting:
    variable: str
    flag: str
    dest: str
    parse: Callable[[str], object]
    older: str | None = None
    """The variable's name before it was given the GATEPOST_<SETTING> form, still read after it."""


SETTINGS = (
    Setting("GATEPOST_HOST", "--host", "host", non_empty),
    Setting("GATEPOST_PORT", "--port", "port", port_number),
    Setting("GATEPOST_WORKERS", "--workers", "workers", worker_count),
    Setting("GATEPOST_DATA_DIR", "--data", "data", directory, older="GATEPOST_DATA"),
    Setting("GATEPOST_LEDGER_URL", "--ledger", "ledger", non_empty, older="GATEPOST_LEDGER"),
    Setting("GATEPOST_GRACE_PERIOD", "--grace-period", "grace_period", grace_seconds),
)
"""Every setting `policy serve` takes from the environment, in `--help`'s order. A new one (the
telemetry endpoint, GATEPOST_OTLP_ENDPOINT) is one more line here and its flag in cli/parser.py."""


def environment_help() -> str:
    names = ", ".join(f"{s.variable} ({s.flag})" for s in SETTINGS)
    return f"Environment (a flag given wins over its variable): {names}."


def apply_environment(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> None:
    """Fill every setting no flag gave from its variable, checked as its flag is."""
    for setting in SETTINGS:
        if getattr(args, setting.dest, None) is not None:
            continue
        for variable in (setting.variable, setting.older):
            if variable is None or not environ.get(variable):
                continue
            try:
                setattr(args, setting.dest, setting.parse(environ[variable]))
            except (argparse.ArgumentTypeError, ValueError) as exc:
                raise SettingError(f"{variable}: {exc}") from None
            break
