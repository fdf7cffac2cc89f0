"""`policy serve` configured by environment, as a container sets it: each setting's variable, the
flag winning over it, and a clear usage error for a value it cannot use."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import httpx
import pytest

from cli.main import main
from cli.parser import build_parser
from cli.serve_settings import SETTINGS, SettingError, apply_environment
from tests.conftest import EXAMPLES
from tests.support.proxy_process import ProxyProcess, free_port
from tests.support.waiting import wait_until


def serve_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", "policies/", *argv])


def test_each_setting_comes_from_its_variable_when_no_flag_gives_it() -> None:
    args = serve_args()
    apply_environment(args, {
        "GATEPOST_HOST": "0.0.0.0", "GATEPOST_PORT": "8080", "GATEPOST_WORKERS": "3", "GATEPOST_DATA_DIR": "/var/lib/gp",
        "GATEPOST_LEDGER_URL": "redis://10.0.0.5:6379/0", "GATEPOST_GRACE_PERIOD": "45",
    })
    assert (args.host, args.port, args.workers, args.data, args.ledger, args.grace_period) == (
        "0.0.0.0", 8080, 3, Path("/var/lib/gp"), "redis://10.0.0.5:6379/0", 45,
    )


def test_a_flag_wins_and_its_variable_is_not_read() -> None:
    args = serve_args("--port", "9000", "--workers", "2")
    apply_environment(args, {"GATEPOST_PORT": "not-a-port", "GATEPOST_WORKERS": "4"})
    assert (args.port, args.workers) == (9000, 2)


def test_auto_is_the_cores_this_process_may_use_and_older_names_still_count() -> None:
    args = serve_args()
    apply_environment(args, {"GATEPOST_WORKERS": "auto", "GATEPOST_LEDGER": "redis://old:6379/0", "GATEPOST_DATA": "/old"})
    assert args.workers == len(os.sched_getaffinity(0))
    assert (args.ledger, args.data) == ("redis://old:6379/0", Path("/old"))


@pytest.mark.parametrize(("variable", "value", "problem"), [
    ("GATEPOST_PORT", "http", "GATEPOST_PORT: 'http' is not a port number"),
    ("GATEPOST_PORT", "70000", "GATEPOST_PORT: 70000 is not a port number (0-65535)"),
    ("GATEPOST_WORKERS", "0", "GATEPOST_WORKERS: 0 is not a number of workers"),
    ("GATEPOST_WORKERS", "many", "GATEPOST_WORKERS: 'many' is not a number of workers"),
    ("GATEPOST_GRACE_PERIOD", "30s", "GATEPOST_GRACE_PERIOD: '30s' is not a grace period (whole seconds from 0)"),
    ("GATEPOST_HOST", " ", "GATEPOST_HOST: it is empty"),
])
def test_a_variable_it_cannot_use_is_a_usage_error_naming_it(
    variable: str, value: str, problem: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SettingError, match="^" + problem.replace("(", r"\(").replace(")", r"\)")):
        apply_environment(serve_args(), {variable: value})
    monkeypatch.setenv(variable, value)
    assert main(["serve", str(EXAMPLES / "quickstart")]) == 2
    assert f"policy serve: error: {problem}" in capsys.readouterr().err


def test_a_flag_it_cannot_use_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", str(EXAMPLES / "quickstart"), "--workers", "none"])
    assert exit_.value.code == 2
    assert "argument --workers: 'none' is not a number of workers" in capsys.readouterr().err


def test_help_names_every_variable_and_its_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for setting in SETTINGS:
        assert f"{setting.variable} ({setting.flag})" in shown


@pytest.mark.e2e
def test_a_server_configured_by_its_environment_with_a_flag_over_one_variable(tmp_path: Path) -> None:
    """ProxyProcess passes `--port`: the server listens there, not on $GATEPOST_PORT."""
    log = tmp_path / "serve.log"
    env = {"GATEPOST_PORT": str(free_port()), "GATEPOST_WORKERS": "2", "GATEPOST_DATA_DIR": str(tmp_path / "data"),
           "GATEPOST_GRACE_PERIOD": "7", "GATEPOST_HOST": "127.0.0.1"}
    with ProxyProcess(EXAMPLES / "quickstart", log, env) as proxy:
        wait_until(lambda: '"event":"serving"' in log.read_text())
        assert httpx.get(proxy.base_url + "/healthz").status_code == 200
        proxy.stop()
        assert proxy.proc is not None and proxy.proc.returncode == 0
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    serving = next(e for e in lines if e.get("event") == "serving")
    assert serving["url"] == proxy.base_url and serving["workers"] == 2
    assert next(e for e in lines if e.get("event") == "draining")["grace_period_s"] == 7
    assert (tmp_path / "data" / "ledger.sqlite3").exists()
