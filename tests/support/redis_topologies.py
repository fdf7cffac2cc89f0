"""Redis as production runs it, on 127.0.0.1: a TLS-only server with a CA made for the test, a
three-node Cluster, and a Sentinel watching a master. Each gives the ledger URL that reaches it."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
from contextlib import ExitStack
from pathlib import Path

import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.proxy_process import free_port
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

CLUSTER_SLOTS = 16384
IMMEDIATE_SYNC = ("--repl-diskless-sync-delay", "0")
"""A master starts a replica's full sync at once, not after Redis's default 5 s wait for more
replicas to share it."""


def tls_files(directory: Path, name: str = "test") -> dict[str, str]:
    """A CA and a server certificate it signed for 127.0.0.1 and localhost, as PEM files: `ca`,
    `cert`, `key`."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"gatepost {name} CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = {"ca": directory / f"{name}-ca.pem", "cert": directory / f"{name}-cert.pem",
             "key": directory / f"{name}-key.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return {k: str(v) for k, v in files.items()}


class RedisCluster:
    """Three masters, no replicas, the 16,384 slots split in three; `url` lists two of them as
    seeds (the client learns the third)."""

    def __init__(self, data_dir: Path) -> None:
        self._dir = data_dir
        self._stack = ExitStack()
        self.nodes: list[RedisServer] = []
        self.url = ""

    def __enter__(self) -> RedisCluster:
        bus_ports = [free_port() for _ in range(3)]
        for i, bus_port in enumerate(bus_ports):
            self.nodes.append(self._stack.enter_context(RedisServer(
                self._dir / f"node{i}", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-port", str(bus_port))))
        clients = [redis.Redis(host="127.0.0.1", port=node.port, decode_responses=True) for node in self.nodes]
        share = CLUSTER_SLOTS // 3
        for i, client in enumerate(clients):
            last = CLUSTER_SLOTS - 1 if i == 2 else (i + 1) * share - 1
            client.execute_command("CLUSTER ADDSLOTSRANGE", i * share, last)  # type: ignore[no-untyped-call]
        for node, bus_port in zip(self.nodes[1:], bus_ports[1:], strict=True):
            clients[0].execute_command("CLUSTER MEET", "127.0.0.1", node.port, bus_port)  # type: ignore[no-untyped-call]
        wait_until(lambda: all(_cluster_ok(client) for client in clients), timeout_s=30)
        self.url = f"redis+cluster://127.0.0.1:{self.nodes[0].port},127.0.0.1:{self.nodes[1].port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def _cluster_ok(client: redis.Redis) -> bool:
    info = client.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
    return info.get("cluster_state") == "ok" and str(info.get("cluster_known_nodes")) == "3"


class RedisSentinel:
    """A master (and with `replica`, one replica of it, in sync before the sentinel starts, so the
    sentinel's first INFO of the master lists it) and one Sentinel watching it as `mymaster`
    (quorum 1); `url` reaches the master through the sentinel."""

    SERVICE = "mymaster"

    def __init__(self, data_dir: Path, replica: bool = False) -> None:
        self._dir = data_dir
        self._stack = ExitStack()
        self._with_replica = replica
        self.port = free_port()
        self.url = ""
        self.master: RedisServer | None = None
        self.replica: RedisServer | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RedisSentinel:
        self.master = self._stack.enter_context(RedisServer(self._dir / "master", *IMMEDIATE_SYNC))
        if self._with_replica:
            self.replica = self._stack.enter_context(RedisServer(
                self._dir / "replica", *IMMEDIATE_SYNC, "--replicaof", "127.0.0.1", str(self.master.port)))
            replica = redis.Redis(host="127.0.0.1", port=self.replica.port, decode_responses=True)
            wait_until(lambda: replica.info("replication").get("master_link_status") == "up")
        sentinel_dir = self._dir / "sentinel"
        sentinel_dir.mkdir(parents=True, exist_ok=True)
        config = sentinel_dir / "sentinel.conf"
        config.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {sentinel_dir}\n"
                          f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.master.port} 1\n")
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen([binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        sentinel = redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)

        def knows_master() -> bool:
            try:
                return bool(sentinel.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", self.SERVICE))  # type: ignore[no-untyped-call]
            except redis.ConnectionError:
                return False

        wait_until(knows_master, timeout_s=15)
        if self.replica is not None:
            wait_until(lambda: self.knows_replica(sentinel), timeout_s=30)
        self.url = f"redis+sentinel://127.0.0.1:{self.port}/{self.SERVICE}/0"
        return self

    def knows_replica(self, sentinel: redis.Redis) -> bool:
        """The sentinel has seen the replica, in sync with its master: a failover can promote it."""
        replicas = sentinel.execute_command("SENTINEL REPLICAS", self.SERVICE)  # type: ignore[no-untyped-call]
        return any("s_down" not in str(r.get("flags", "")) and r.get("master-link-status") == "ok" for r in replicas)

    def fail_over(self) -> int:
        """Promote the replica through the sentinel; the port of the master it names afterwards."""
        assert self.replica is not None
        sentinel = redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)
        sentinel.execute_command("SENTINEL FAILOVER", self.SERVICE)  # type: ignore[no-untyped-call]

        def promoted() -> bool:
            address = sentinel.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", self.SERVICE)  # type: ignore[no-untyped-call]
            return bool(address) and int(address[1]) == self.replica.port  # type: ignore[union-attr]

        wait_until(promoted, timeout_s=30)
        return self.replica.port

    def demote_old_master(self) -> None:
        """What the sentinel does to the old master once it sees it still acting as one (up to
        ~20 s after the failover, on its INFO period): make it a replica of the new master and
        close its clients' connections, in one transaction."""
        assert self.master is not None and self.replica is not None
        old = redis.Redis(host="127.0.0.1", port=self.master.port, decode_responses=True)
        demote = old.pipeline(transaction=True)
        demote.execute_command("REPLICAOF", "127.0.0.1", self.replica.port)  # type: ignore[no-untyped-call]
        demote.execute_command("CLIENT KILL", "TYPE", "normal")  # type: ignore[no-untyped-call]
        demote.execute()
        old.close()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self._stack.close()
