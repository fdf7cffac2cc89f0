"""examples/broken: one policy repository per class of mistake, each reported at its token.

Every folder holds an `EXPECTED` file, one `CODE file:line:col` line per diagnostic (`-` for a
diagnostic without a place), in the order the compiler reports them. The compiler reads only
YAML files, so the EXPECTED file does not take part in the compile.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from cli.main import main as cli_main
from compiler import Diagnostic, compile_policy, render_text
from compiler.codes import ALL, BY_CODE, Severity
from tests.conftest import ACME, EXAMPLES, FIXED_NOW, ROOT

BROKEN = EXAMPLES / "broken"
CASES = sorted(p.name for p in BROKEN.iterdir() if (p / "EXPECTED").is_file())
NOT_PRODUCED_YET: set[str] = set()
"""Codes no compiler pass emits yet, so no example can show them."""


def expected(case: str) -> list[tuple[str, str]]:
    lines = (BROKEN / case / "EXPECTED").read_text().splitlines()
    return [(code, where) for code, where in (line.split() for line in lines if line.strip())]


def located(diagnostic: Diagnostic) -> tuple[str, str]:
    return diagnostic.code, str(diagnostic.span) if diagnostic.span else "-"


def warnings_only(case: str) -> bool:
    return all(BY_CODE[code].severity is Severity.WARNING for code, _ in expected(case))


@pytest.mark.parametrize("case", CASES)
def test_broken_example_reports_its_mistake_where_it_was_made(case: str, snapshot: SnapshotAssertion) -> None:
    result = compile_policy(BROKEN / case, now=FIXED_NOW)

    assert result.failed(strict=warnings_only(case))
    assert [located(d) for d in result.diagnostics] == expected(case)
    assert render_text(result.diagnostics, result.sources) == snapshot


def test_every_code_has_a_broken_example() -> None:
    shown = {code for case in CASES for code, _ in expected(case)}
    assert sorted({c.code for c in ALL} - NOT_PRODUCED_YET - shown) == []


def test_readme_lists_every_broken_example() -> None:
    readme = (BROKEN / "README.md").read_text()
    assert [case for case in CASES if f"[`{case}`]({case}/)" not in readme] == []


def run_check(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "cli", "compile", str(root), "--check", *extra]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_policy_compile_check_exits_1_on_every_broken_example(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`policy compile --check` on each case, in this process (a process per case took half a
    minute of the suite); a case of warnings only fails under --strict."""
    monkeypatch.chdir(ROOT)
    outcomes = []
    for case in CASES:
        rc = cli_main(["compile", str(BROKEN / case), "--check", *(["--strict"] if warnings_only(case) else [])])
        outcomes.append((case, rc, capsys.readouterr().err))
    assert [(case, rc) for case, rc, _ in outcomes if rc != 1] == []
    for case, _, stderr in outcomes:
        for code, where in expected(case):
            place = "" if where == "-" else f"{where}: "
            assert f"{place}{BY_CODE[code].severity.value}[{code}]" in stderr, case


def test_the_real_command_exits_1_on_a_broken_example() -> None:
    """The command as CI runs it, as a process of its own."""
    case = next(c for c in CASES if not warnings_only(c))
    proc = run_check(BROKEN / case)
    assert proc.returncode == 1
    for code, where in expected(case):
        assert f"{'' if where == '-' else where + ': '}{BY_CODE[code].severity.value}[{code}]" in proc.stderr


def test_policy_compile_check_exits_0_on_the_example_repo() -> None:
    if not ACME.is_dir():
        pytest.skip("examples/acme is not there yet")
    proc = run_check(ACME)
    assert proc.returncode == 0, proc.stderr
