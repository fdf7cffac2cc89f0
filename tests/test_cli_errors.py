"""How `policy` commands fail on a new user's mistakes: naming what is wrong, with the compiler's
diagnostics where a file is at fault, and never a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ACME, ROOT
from tests.support.cli import policy, policy_process


def test_diff_with_a_missing_dir_names_the_folder_not_the_revision() -> None:
    proc = policy("diff", "HEAD", "HEAD", "--dir", "no-such-policies/")
    assert proc.returncode == 2
    assert "--dir no-such-policies: no such directory" in proc.stderr
    assert "not a policy directory, an artifact file, or a git revision" not in proc.stderr


def test_diff_outside_git_says_so(tmp_path: Path) -> None:
    proc = policy_process("diff", "main", "HEAD", cwd=tmp_path)
    assert proc.returncode == 2 and "is not inside a git repository" in proc.stderr


def test_a_malformed_test_file_gets_the_compilers_diagnostics(tmp_path: Path) -> None:
    repo = tmp_path / "acme"
    shutil.copytree(ACME, repo)
    (repo / "bad_test.yaml").write_text(
        "tests:\n"
        "  - name: typo\n"
        "    vk: vk-alice-codex\n"
        "    modle: gpt-4o\n"
        "    expect: {decision: alow}\n"
    )
    proc = policy("test", str(repo))
    assert proc.returncode == 2
    located = [line for line in proc.stderr.splitlines() if line.startswith("bad_test.yaml:")]
    assert located == [
        "bad_test.yaml:2:5: error[GP103]: file tests.0 is missing required field 'model'",
        "bad_test.yaml:4:5: error[GP102]: file has unknown field 'tests.0.modle'",
        "bad_test.yaml:5:24: error[GP104]: file tests.0.expect.decision should be 'allow' or 'deny', found 'alow'",
    ]
    assert "= hint: did you mean 'model'?" in proc.stderr and "= hint: did you mean 'allow'?" in proc.stderr


def test_a_test_file_that_does_not_parse_is_rendered_like_a_policy_file(tmp_path: Path) -> None:
    repo = tmp_path / "acme"
    shutil.copytree(ACME, repo)
    (repo / "bad_test.yaml").write_text("tests: [\n")
    proc = policy("test", str(repo))
    assert proc.returncode == 2 and "bad_test.yaml:" in proc.stderr and "error[GP002]" in proc.stderr


def test_keys_new_into_a_closed_pipe_exits_quietly() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "cli", "keys", "new", "--id", "vk-bob-codex"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait() == 141
    assert b"Traceback" not in stderr and b"BrokenPipeError" not in stderr


def test_keys_new_refuses_an_id_the_compiler_would_refuse() -> None:
    proc = policy("keys", "new", "--id", "Bob Codex")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "--id 'Bob Codex' is not a virtual key id" in proc.stderr


def test_explain_suggests_the_nearest_key_id() -> None:
    proc = policy("explain", str(ACME), "--vk", "vk-bobb-codex", "--model", "gpt-4o")
    assert proc.returncode == 2
    assert "no virtual key 'vk-bobb-codex' in" in proc.stderr and "did you mean 'vk-bob-codex'?" in proc.stderr


def test_explain_names_the_nearest_name_the_key_may_request() -> None:
    proc = policy("explain", str(ACME), "--vk", "vk-alice-codex", "--model", "gpt-4oo")
    assert proc.returncode == 0
    assert proc.stdout.count("did you mean 'gpt-4o'?") == 1, "the proxy's own 403 names it, and only once"
    assert "decision: deny 403 model_not_allowed" in proc.stdout
    far = policy("explain", str(ACME), "--vk", "vk-alice-codex", "--model", "o3")
    assert far.stdout.splitlines()[-1].strip() == (
        "hint: this key may request claude-haiku-4-5-20251001, fast, gpt-4o, gpt-5, gpt-5-mini")
    allowed = policy("explain", str(ACME), "--vk", "vk-alice-codex", "--model", "gpt-4o")
    assert "hint:" not in allowed.stdout
