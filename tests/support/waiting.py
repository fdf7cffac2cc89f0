"""Waiting on what another process does, seen only from outside it: the revision `/readyz` serves,
a line in its log. The condition is the event; the deadline only bounds a failing test."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], object], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)
