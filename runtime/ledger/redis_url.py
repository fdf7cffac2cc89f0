"""Where the Redis ledger lives, from its URL: one server, a Sentinel-watched master, or a Cluster.

    redis://[[user]:password@]host[:port][/db][?options]          one server
    rediss://...                                                    the same over TLS
    unix://[[user]:password@]/path/to/socket[?db=N]                 one server on a Unix socket
    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service_name[/db][?options]
    rediss+sentinel://...                                           TLS to the sentinels and the master
    redis+cluster://[[user]:password@]host[:port][,host[:port]...][?options]
    rediss+cluster://...                                            TLS to every node

The Sentinel form is the one of `redis-sentinel-url`, Prefect and RedisVL: sentinels default to
port 26379, the password is the master's, and `sentinel_username`/`sentinel_password` options
authenticate to the sentinels. A Cluster URL lists seed nodes (port 6379 by default); the client
learns the others from them, and there is no database number (a cluster has only 0).

Options are redis-py's own URL options (`Redis.from_url`), e.g. for TLS `ssl_ca_certs=/etc/ca.pem`,
`ssl_cert_reqs=required|optional|none`, `ssl_check_hostname=false`, `ssl_certfile`/`ssl_keyfile`
for a client certificate; and `socket_timeout`, `socket_connect_timeout`. On a TLS scheme they
apply to sentinels and cluster nodes alike, so one private CA covers the whole topology.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any, Literal, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
import redis.asyncio
import redis.cluster
import redis.sentinel
from redis.connection import parse_url

from .base import LedgerError

SENTINEL_PORT = 26379
REDIS_PORT = 6379
TIMEOUT_S = 5.0
TIMEOUTS = {"socket_timeout": TIMEOUT_S, "socket_connect_timeout": TIMEOUT_S}
OPTIONS = frozenset({
    "ssl_ca_certs", "ssl_ca_path", "ssl_ca_data", "ssl_cert_reqs", "ssl_certfile", "ssl_keyfile", "ssl_password",
    "ssl_check_hostname", "ssl_ciphers", "socket_timeout", "socket_connect_timeout",
    "socket_keepalive", "health_check_interval", "client_name", "db",
})
SENTINEL_OPTIONS = frozenset({"sentinel_username", "sentinel_password"})
SSL_OPTION_PREFIX = "ssl"
CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}

MASTER_BY_NAME = ("SENTINEL GET-MASTER-ADDR-BY-NAME",)
"""How the master is found, as the Sentinel client guidelines say. A sentinel names the promoted
replica here as soon as it has become the master; `SENTINEL MASTERS`, which redis-py's
`discover_master` reads, names the old one until the failover has ended, and a client that follows
it after the old master is demoted (REPLICAOF) meets READONLY on every try."""

Kind = Literal["server", "sentinel", "cluster"]


@dataclass(frozen=True)
class RedisLocation:
    """A parsed ledger URL: what kind of deployment, its seed addresses, and the connection keyword
    arguments redis-py takes (password, TLS, timeouts, database)."""

    kind: Kind
    nodes: tuple[tuple[str, int], ...]
    options: dict[str, Any] = field(default_factory=dict)
    service: str = ""
    sentinel_options: dict[str, Any] = field(default_factory=dict)
    url: str = ""
    """A single server's URL as given: redis-py's `from_url` opens it (TCP, TLS or a Unix socket)."""

    async def address(self) -> tuple[str, int] | str:
        """Where to connect now: the server (a Unix socket's path), the master the sentinels name,
        or a cluster's first seed."""
        if self.kind == "sentinel":
            sentinels = [redis.asyncio.Redis(host=host, port=port, **self._sentinel_kwargs())
                         for host, port in self.nodes]
            asked: list[str] = []
            try:
                for sentinel in sentinels:
                    try:
                        named = await sentinel.execute_command(*MASTER_BY_NAME, self.service)  # type: ignore[no-untyped-call]
                    except (redis.ConnectionError, redis.TimeoutError) as exc:
                        asked.append(repr(exc))
                        continue
                    if named:
                        return _host(named[0]), int(named[1])
            finally:
                for sentinel in sentinels:
                    await sentinel.aclose()
            raise redis.sentinel.MasterNotFoundError(_no_master(self.service, asked))
        if "path" in self.options:
            return str(self.options["path"])
        return self.nodes[0]

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context the URL's `ssl_*` options describe, as redis-py builds it; None without TLS."""
        o = self.options
        if not o.get("ssl"):
            return None
        context = ssl.create_default_context(cafile=o.get("ssl_ca_certs"), capath=o.get("ssl_ca_path"),
                                             cadata=o.get("ssl_ca_data"))
        verify = CERT_REQS.get(str(o.get("ssl_cert_reqs", "required")).lower())
        if verify is None:
            raise LedgerError(f"ssl_cert_reqs is none, optional or required, not {o.get('ssl_cert_reqs')!r}")
        context.check_hostname = bool(o.get("ssl_check_hostname", True)) and verify == ssl.CERT_REQUIRED
        context.verify_mode = verify
        if o.get("ssl_certfile"):
            context.load_cert_chain(o["ssl_certfile"], o.get("ssl_keyfile"), o.get("ssl_password"))
        if o.get("ssl_ciphers"):
            context.set_ciphers(o["ssl_ciphers"])
        return context

    def client(self) -> redis.Redis:
        """A blocking client (tending: heartbeat, recovery, `policy budgets`), one connection."""
        options = {**TIMEOUTS, **self.options, "decode_responses": True}
        if self.kind == "cluster":
            nodes = [redis.cluster.ClusterNode(host, port) for host, port in self.nodes]  # type: ignore[no-untyped-call]
            return cast(redis.Redis, redis.cluster.RedisCluster(startup_nodes=nodes, **options))
        if self.kind == "sentinel":
            sentinel = _SentinelByName(  # type: ignore[no-untyped-call]
                list(self.nodes), sentinel_kwargs=self._sentinel_kwargs(), **options)
            return cast(redis.Redis, sentinel.master_for(self.service))  # type: ignore[no-untyped-call]
        return redis.Redis.from_url(self.url, single_connection_client=True, socket_timeout=TIMEOUT_S,
                                    socket_connect_timeout=TIMEOUT_S, decode_responses=True)

    def _sentinel_kwargs(self) -> dict[str, Any]:
        """The sentinels' own connections: their credentials, and the TLS and timeout options of the URL."""
        shared = {k: v for k, v in self.options.items() if k.startswith((SSL_OPTION_PREFIX, "socket"))}
        return {**TIMEOUTS, **shared, **self.sentinel_options}


class _SentinelByName(redis.sentinel.Sentinel):
    """redis-py's Sentinel, finding the master as `address()` does (see `MASTER_BY_NAME`)."""

    def discover_master(self, service_name: str) -> tuple[str, int]:
        asked: list[str] = []
        for sentinel in self.sentinels:
            try:
                named = sentinel.execute_command(*MASTER_BY_NAME, service_name)  # type: ignore[no-untyped-call]
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                asked.append(repr(exc))
                continue
            if named:
                return _host(named[0]), int(named[1])
        raise redis.sentinel.MasterNotFoundError(_no_master(service_name, asked))


def _host(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _no_master(service: str, asked: list[str]) -> str:
    return f"no sentinel names a master for {service!r}" + (f": {', '.join(asked)}" if asked else "")


def parse(url: str) -> RedisLocation:
    """The location a ledger URL names; a URL that names none is a `LedgerError` (without its password)."""
    scheme, sep, rest = url.partition("://")
    base, _, topology = scheme.lower().partition("+")
    if not sep or base not in ("redis", "rediss", "unix") or topology not in ("", "sentinel", "cluster") \
            or (base == "unix" and topology):
        raise LedgerError(
            f"unsupported ledger URL {safe(url)}: use redis://, rediss://, unix://, redis+sentinel://, "
            "rediss+sentinel://, redis+cluster:// or rediss+cluster://")
    try:
        if not topology:
            return _server(url)
        return _topology(base, topology, rest, url)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise LedgerError(f"the ledger URL {safe(url)} does not parse: {exc}") from exc


def _server(url: str) -> RedisLocation:
    options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
    _check_options(options, url)
    host, port = options.pop("host", None), int(options.pop("port", None) or REDIS_PORT)
    options.pop("connection_class", None)
    if url.lower().startswith("rediss://"):
        options["ssl"] = True
    return RedisLocation("server", ((host, port),) if host else (), options, url=url)


def _topology(base: str, topology: Kind, rest: str, url: str) -> RedisLocation:
    parts = urlsplit(f"{base}://{rest}")
    netloc = parts.netloc
    credentials, _, hosts = netloc.rpartition("@")
    default_port = SENTINEL_PORT if topology == "sentinel" else REDIS_PORT
    nodes = tuple(_node(text, default_port) for text in hosts.split(",") if text)
    if not nodes:
        raise ValueError("no host is given")
    options: dict[str, Any] = {}
    sentinel_options: dict[str, Any] = {}
    if credentials:
        user, has_password, password = credentials.partition(":")
        if user:
            options["username"] = unquote(user)
        if has_password and password:
            options["password"] = unquote(password)
    query = dict(parse_qsl(parts.query))
    for name in SENTINEL_OPTIONS & query.keys():
        sentinel_options[name.removeprefix("sentinel_")] = query.pop(name)
    if query:
        first_host, first_port = nodes[0]
        standard: dict[str, Any] = parse_url(f"{base}://{first_host}:{first_port}/?{'&'.join(f'{k}={v}' for k, v in query.items())}")  # type: ignore[no-untyped-call]
        _check_options(standard, url)
        options.update({k: v for k, v in standard.items() if k not in ("host", "port", "connection_class")})
    if base == "rediss":
        options["ssl"] = True
    path = [unquote(p) for p in parts.path.split("/") if p]
    if topology == "cluster":
        if path or options.get("db"):
            raise ValueError("a cluster has no database number and no service name")
        options.pop("db", None)
        return RedisLocation("cluster", nodes, options)
    if not path or len(path) > 2:
        raise ValueError("a Sentinel URL ends in /service_name or /service_name/db")
    if len(path) == 2:
        options["db"] = int(path[1])
    return RedisLocation("sentinel", nodes, options, path[0], sentinel_options)


def _node(text: str, default_port: int) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]` or `[v6]:port`."""
    if text.startswith("["):
        host, _, after = text[1:].partition("]")
        port = after.removeprefix(":")
    else:
        host, _, port = text.partition(":")
    return unquote(host), int(port) if port else default_port


def _check_options(options: dict[str, Any], url: str) -> None:
    """Only the options this module documents: a misspelt one is refused, never silently ignored."""
    known = OPTIONS | {"host", "port", "path", "username", "password", "connection_class"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown option {', '.join(unknown)} (known: {', '.join(sorted(OPTIONS))})")


def safe(url: str) -> str:
    """The URL without its password, user or option values (a `sentinel_password` is an option)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "<unparsable URL>"
    where, question, query = rest.partition("?")
    authority, slash, path = where.partition("/")
    where = authority.rpartition("@")[2] + slash + path
    if question:
        names = [pair.partition("=")[0] for pair in query.split("&") if pair]
        where += "?" + "&".join(f"{n}=***" for n in names)
    return f"{scheme}://{where}"
