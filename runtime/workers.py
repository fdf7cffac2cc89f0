"""`policy serve --workers N`: a parent that binds the port once, compiles once, and keeps N worker
processes (`worker.py`) serving on the sockets they inherit.

Inherited listening sockets rather than SO_REUSEPORT: the port is bound once, by the parent, so a
busy port is one error before anything starts and no other process can slip in beside the workers
on the same port (SO_REUSEPORT lets any process of the same user do that), and the kernel hands
each connection to whichever worker accepts first, so a busy worker takes fewer.

A reload (SIGHUP, or a change to a source file, which the parent alone watches) compiles in the
parent; a policy that does not compile is refused once, here, and no worker sees it. A good one is
written to the run directory as a verified artifact and every worker is told to load it; the
parent reports `workers_reloaded` once all serve its revision. Until the first worker serves, the
parent answers the port itself: 503, the table is not loaded yet (`starting.py`). A worker that exits is replaced
with the current artifact; the SIGTERM of the parent drains every worker and waits for them.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .access_log import EventLog
from .listen import address, bound_port, listen
from .reload import SourceFiles, fingerprint
from .server import ServeOptions, admin_token, admin_url, open_ledger
from .starting import answer_starting
from .table import TableError, load_table
from .worker import WorkerConfig

Publish = Callable[[Path, Path], str]
"""Compiles a policy directory (or verifies an artifact) and writes the verified artifact to the
second path, returning its revision; raises TableError (or OSError) when it must not be served.
The CLI passes one, so the runtime never sees the compiler."""

WATCH_S = 1.0
RESPAWN_AFTER_S = 1.0
"""A worker that lived less than this is replaced only after it: a worker that cannot start does
not spin."""
KILL_AFTER_GRACE_S = 5.0
"""How long past the grace period a draining worker may take before it is killed."""


class WorkersFailed(Exception):
    """No worker could start: each exited before serving (its own error is on stderr)."""


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class Worker:
    index: int
    process: subprocess.Popen[bytes]
    control: socket.socket
    started: float
    revision: str | None = None
    """The revision it serves, once it said so."""
    pending: bytes = b""


@dataclass
class Supervisor:
    source: Path
    publish: Publish
    files: SourceFiles
    options: ServeOptions
    events: EventLog
    sockets: list[socket.socket]
    run_dir: Path
    admin_sockets: list[socket.socket] = field(default_factory=list)
    """The admin API's listener (`--admin-port`), served by worker 0 and its replacements."""
    revision: str = ""
    artifact: Path = Path()
    generation: int = 0
    workers: dict[int, Worker] = field(default_factory=dict)
    respawn: dict[int, float] = field(default_factory=dict)
    stopping: str | None = None
    announced: bool = False
    holding: bool = False
    reload_reason: str | None = None
    awaiting: set[int] = field(default_factory=set)
    """The workers told to load the current artifact that have not answered yet."""
    selector: selectors.DefaultSelector = field(default_factory=selectors.DefaultSelector)

    def publish_current(self, reason: str | None) -> bool:
        """Compile (or verify) the source into the next artifact; on success it becomes current."""
        target = self.run_dir / f"table-{self.generation + 1}.json"
        try:
            revision = self.publish(self.source, target)
        except (TableError, OSError) as exc:
            if reason is None:
                raise
            target.unlink(missing_ok=True)
            self.events.event("reload_refused", reason=reason, serving=self.revision, diagnostics=str(exc))
            for worker in self.workers.values():
                self._tell(worker, "refused")
            return False
        self.generation += 1
        self.revision, self.artifact = revision, target
        return True

    def reload(self, reason: str) -> None:
        if not self.publish_current(reason):
            return
        self.reload_reason = reason
        self.awaiting = set(self.workers)
        for worker in self.workers.values():
            self._tell(worker, f"load {reason} {self.artifact}")

    def start(self, index: int) -> None:
        parent_end, child_end = socket.socketpair()
        config = WorkerConfig(
            index=index, artifact=str(self.artifact), listen_fds=[s.fileno() for s in self.sockets],
            control_fd=child_end.fileno(), run_dir=str(self.run_dir), serve=asdict(self.options),
            admin_fds=[s.fileno() for s in self.admin_sockets] if index == 0 else [],
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "runtime.worker", config.encode()], stdin=subprocess.DEVNULL,
            pass_fds=[*config.listen_fds, *config.admin_fds, child_end.fileno()],
        )
        child_end.close()
        parent_end.setblocking(False)
        worker = Worker(index, process, parent_end, time.monotonic())
        self.workers[index] = worker
        self.selector.register(parent_end, selectors.EVENT_READ, worker)

    def _tell(self, worker: Worker, line: str) -> None:
        try:
            worker.control.sendall(f"{line}\n".encode())
        except OSError:
            pass

    def heard(self, worker: Worker) -> None:
        try:
            data = worker.control.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._forget(worker)
            return
        worker.pending += data
        *lines, worker.pending = worker.pending.split(b"\n")
        for raw in lines:
            word, _, rest = raw.decode().partition(" ")
            if word == "ready":
                self.release_port()
            if word == "ready" and self.announced:
                self.events.event("worker_serving", worker=worker.index, pid=worker.process.pid, revision=rest)
            if word in ("ready", "loaded"):
                worker.revision = rest
            elif word == "failed":
                self.events.event("worker_reload_failed", worker=worker.index, problem=rest)
            if word in ("loaded", "failed"):
                self.awaiting.discard(worker.index)
        self._all_serving()

    def hold_port(self) -> None:
        """Answer the port until a worker serves (`starting.py`)."""
        self.holding = True
        for sock in self.sockets:
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, sock)

    def release_port(self) -> None:
        if self.holding:
            self.holding = False
            for sock in self.sockets:
                self.selector.unregister(sock)

    def _forget(self, worker: Worker) -> None:
        if worker.control.fileno() != -1:
            if worker.control.fileno() in self.selector.get_map():
                self.selector.unregister(worker.control)
            worker.control.close()

    def _all_serving(self) -> None:
        if self.awaiting:
            return
        revisions = {w.revision for w in self.workers.values()}
        if len(self.workers) < self.options.workers or revisions != {self.revision}:
            return
        if not self.announced:
            self.announced = True
            self.events.event(
                "serving", url=f"http://{address(self.options.host, bound_port(self.sockets, self.options.port))}",
                revision=self.revision, workers=len(self.workers),
                worker_pids=[self.workers[index].process.pid for index in sorted(self.workers)],
                **admin_url(self.options, self.admin_sockets),
            )
        elif self.reload_reason is not None:
            self.events.event("workers_reloaded", reason=self.reload_reason, revision=self.revision,
                              workers=len(self.workers))
        self.reload_reason = None
        for old in self.run_dir.glob("table-*.json"):
            if old != self.artifact:
                old.unlink(missing_ok=True)

    def reap(self) -> None:
        now = time.monotonic()
        for index, worker in list(self.workers.items()):
            status = worker.process.poll()
            if status is None:
                continue
            del self.workers[index]
            self.awaiting.discard(index)
            self._forget(worker)
            if self.stopping is not None:
                continue
            if not self.announced and worker.revision is None and not self.workers_ever_ready():
                raise WorkersFailed(f"worker {index} exited ({_status(status)}) before serving")
            self.events.event("worker_exited", worker=index, pid=worker.process.pid, status=_status(status),
                              replaced=True)
            lived = now - worker.started
            self.respawn[index] = now + (RESPAWN_AFTER_S if lived < RESPAWN_AFTER_S else 0.0)
        for index, when in list(self.respawn.items()):
            if when <= now:
                del self.respawn[index]
                self.start(index)

    def workers_ever_ready(self) -> bool:
        return any(w.revision is not None for w in self.workers.values())

    def stop(self, why: str) -> None:
        if self.stopping is not None:
            return
        self.stopping = why
        self.respawn.clear()
        self.release_port()
        for sock in [*self.sockets, *self.admin_sockets]:
            sock.close()
        self.events.event("draining", grace_period_s=self.options.grace_period_s, workers=len(self.workers))
        for worker in self.workers.values():
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)

    def wait_out(self) -> None:
        """Wait for every draining worker, killing those still there past the grace period."""
        deadline = time.monotonic() + self.options.grace_period_s + KILL_AFTER_GRACE_S
        for worker in self.workers.values():
            try:
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
            worker.control.close()


def _status(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit {code}"


def serve_workers(source: Path, publish: Publish, files: SourceFiles, options: ServeOptions) -> None:
    """Compile, bind, check a Redis ledger answers, then start the workers and keep them until SIGTERM
    (or SIGINT, which is raised again once they have drained). The order is that of a single
    server: a policy that does not compile is reported before the port is bound, a busy port
    before the ledger is touched."""
    events = EventLog()
    run_dir = Path(tempfile.mkdtemp(prefix="gatepost-serve-"))
    try:
        supervisor = Supervisor(source, publish, files, options, events, [], run_dir)
        supervisor.publish_current(None)
        if options.admin_port is not None:
            admin_token(load_table(supervisor.artifact))
        supervisor.sockets = listen(options.host, options.port)
        if options.admin_port is not None:
            supervisor.admin_sockets = listen(options.admin_host, options.admin_port)
        if options.ledger_url:
            open_ledger(options.data_dir, options.ledger_url, read_only=True).close()
        _supervise(supervisor)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _supervise(supervisor: Supervisor) -> None:
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    handled = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in handled}
    previous_fd = signal.set_wakeup_fd(wake_w.fileno())
    supervisor.selector.register(wake_r, selectors.EVENT_READ, None)
    supervisor.hold_port()
    seen = fingerprint(supervisor.source, supervisor.files)
    next_look = time.monotonic() + WATCH_S
    try:
        for index in range(supervisor.options.workers):
            supervisor.start(index)
        while supervisor.stopping is None:
            for key, _ in supervisor.selector.select(timeout=WATCH_S):
                if key.data is None:
                    for number in wake_r.recv(512):
                        _on_signal(supervisor, number)
                elif isinstance(key.data, Worker):
                    supervisor.heard(key.data)
                elif supervisor.holding:
                    answer_starting(key.data)
            supervisor.reap()
            if supervisor.options.watch and supervisor.stopping is None and time.monotonic() >= next_look:
                next_look = time.monotonic() + WATCH_S
                current = fingerprint(supervisor.source, supervisor.files)
                if current != seen:
                    seen = current
                    supervisor.reload("changed")
        supervisor.wait_out()
    finally:
        signal.set_wakeup_fd(previous_fd)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for worker in supervisor.workers.values():
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()
        for sock in [*supervisor.sockets, *supervisor.admin_sockets]:
            sock.close()
        wake_r.close()
        wake_w.close()
    if supervisor.stopping == "SIGINT":
        raise KeyboardInterrupt


def _on_signal(supervisor: Supervisor, number: int) -> None:
    if number == signal.SIGHUP:
        supervisor.reload("SIGHUP")
    elif number in (signal.SIGTERM, signal.SIGINT):
        supervisor.stop(signal.Signals(number).name)
