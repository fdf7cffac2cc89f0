"""A throw-away redis-server on 127.0.0.1 (Debian's redis-server, installed by `make test`), plain
or TLS-only (`tls`: the server's certificate files, `tests/support/redis_topologies.py`)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from tests.support.proxy_process import free_port


class RedisServer:
    def __init__(self, data_dir: Path, *extra: str, port: int | None = None, tls: dict[str, str] | None = None) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise RuntimeError("redis-server is missing: `make test` installs it (Debian package redis-server)")
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._client_options: dict[str, Any] = {}
        listen = ["--port", str(self.port)]
        if tls is not None:
            self.url = f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={tls['ca']}"
            self._client_options = {"ssl": True, "ssl_ca_certs": tls["ca"]}
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", tls["cert"], "--tls-key-file",
                      tls["key"], "--tls-ca-cert-file", tls["ca"], "--tls-auth-clients", "no"]
        data_dir.mkdir(parents=True, exist_ok=True)
        self._argv = [binary, "--bind", "127.0.0.1", *listen, "--dir", str(data_dir),
                      "--appendonly", "yes", "--save", "", "--protected-mode", "yes", "--daemonize", "no", *extra]
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RedisServer:
        self.proc = subprocess.Popen(self._argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=self.port, **self._client_options)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except (redis.AuthenticationError, redis.ResponseError):
                return self  # up, and asking for a password
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
