"""The exporter's session settles the environment's proxy and CA-bundle settings for the collector
once, the same settings requests reads on every request; a credential provider's session named in
the SDK's settings is left to the SDK."""

from __future__ import annotations

import pytest
import requests

from runtime.telemetry.setup import SettledSession, WireExporter

URL = "http://collector.internal:4318/v1/traces"


@pytest.mark.parametrize("environment", [
    {},
    {"HTTP_PROXY": "http://proxy.internal:3128"},
    {"HTTP_PROXY": "http://proxy.internal:3128", "NO_PROXY": "collector.internal"},
    {"REQUESTS_CA_BUNDLE": "/etc/ssl/corporate.pem"},
])
def test_the_settled_settings_are_those_requests_reads(monkeypatch: pytest.MonkeyPatch,
                                                        environment: dict[str, str]) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settled = SettledSession()
    expected = requests.Session().merge_environment_settings(URL, {}, None, None, None)
    assert settled.merge_environment_settings(URL, {}, None, None, None) == expected
    assert settled.merge_environment_settings(URL, {}, None, None, None) == expected


def test_a_credential_providers_session_is_left_to_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(WireExporter(URL, environ={})._client._transport._session, SettledSession)  # type: ignore[attr-defined]
    monkeypatch.setenv("OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER", "custom")
    with pytest.raises(RuntimeError, match="custom"):
        WireExporter(URL)
