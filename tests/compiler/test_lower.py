"""Lower pass: the resolved policy as the routing table the proxy serves. The cases live in
`cases/lower.yaml` and are read back from the emitted artifact, so they hold whatever the
compiler builds the table with."""

from __future__ import annotations

import json
from typing import Any

import pytest

from artifact import encode
from compiler import compile_sources
from tests.compiler.fixture_cases import Case, assert_contains, load_cases
from tests.conftest import FIXED_NOW


def compiled_table(case: Case) -> tuple[dict[str, Any], list[str]]:
    """The artifact file's `table`, each key's route set read into the key as what it may call, and
    the codes of the warnings it compiled with."""
    result = compile_sources(case.files, now=FIXED_NOW)
    assert not result.errors, [f"{d.span}: {d.code} {d.message}" for d in result.errors]
    assert result.artifact is not None
    table = json.loads(encode(result.artifact))["table"]
    for key in table["virtual_keys"].values():
        key["routes"] = table["route_sets"][key["routes"]]
    return table, [d.code for d in result.warnings]


@pytest.mark.parametrize("case", load_cases("lower"))
def test_lower(case: Case) -> None:
    table, warnings = compiled_table(case)
    assert warnings == case.expected.get("warnings", [])
    assert_contains(table, case.expected["table"], "table")
