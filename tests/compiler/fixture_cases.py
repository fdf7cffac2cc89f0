"""Pass tests as data, the way sqlglot keeps one fixture file per optimizer rule: a new case is a
policy and what the pass should make of it, not a new test function.

`tests/compiler/cases/<pass>.yaml` holds a `registry` (the providers and models the cases share,
compiled as `registry.yaml` beside each case) and a list of `cases`, each with a `case` sentence
naming the behaviour, a `policy` (compiled as `policy.yaml`) and the expectations its test reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy.loader import SourceFile

CASES = Path(__file__).resolve().parent / "cases"


@dataclass(frozen=True)
class Case:
    name: str
    files: list[SourceFile]
    expected: dict[str, Any]


def source(path: str, text: str) -> SourceFile:
    return SourceFile(path, text, "0" * 64)


def load_cases(pass_name: str) -> list[Any]:
    """The cases of one pass as pytest parameters, each named by its sentence."""
    data = yaml.safe_load((CASES / f"{pass_name}.yaml").read_text())
    params = []
    for entry in data["cases"]:
        files = [source("registry.yaml", data["registry"]), source("policy.yaml", entry.pop("policy"))]
        name = entry.pop("case")
        params.append(pytest.param(Case(name, files, entry), id=name))
    return params


def assert_contains(actual: Any, expected: Any, where: str) -> None:
    """`expected` is found in `actual`: mappings key by key for the keys it names, anything else whole."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: a mapping was expected, found {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}: no {key!r} among {sorted(actual)}"
            assert_contains(actual[key], value, f"{where}.{key}")
    else:
        assert actual == expected, f"{where}: found {actual!r}, expected {expected!r}"
