"""The ledger URL forms (README "Redis ledger URLs"): what each names, and refusals that say why
without echoing a password."""

from __future__ import annotations

import ssl

import pytest

from runtime.ledger.base import LedgerError
from runtime.ledger.redis import cluster_prefix
from runtime.ledger.redis_url import parse, safe


def test_a_single_server_keeps_its_url_database_and_tls_options() -> None:
    location = parse("rediss://:p%40ss@redis.internal:6380/2?ssl_ca_certs=/etc/ca.pem&ssl_check_hostname=false")
    assert (location.kind, location.nodes) == ("server", (("redis.internal", 6380),))
    assert location.options["password"] == "p@ss"
    assert (location.options["db"], location.options["ssl"], location.options["ssl_ca_certs"]) == (2, True, "/etc/ca.pem")
    assert location.options["ssl_check_hostname"] is False


def test_a_sentinel_url_lists_sentinels_then_the_service_and_database() -> None:
    location = parse("redis+sentinel://app:secret@s1,s2:26380,[::1]:26381/ledger/3?sentinel_password=sp")
    assert location.kind == "sentinel"
    assert location.nodes == (("s1", 26379), ("s2", 26380), ("::1", 26381))
    assert (location.service, location.options["db"]) == ("ledger", 3)
    assert (location.options["username"], location.options["password"]) == ("app", "secret")
    assert location.sentinel_options == {"password": "sp"}


def test_a_cluster_url_lists_seed_nodes_and_has_no_database() -> None:
    location = parse("rediss+cluster://:pw@n1:7000,n2?ssl_cert_reqs=none")
    assert (location.kind, location.nodes) == ("cluster", (("n1", 7000), ("n2", 6379)))
    context = location.ssl_context()
    assert context is not None and context.verify_mode == ssl.CERT_NONE and not context.check_hostname
    with pytest.raises(LedgerError, match="no database number"):
        parse("redis+cluster://n1:7000/1")


@pytest.mark.parametrize(("url", "problem"), [
    ("http://h:1/0", "unsupported ledger URL"),
    ("redis+sentinel://s1:26379", "ends in /service_name"),
    ("redis://:hunter2@h:1/0?ssl_ca_cert=/x", "unknown option ssl_ca_cert"),
    ("redis+cluster://:hunter2@", "no host"),
])
def test_a_url_that_names_no_ledger_is_refused_without_its_password(url: str, problem: str) -> None:
    with pytest.raises(LedgerError, match=problem) as refused:
        parse(url)
    assert "hunter2" not in str(refused.value)


def test_safe_hides_credentials_and_option_values() -> None:
    assert safe("redis+sentinel://u:pw@s1,s2/m/0?sentinel_password=x") == "redis+sentinel://s1,s2/m/0?sentinel_password=***"
    assert safe("redis://h:6379/0") == "redis://h:6379/0"


def test_the_cluster_prefix_is_one_hash_tag() -> None:
    assert cluster_prefix("gp:") == "{gp}:"
    assert cluster_prefix("{tenant-a}:gp:") == "{tenant-a}:gp:"
