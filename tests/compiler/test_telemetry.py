"""gateway.telemetry from policy to routing table: lowered with its sampling in basis points, left
out of the table when absent (so an existing policy keeps its revision), and an endpoint the
exporter could not post to is GP330 at the value."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from artifact import encode
from compiler import compile_policy
from policy.fmt import format_text
from tests.conftest import ACME, FIXED_NOW


def compiled(tmp_path: Path, telemetry: str | None) -> tuple[dict[str, object], list[str]]:
    repo = tmp_path / "repo"
    shutil.copytree(ACME, repo)
    if telemetry is not None:
        gateway = repo / "gateway.yaml"
        text = gateway.read_text().replace("max_body_bytes: 16777216", f"max_body_bytes: 16777216\n  telemetry: {telemetry}", 1)
        gateway.write_text(text)
    result = compile_policy(repo, now=FIXED_NOW)
    found = [f"{d.code} {d.span.file}:{d.span.line}" if d.span else d.code for d in result.errors]
    return (json.loads(encode(result.artifact)) if result.artifact is not None else {}), found


def test_telemetry_is_lowered_with_its_sampling_in_basis_points(tmp_path: Path) -> None:
    written, errors = compiled(tmp_path, "{endpoint: env:OTLP_ENDPOINT, sampling_ratio: 0.125, record_content: true}")
    assert errors == []
    assert written["table"]["gateway"]["telemetry"] == {  # type: ignore[index]
        "endpoint": "env:OTLP_ENDPOINT", "service_name": "gatepost", "sampling_bp": 1250, "record_content": True,
    }


def test_without_telemetry_the_table_has_no_trace_of_it_and_keeps_its_revision(tmp_path: Path) -> None:
    without, _ = compiled(tmp_path / "a", None)
    assert "telemetry" not in without["table"]["gateway"]  # type: ignore[index]
    with_it, _ = compiled(tmp_path / "b", "{endpoint: 'http://otel-collector:4318'}")
    assert with_it["revision"] != without["revision"]
    assert compile_policy(ACME, now=FIXED_NOW).artifact.revision == without["revision"]  # type: ignore[union-attr]


@pytest.mark.parametrize("endpoint", ["'http://otel-collector:4318'", "'https://otlp.example.com/v1/traces'",
                                      "env:OTLP_ENDPOINT", "file:/run/secrets/otlp"])
def test_an_endpoint_is_a_url_or_a_reference(tmp_path: Path, endpoint: str) -> None:
    assert compiled(tmp_path, f"{{endpoint: {endpoint}}}")[1] == []


@pytest.mark.parametrize("endpoint", ["otel-collector:4318", "'ftp://collector'", "'http://'", "'env:'"])
def test_an_endpoint_the_exporter_cannot_post_to_is_gp330_at_the_value(tmp_path: Path, endpoint: str) -> None:
    assert compiled(tmp_path, f"{{endpoint: {endpoint}}}")[1] == ["GP330 gateway.yaml:7"]


def test_a_sampling_ratio_above_1_is_an_invalid_value(tmp_path: Path) -> None:
    assert compiled(tmp_path, "{endpoint: 'http://c:4318', sampling_ratio: 1.5}")[1] == ["GP104 gateway.yaml:7"]


def test_fmt_writes_telemetry_in_the_languages_order() -> None:
    text = ("gateway:\n  telemetry:\n    record_content: false\n    sampling_ratio: 0.5\n    service_name: edge\n"
            "    endpoint: http://localhost:4318\n  header_prefix: X-LangWatch-\n")
    assert format_text(text) == (
        "gateway:\n  header_prefix: X-LangWatch-\n  telemetry:\n    endpoint: http://localhost:4318\n"
        "    service_name: edge\n    sampling_ratio: 0.5\n    record_content: false\n"
    )
