"""The READMEs' `policy ...` examples that target examples/ run as printed: each exits as its
comment says (`exit N`, else 0), and a sample output shown after a command is what it prints."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT

READMES = [ROOT / "README.md", *sorted(EXAMPLES.glob("*/README.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
INLINE_COMMAND = re.compile(r"`(policy [^`]+)`")
ELIDED = "..."


@dataclass(frozen=True)
class Example:
    readme: str
    command: str
    exit_code: int = 0
    sample: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.readme}: {self.command}" + (" (its sample output)" if self.sample else "")


def _targets_examples(command: str) -> bool:
    return any(arg.startswith("examples/") for arg in shlex.split(command))


def examples() -> list[Example]:
    found = []
    for readme in READMES:
        text = readme.read_text()
        name = readme.relative_to(ROOT).as_posix()
        for fence in FENCE.finditer(text):
            lang, body = fence.group(1), fence.group(2)
            if lang == "bash":
                for line in body.splitlines():
                    command, _, comment = line.partition("  #")
                    if command.startswith("policy ") and _targets_examples(command):
                        code = re.search(r"\bexit (\d+)", comment)
                        found.append(Example(name, command.strip(), int(code.group(1)) if code else 0))
            elif lang == "text":
                before = text[: fence.start()].rstrip().rsplit("\n\n", 1)[-1]
                commands = INLINE_COMMAND.findall(before.replace("\n", " "))
                if commands and _targets_examples(commands[-1]):
                    found.append(Example(name, commands[-1], 0, tuple(body.splitlines())))
    return found


def _normal(line: str) -> str:
    return " ".join(line.split())


def _chunks(sample: tuple[str, ...]) -> list[list[str]]:
    chunks: list[list[str]] = [[]]
    for line in sample:
        if line.strip() == ELIDED:
            chunks.append([])
        else:
            chunks[-1].append(_normal(line))
    return [c for c in chunks if c]


def _appears_in_order(chunks: list[list[str]], output: list[str]) -> bool:
    at = 0
    for chunk in chunks:
        while at + len(chunk) <= len(output) and output[at:at + len(chunk)] != chunk:
            at += 1
        if at + len(chunk) > len(output):
            return False
        at += len(chunk)
    return True


def test_the_readmes_have_runnable_examples() -> None:
    found = examples()
    assert any(e.sample for e in found)
    assert any("--key-prefix" in e.command for e in found)


@pytest.mark.parametrize("example", examples(), ids=str)
def test_readme_example_runs_as_printed(example: Example, tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    argv = [sys.executable, "-m", "cli", *shlex.split(example.command)[1:]]
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == example.exit_code, proc.stdout + proc.stderr
    if example.sample:
        output = [_normal(line) for line in proc.stdout.splitlines()]
        assert _appears_in_order(_chunks(example.sample), output), proc.stdout
