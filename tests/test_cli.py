"""The `policy` command as CI and engineers run it: exit codes, output formats, files written."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from tests.conftest import ACME, ROOT
from tests.support.cli import policy, policy_process

EXPIRED_POLICY = """\
models:
  gpt-4o: {providers: [openai-primary], price: {input: 2.5, output: 10}}
providers:
  openai-primary: {type: openai, api_key: env:OPENAI_API_KEY}
virtual_keys:
  vk-old:
    key_sha256: %s
    models_allowed: [gpt-4o]
    expires_at: 2020-01-01T00:00:00Z
""" % hashlib.sha256(b"old").hexdigest()

BROKEN_POLICY = """\
providers:
  openai-primary: {type: openai, api_key: env:OPENAI_API_KEY}
models:
  gpt-4o: {providers: [openai-primary]}
profiles:
  codex-default: {models_allowed: [gpt-4o]}
virtual_keys:
  vk-alice:
    key_sha256: %s
    extends: codex-defualt
""" % hashlib.sha256(b"alice").hexdigest()


def write(tmp_path: Path, text: str) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "policy.yaml").write_text(text)
    return repo


def test_check_on_the_example_repo_exits_0_and_writes_nothing(tmp_path: Path) -> None:
    proc = policy_process("compile", str(ACME), "--check", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ok: 0 errors" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_output_file_holds_the_artifact(tmp_path: Path) -> None:
    out = tmp_path / "build" / "table.json"
    proc = policy("compile", str(ACME), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_bytes())
    assert data["revision"].startswith("sha256:") and data["revision"][:19] in proc.stderr


def test_policy_errors_exit_1_with_located_text(tmp_path: Path) -> None:
    repo = write(tmp_path, BROKEN_POLICY)
    proc = policy("compile", str(repo), "--check")
    assert proc.returncode == 1
    assert "policy.yaml:10:14: error[GP203]: 'vk-alice' extends unknown profile 'codex-defualt'" in proc.stderr
    assert "did you mean 'codex-default'?" in proc.stderr
    assert "^^^^^^^^^^^^^" in proc.stderr


def test_errors_never_write_an_artifact(tmp_path: Path) -> None:
    repo = write(tmp_path, BROKEN_POLICY)
    out = tmp_path / "table.json"
    assert policy("compile", str(repo), "-o", str(out)).returncode == 1
    assert not out.exists()


def test_json_format_is_machine_readable(tmp_path: Path) -> None:
    repo = write(tmp_path, BROKEN_POLICY)
    proc = policy("compile", str(repo), "--check", "--format", "json")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["format_version"] == 1 and data["summary"] == {"errors": 1, "warnings": 0}
    [diag] = data["diagnostics"]
    assert (diag["code"], diag["file"], diag["line"], diag["col"]) == ("GP203", "policy.yaml", 10, 14)
    assert diag["hint"] == "did you mean 'codex-default'?"


def test_github_format_annotates_the_pull_request(tmp_path: Path) -> None:
    write(tmp_path, BROKEN_POLICY)
    proc = policy("compile", "repo", "--check", "--format", "github", cwd=tmp_path)
    assert proc.returncode == 1
    assert re.fullmatch(
        r"::error file=repo/policy\.yaml,line=10,col=14,endColumn=27,title=GP203 unknown profile::"
        r"GP203: 'vk-alice' extends unknown profile 'codex-defualt' \(did you mean 'codex-default'\?\)\n",
        proc.stdout,
    )


def test_warnings_pass_unless_strict(tmp_path: Path) -> None:
    repo = write(tmp_path, EXPIRED_POLICY)
    relaxed = policy("compile", str(repo), "--check")
    assert relaxed.returncode == 0 and "warning[GP313]" in relaxed.stderr
    assert policy("compile", str(repo), "--check", "--strict").returncode == 1


@pytest.mark.parametrize(
    "args",
    [["compile", "does/not/exist", "--check"], ["compile"], ["frobnicate"], ["compile", ".", "--format", "xml"]],
)
def test_usage_and_io_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    proc = policy(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["compile", "--help"], ["keys", "new", "--help"], ["schema", "--help"]])
def test_help_answers(args: list[str]) -> None:
    proc = policy(*args)
    assert proc.returncode == 0 and "usage: policy" in proc.stdout


def test_keys_new_prints_the_key_once_and_its_digest() -> None:
    proc = policy_process("keys", "new", "--id", "vk-bob-codex")
    assert proc.returncode == 0
    key = re.search(r"^  (gp-\S+)$", proc.stdout, re.M)
    assert key is not None and len(key.group(1)) >= 40
    assert proc.stdout.count(key.group(1)) == 1
    assert f"key_sha256: {hashlib.sha256(key.group(1).encode()).hexdigest()}" in proc.stdout
    assert f"key_prefix: {key.group(1)[:12]}" in proc.stdout
    assert "  vk-bob-codex:" in proc.stdout
    assert policy("keys", "new").stdout != proc.stdout


def test_checked_in_schemas_are_fresh() -> None:
    proc = policy_process("schema", "--check", "--out", str(ROOT / "schemas"))
    assert proc.returncode == 0, f"stale schemas: run `policy schema`\n{proc.stderr}"


def test_schema_check_reports_stale_files(tmp_path: Path) -> None:
    (tmp_path / "policy.schema.json").write_text("{}\n")
    assert policy("schema", "--check", "--out", str(tmp_path)).returncode == 1
    assert policy("schema", "--out", str(tmp_path)).returncode == 0
    assert policy("schema", "--check", "--out", str(tmp_path)).returncode == 0


def test_example_files_carry_the_schema_modeline() -> None:
    for path in ACME.rglob("*.yaml"):
        if any(part.startswith(".") for part in path.relative_to(ACME).parts):
            continue
        first = path.read_text().splitlines()[0]
        match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
        assert match, path
        schema = "policy-test.schema.json" if path.name.endswith("_test.yaml") else "policy.schema.json"
        assert (path.parent / match.group(1)).resolve() == (ROOT / "schemas" / schema), path


def test_sarif_format_for_code_scanning(tmp_path: Path) -> None:
    repo = write(tmp_path, BROKEN_POLICY)
    proc = policy("compile", "repo", "--check", "--format", "sarif", cwd=tmp_path)
    assert proc.returncode == 1
    sarif = json.loads(proc.stdout)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    assert run["tool"]["driver"]["name"] == "gatepost" and run["tool"]["driver"]["rules"][0]["id"] == "GP203"
    [result] = run["results"]
    location = result["locations"][0]["physicalLocation"]
    assert result["ruleId"] == "GP203" and result["level"] == "error"
    assert location["artifactLocation"]["uri"] == "repo/policy.yaml"
    assert location["region"]["startLine"] == 10 and location["region"]["startColumn"] == 14
    assert repo.exists()
