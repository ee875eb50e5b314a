"""The workers of ``train.distribution: multi_worker``, as TF_CONFIG names them, and the wait for
them before TensorFlow forms the cluster.

TensorFlow answers a TF_CONFIG it cannot use with a traceback, and waits for a worker that never
starts for ever: inside MultiWorkerMirroredStrategy's constructor, in a call that holds the
interpreter's lock, so that no Python signal handler or thread runs, while its preemption notifier
has taken SIGTERM over to log it. Nothing is printed, and neither Ctrl-C, SIGTERM nor the death of
dvc stops the process, which keeps the output lock. So the train stage first reads TF_CONFIG here
(before TensorFlow's import), then claims this worker's port and waits, with a deadline and a log
line naming the worker it awaits, until every other worker's port answers; only then does
TensorFlow form the cluster, which takes a second once every worker is up.

Each worker listens on its own port while it waits, because TensorFlow opens it only inside the
constructor: workers that waited for TensorFlow's ports would wait for each other for ever.
Nothing here imports TensorFlow, and nothing here can change what training computes.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from imdb_rnn import cli
from imdb_rnn.errors import ClusterError, ParamsError

log = logging.getLogger(__name__)

TF_CONFIG_HINT = (
    'set it like {"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type":'
    ' "worker", "index": 0}} (docs/scaling.md)'
)
PROBE_INTERVAL_SECONDS = 0.5
LOG_INTERVAL_SECONDS = 30


@dataclass(frozen=True)
class Worker:
    name: str  # as logs and errors call it: "worker 2 of 2"
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Cluster:
    me: Worker
    others: tuple[Worker, ...]


def read_cluster(tf_config: str | None) -> Cluster:
    """This worker and the others, from TF_CONFIG's text, or a one-line ParamsError for what
    TensorFlow would answer with a traceback (or, for an index outside the cluster, a hang)."""
    if not tf_config:
        raise ParamsError(
            "train.distribution is multi_worker, but TF_CONFIG is not set; on every worker,"
            f" {TF_CONFIG_HINT}; or set train.distribution: none to train on this machine alone"
        )
    try:
        config = json.loads(tf_config)
    except json.JSONDecodeError as error:
        raise ParamsError(f"TF_CONFIG is not JSON ({error}); {TF_CONFIG_HINT}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ParamsError(f"TF_CONFIG needs a 'cluster' and a 'task'; {TF_CONFIG_HINT}")
    hosts = cluster.get(task.get("type"))
    index = task.get("index")
    if not isinstance(hosts, list) or not isinstance(index, int) or not 0 <= index < len(hosts):
        raise ParamsError(
            f"TF_CONFIG's task {json.dumps(task)} is not in its cluster {json.dumps(cluster)};"
            " the task's type must be a key of the cluster and its index count from 0"
        )
    workers = {
        (kind, position): _worker(f"{kind} {position + 1} of {len(addresses)}", address)
        for kind, addresses in cluster.items()
        for position, address in enumerate(addresses if isinstance(addresses, list) else [])
    }
    me = workers.pop((task["type"], index))
    return Cluster(me=me, others=tuple(workers.values()))


def _worker(name: str, address: object) -> Worker:
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 2**16:
        raise ParamsError(
            f"TF_CONFIG's cluster gives {name} the address {json.dumps(address)}, not host:port"
            f" with a port from 1 to 65535; {TF_CONFIG_HINT}"
        )
    return Worker(name, host.removeprefix("[").removesuffix("]"), int(port))  # [::1]:port


@contextlib.contextmanager
def claimed_port(me: Worker) -> Iterator[socket.socket]:
    """A listener on this worker's port, on every interface as TensorFlow's server will be (only
    on loopback if TF_CONFIG's address is a loopback one): the others see this worker as up, and
    a port already taken is named now, not in gRPC's traceback. Never accepted from: every other
    worker connects at most once, and stops probing then."""
    ipv6 = ":" in me.host
    if _is_loopback(me.host):
        interface = me.host
    else:
        interface = "127.0.0.1" if me.host == "localhost" else "::" if ipv6 else ""
    listener = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_STREAM)
    # SO_REUSEADDR: an earlier run's closed connections must not block the port; a process that
    # still listens on it does.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((interface, me.port))
        listener.listen()
    except OSError as error:
        listener.close()
        if error.errno == errno.EADDRINUSE:
            raise ClusterError(
                f"port {me.port} of this worker ({me.name}, {me.address} in TF_CONFIG) is in use"
                " by another process; stop it (an earlier training still running?) or give this"
                " worker a free port in TF_CONFIG"
            ) from None
        raise ClusterError(
            f"cannot listen on port {me.port} of this worker ({me.name}, {me.address} in"
            f" TF_CONFIG): {error.strerror}; give this worker a port it may open in TF_CONFIG"
        ) from None
    with listener:
        yield listener


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        return False


def answers(worker: Worker, timeout: float) -> bool:
    """Whether something listens at the worker's address (its wait, or TensorFlow's server)."""
    try:
        with socket.create_connection((worker.host, worker.port), timeout=timeout):
            return True
    except OSError:  # refused, unreachable, not resolvable (yet): try again later
        return False


def wait_for_workers(cluster: Cluster, timeout_seconds: float) -> None:
    """Return once every other worker's port answers, or raise a one-line ClusterError naming
    those that did not within ``timeout_seconds``; a line in the log says whom it waits for.

    Plain sockets and sleeps: SIGTERM, Ctrl-C and the death of dvc stop the wait at once."""
    started = time.monotonic()
    deadline = started + timeout_seconds
    waiting = list(cluster.others)
    last_log = None
    while True:
        waiting = [
            worker
            for worker in waiting
            if not answers(worker, max(0.1, min(1.0, deadline - time.monotonic())))
        ]
        now = time.monotonic()
        if not waiting:
            if last_log is not None:
                log.info("every worker answered after %.0f s", now - started)
            return
        if now >= deadline:
            missing = " and ".join(f"{worker.name} ({worker.address})" for worker in waiting)
            raise ClusterError(
                f"{missing} did not answer within train.peer_timeout_seconds"
                f" ({timeout_seconds:g} s); start the train stage on every worker TF_CONFIG"
                " names, check that its port is open between the machines, or raise"
                " train.peer_timeout_seconds"
            )
        if last_log is None or now - last_log >= LOG_INTERVAL_SECONDS:
            log.info(
                "this is %s; waiting for %s (%.0f s left of train.peer_timeout_seconds)",
                cluster.me.name,
                ", ".join(f"{worker.name} at {worker.address}" for worker in waiting),
                deadline - now,
            )
            last_log = now
        time.sleep(PROBE_INTERVAL_SECONDS)


def await_cluster(cluster: Cluster, timeout_seconds: float) -> None:
    """Claim this worker's port, wait for the others, and free the port for TensorFlow."""
    with claimed_port(cluster.me):
        wait_for_workers(cluster, timeout_seconds)


# Runs beside the stage while TensorFlow forms the cluster: at the deadline, it prints one line
# and kills the stage; if the stage dies before saying it is done (killed by the kernel), it
# prints the one line the stage could not.
_WATCHDOG = """
import os, select, signal, sys
stage, seconds, late, killed = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
if not select.select([sys.stdin], [], [], seconds)[0]:
    print(late, file=sys.stderr, flush=True)
    os.kill(stage, signal.SIGKILL)
elif not sys.stdin.buffer.read(1):
    print(killed, file=sys.stderr, flush=True)
"""


@contextlib.contextmanager
def cluster_formed(cluster: Cluster | None, timeout_seconds: float) -> Iterator[None]:
    """Wait for every worker, then let the block (TensorFlow forming the cluster) run under
    guards that need neither the interpreter nor TensorFlow's cooperation. Without a cluster
    (one machine), just run the block.

    Forming the cluster is one call that holds the interpreter's lock for as long as a worker
    fails to register: for ever, if one stops after answering the wait, or if an address in
    TF_CONFIG is another program's port. No Python handler or thread runs then, and TensorFlow's
    preemption notifier has taken SIGTERM over (it only logs it). So for its duration Ctrl-C and
    the death of dvc end the process by the kernel's hand (no output is open yet, and the kernel
    releases the output lock), and a process beside it prints one line and kills it at the
    deadline. Afterwards SIGTERM is the stage's again, and a failure ends the process without
    the interpreter's finalization, which TensorFlow's runtime can abort."""
    if cluster is None:
        yield
        return
    await_cluster(cluster, timeout_seconds)
    late = (
        f"train: error: TensorFlow did not form the cluster within train.peer_timeout_seconds"
        f" ({timeout_seconds:g} s) although every worker's port answered: a worker stopped"
        " meanwhile, or an address in TF_CONFIG is another program's port; check TF_CONFIG and"
        " start the train stage on every worker again"
    )
    killed = (
        "train: error: stopped while TensorFlow formed the cluster (Ctrl-C, or dvc ended); no"
        " output was written"
    )
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(timeout_seconds), late, killed],
        stdin=subprocess.PIPE,
        start_new_session=True,  # Ctrl-C is for the stage, not for its watchdog
    )
    interrupt = signal.signal(signal.SIGINT, signal.SIG_DFL)
    cli.set_parent_death_signal(signal.SIGKILL)
    try:
        yield
    finally:
        with contextlib.suppress(BrokenPipeError):  # a watchdog killed by hand: nothing to tell
            watchdog.stdin.write(b"done")
            watchdog.stdin.close()
        watchdog.wait()
        signal.signal(signal.SIGINT, interrupt)
        cli.skip_finalization_on_failure()
        cli.stop_on_sigterm(dies_with_parent=True)
