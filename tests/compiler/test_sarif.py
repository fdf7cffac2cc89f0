"""`--format sarif`: every report is structurally valid SARIF 2.1.0.

The official JSON Schema cannot be fetched here, so `sarif_problems` checks the properties the
2.1.0 schema requires and GitHub code scanning reads.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from compiler import compile_policy, render_sarif
from tests.conftest import ACME, EXAMPLES, FIXED_NOW, ROOT
from tests.support.cli import policy

LEVELS = {"none", "note", "warning", "error"}
BROKEN = sorted(p for p in (EXAMPLES / "broken").iterdir() if p.is_dir())


def sarif_problems(doc: Any) -> list[str]:
    problems: list[str] = []

    def need(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    need(isinstance(doc, dict), "the log is an object")
    need(doc.get("version") == "2.1.0", "version is 2.1.0")
    need(isinstance(doc.get("$schema"), str) and "sarif" in doc["$schema"], "$schema names the SARIF schema")
    runs = doc.get("runs")
    need(isinstance(runs, list) and len(runs) > 0, "runs is a non-empty list")
    for r, run in enumerate(runs or []):
        driver = run.get("tool", {}).get("driver", {})
        need(isinstance(driver.get("name"), str) and driver["name"] != "", f"runs[{r}].tool.driver.name")
        rules = driver.get("rules", [])
        need(isinstance(rules, list) and all(isinstance(rule.get("id"), str) for rule in rules),
             f"runs[{r}].tool.driver.rules[].id")
        need("informationUri" not in driver or driver["informationUri"].startswith(("https://", "http://")),
             f"runs[{r}].tool.driver.informationUri is a URI")
        ids = [rule["id"] for rule in rules]
        bases = run.get("originalUriBaseIds", {})
        for i, result in enumerate(run.get("results", [])):
            at = f"runs[{r}].results[{i}]"
            need(result.get("ruleId") in ids, f"{at}.ruleId names a rule")
            need("ruleIndex" not in result or ids[result["ruleIndex"]] == result["ruleId"], f"{at}.ruleIndex")
            need(result.get("level", "warning") in LEVELS, f"{at}.level")
            need(isinstance(result.get("message", {}).get("text"), str), f"{at}.message.text")
            locations = result.get("locations")
            need(isinstance(locations, list) and len(locations) > 0, f"{at}.locations is non-empty")
            for j, location in enumerate(locations or []):
                physical = location.get("physicalLocation", {})
                artifact = physical.get("artifactLocation", {})
                need(isinstance(artifact.get("uri"), str) and artifact["uri"] != "", f"{at}.locations[{j}] uri")
                need(artifact.get("uriBaseId", "SRCROOT") in bases, f"{at}.locations[{j}] uriBaseId is declared")
                region = physical.get("region", {})
                start = region.get("startLine")
                need(isinstance(start, int) and start >= 1, f"{at}.locations[{j}].region.startLine >= 1")
                need(region.get("startColumn", 1) >= 1, f"{at}.locations[{j}].region.startColumn >= 1")
                need(region.get("endLine", start or 1) >= (start or 1), f"{at}.locations[{j}].region.endLine")
    return problems


@pytest.mark.parametrize("example", BROKEN, ids=[p.name for p in BROKEN])
def test_every_broken_example_reports_valid_sarif(example: Path) -> None:
    result = compile_policy(example, now=FIXED_NOW)
    assert result.diagnostics
    doc = json.loads(render_sarif(result.diagnostics, root_prefix=f"examples/broken/{example.name}/", version="1",
                                  srcroot_uri=ROOT.as_uri() + "/"))
    assert sarif_problems(doc) == []
    assert len(doc["runs"][0]["results"]) == len(result.diagnostics)


def test_a_diagnostic_without_a_file_points_at_the_policy_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = policy("compile", "empty", "--check", "--format", "sarif", cwd=tmp_path)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert sarif_problems(doc) == []
    run = doc["runs"][0]
    [result] = run["results"]
    assert result["ruleId"] == "GP006"
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "empty/", "uriBaseId": "SRCROOT"}
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == tmp_path.resolve().as_uri() + "/"
    assert "informationUri" not in run["tool"]["driver"]


def test_the_checker_catches_what_code_scanning_refuses() -> None:
    bad = {"version": "2.1.0", "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
           "runs": [{"tool": {"driver": {"name": "x", "rules": [{"id": "GP006"}]}},
                     "results": [{"ruleId": "GP006", "message": {"text": "no files"}}]}]}
    assert sarif_problems(bad) == ["runs[0].results[0].locations is non-empty"]


def test_paths_are_relative_to_the_git_root_when_run_from_a_subdirectory(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ACME, repo / "policies", ignore=shutil.ignore_patterns(".github", ".pre-commit-config.yaml"))
    teams = repo / "policies" / "teams.yaml"
    teams.write_text(teams.read_text().replace("description: Analytics and ML", "descriptoin: Analytics and ML"))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    sarif = policy("compile", ".", "--check", "--format", "sarif", cwd=repo / "policies")
    run = json.loads(sarif.stdout)["runs"][0]
    [result] = [r for r in run["results"] if r["ruleId"] == "GP102"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "policies/teams.yaml",
                                                                              "uriBaseId": "SRCROOT"}
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == repo.resolve().as_uri() + "/"
    github = policy("compile", ".", "--check", "--format", "github", cwd=repo / "policies")
    assert "file=policies/teams.yaml," in github.stdout
