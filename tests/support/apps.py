"""The proxy app for a policy directory, composed the way `policy serve` composes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cli.sources import load_source
from runtime.app import Gatepost
from runtime.server import build_app


def app_from(source: Path, **options: Any) -> Gatepost:
    return build_app(load_source(source), **options)
