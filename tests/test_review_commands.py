"""`policy explain` and `policy test`: the proxy's decision, shown the way a reviewer reads it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import ACME
from tests.support.cli import policy, policy_process


def test_explain_names_every_step_and_its_policy_line() -> None:
    proc = policy_process("explain", str(ACME), "--vk", "vk-platform-shared", "--model", "gpt-4o")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "alias gpt-4o resolves to model gpt-4o, first target azure-east" in out
    assert "virtual_keys/engineering/shared.yaml:" in out and "profiles.yaml:" in out
    assert "1. azure-east / gpt-4o, upstream model gpt4o-prod" in out
    assert "budget eng-daily: team engineering, $100.00 per day (Europe/Amsterdam; warn 80%, block 100%)" in out
    cited = {text.strip(): source for text, source in (line.rsplit("  ", 1) for line in out.splitlines()[1:])}
    assert cited["1. azure-east / gpt-4o, upstream model gpt4o-prod"] == "virtual_keys/engineering/shared.yaml:10"
    assert cited["2. openai-primary / gpt-4o"] == "profiles.yaml:10"
    assert cited["decision: allow (allowed by 'gpt-4o' in profiles.yaml:6)"] == "profiles.yaml:6"
    assert out.splitlines()[-1].lstrip().startswith("decision: allow")


def test_explain_a_denial_by_key_prefix_as_json() -> None:
    prefix = next(ln.split()[1] for ln in (ACME / "virtual_keys/engineering/alice.yaml").read_text().splitlines()
                  if "key_prefix" in ln)
    proc = policy("explain", str(ACME), "--key-prefix", prefix[:10], "--model", "o3", "--format", "json")
    data = json.loads(proc.stdout)
    assert (data["vk"], data["decision"], data["status"], data["code"]) == ("vk-alice-codex", "deny", 403, "model_not_allowed")


def test_policy_test_passes_on_the_example_repo() -> None:
    proc = policy_process("test", str(ACME))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith(" passed, 0 failed")


def test_a_wrong_expectation_fails_with_expected_and_got(tmp_path: Path) -> None:
    repo = tmp_path / "acme"
    shutil.copytree(ACME, repo)
    (repo / "wrong_test.yaml").write_text(
        "tests:\n"
        "  - name: o3 should be allowed (it is not)\n"
        "    vk: vk-alice-codex\n"
        "    model: o3\n"
        "    expect: {decision: allow, first_target: openai-primary/o3}\n"
    )
    proc = policy("test", str(repo))
    assert proc.returncode == 1
    assert "FAIL  o3 should be allowed (it is not)  (wrong_test.yaml:2:5)" in proc.stdout
    assert "decision: expected 'allow', got 'deny'  (profiles.yaml:6)" in proc.stdout
    assert "message: model 'o3' is not allowed for virtual key vk-alice-codex" in proc.stdout


def test_a_malformed_test_file_is_a_located_usage_error(tmp_path: Path) -> None:
    repo = tmp_path / "acme"
    shutil.copytree(ACME, repo)
    (repo / "bad_test.yaml").write_text("tests:\n  - name: no model\n    vk: vk-alice-codex\n    expect: {decision: allow}\n")
    proc = policy("test", str(repo))
    assert proc.returncode == 2 and "bad_test.yaml:2:" in proc.stderr and "model" in proc.stderr
    assert proc.stdout.rstrip().endswith(" passed, 0 failed, 1 malformed test file(s) skipped")
    assert "skipped bad_test.yaml: malformed (errors above), so its cases did not run" in proc.stderr


def test_fmt_help_describes_its_directory() -> None:
    proc = policy("fmt", "--help")
    assert "DIR" in proc.stdout and "(default: .)" in proc.stdout


def test_explain_lists_the_keys_an_ambiguous_prefix_matches() -> None:
    proc = policy("explain", str(ACME), "--key-prefix", "gp-", "--model", "o3")
    assert proc.returncode == 2
    assert "prefix 'gp-' is ambiguous: 9 keys match: vk-alice-claude (gp-LlUh2f_xv), vk-alice-codex" in proc.stderr
    assert "give more characters or --vk" in proc.stderr
    missing = policy("explain", str(ACME), "--key-prefix", "gp-nothing", "--model", "o3")
    assert missing.returncode == 2 and "no key with prefix 'gp-nothing'" in missing.stderr


def test_policy_test_without_any_case_fails_and_says_why(tmp_path: Path) -> None:
    repo = tmp_path / "acme"
    shutil.copytree(ACME, repo)
    (repo / "policy_test.yaml").unlink()
    proc = policy("test", str(repo))
    assert proc.returncode == 1
    assert "no test cases in" in proc.stderr and "(no *_test.yaml files)" in proc.stderr
    assert "passed" not in proc.stdout
    (repo / "empty_test.yaml").write_text("tests: []\n")
    proc = policy("test", str(repo))
    assert proc.returncode == 1 and "(1 *_test.yaml file(s) with no cases)" in proc.stderr


def test_the_dsl_example_ships_passing_tests() -> None:
    proc = policy("test", str(ACME.parent / "acme-dsl"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("9 passed, 0 failed")


def test_help_documents_test_files_diff_sides_and_exit_codes() -> None:
    test_help = policy("test", "--help").stdout
    assert "*_test.yaml" in test_help and "expect fields" in test_help
    for name in ("decision", "status, code", "first_target", "targets", "budgets", "cache"):
        assert f"\n  {name} " in test_help, name
    diff_help = policy("diff", "--help").stdout
    assert "a policy directory, an artifact (JSON), or a git revision" in " ".join(diff_help.split())
    assert "*.gp" in policy("compile", "--help").stdout
    assert "3 `policy diff` found changes" in " ".join(policy("--help").stdout.split())
