"""train.distribution: multi_worker, for real: two worker processes on the loopback interface.

Each worker has its own copy of the project, as it would on its own machine, and runs `dvc repro`
with its own TF_CONFIG. Both are killed after the first of three epochs, as a preempted job would
be, and restarted: they must resume together, end with the same model (their weights are kept
equal by the all-reduce), and learn the toy sentiment as well as one worker does.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from imdb_rnn.resume import read_state
from tests.conftest import REPO_ROOT, make_reviews, make_unlabelled_reviews
from tests.scratch_project import Project, create_tiny_project
from tests.test_resume import make_project, saved_states, stage_process

pytestmark = pytest.mark.slow

WORKERS = 2


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for each in sockets:
        each.bind(("127.0.0.1", 0))
    ports = [each.getsockname()[1] for each in sockets]
    for each in sockets:
        each.close()
    return ports


def tf_config(ports: list[int], index: int) -> str:
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})


def start_workers(workers: list[Project], ports: list[int]) -> list[subprocess.Popen]:
    for index, worker in enumerate(workers):
        worker.env["TF_CONFIG"] = tf_config(ports, index)
    return [
        subprocess.Popen(
            ["dvc", "repro", "train"],
            cwd=worker.root,
            env=worker.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for worker in workers
    ]


def trained(project: Project) -> dict[str, bytes]:
    """The train stage's outputs, file by file."""
    root = project.root
    files = [root / "models/model.keras", *(root / "reports/train").rglob("*")]
    return {str(file.relative_to(root)): file.read_bytes() for file in files if file.is_file()}


def wait_for_epoch_1(workers: list[Project], repros: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + 300
    while not all(saved_states(worker) for worker in workers):
        for repro in repros:
            assert time.monotonic() < deadline and repro.poll() is None, repro.communicate()[0]
        time.sleep(0.02)


def saved_model_accuracy(project: Project) -> float:
    metrics = json.loads((project.root / "reports/train/metrics.json").read_text())
    return metrics["saved_model"]["val_accuracy"]


def test_two_workers_train_in_step_resume_together_and_learn_as_one_does(tmp_path, slow_dataset):
    one = make_project(tmp_path / "one", slow_dataset)
    one.repro("embed")
    workers = []
    for index in range(WORKERS):  # the same commit and inputs on every "machine"
        root = tmp_path / f"worker{index}"
        shutil.copytree(one.root, root, symlinks=True)
        worker = Project(root)
        worker.set_param("train.distribution", "multi_worker")
        worker.commit("multi-worker training")
        workers.append(worker)
    one.repro("train")

    repros = start_workers(workers, free_ports(WORKERS))
    trainers = [stage_process(worker, "train") for worker in workers]
    wait_for_epoch_1(workers, repros)
    for trainer in trainers:
        trainer.send_signal(signal.SIGSTOP)  # freeze both to read their states, then kill both
    epochs_saved = [read_state(saved_states(worker)[0]).epochs_done for worker in workers]
    for trainer in trainers:
        trainer.send_signal(signal.SIGKILL)
    for repro in repros:
        output = repro.communicate(timeout=60)[0]
        assert repro.returncode != 0, output

    repros = start_workers(workers, free_ports(WORKERS))
    outputs = [repro.communicate(timeout=600)[0] for repro in repros]
    for repro, output in zip(repros, outputs, strict=True):
        assert repro.returncode == 0, output
    if len(set(epochs_saved)) == 1:  # the usual case: killed between two saves
        expected = f"resuming at epoch {epochs_saved[0] + 1} of 3"
    else:  # one was killed while saving: its state is an epoch behind
        expected = "starting from scratch: the workers' saved states are of different epochs"
    assert all(expected in output for output in outputs), outputs
    assert "worker 2 of 2 (2 replicas in all)" in outputs[1]

    assert trained(workers[0]) == trained(workers[1]), "the workers' weights drifted apart"
    assert saved_model_accuracy(one) > 0.8
    assert abs(saved_model_accuracy(workers[0]) - saved_model_accuracy(one)) <= 0.1


AGREEMENT = """
import json, sys
from imdb_rnn.distribution import all_workers_agree, distribution_strategy
strategy = distribution_strategy("multi_worker")
index = strategy.cluster_resolver.task_id
print(json.dumps([all_workers_agree(strategy, 1), all_workers_agree(strategy, index)]))
"""


def test_workers_agree_only_on_a_value_they_all_hold(tmp_path):
    """The decision a restarted cluster takes on the epochs its workers saved, taken by each."""
    ports = free_ports(WORKERS)
    processes = []
    for index in range(WORKERS):
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", AGREEMENT],
                cwd=REPO_ROOT,
                env=os.environ | {"TF_CONFIG": tf_config(ports, index)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]
        assert json.loads(stdout.strip().splitlines()[-1]) == [True, False]


# A worker that never starts, or stops while the cluster forms: TensorFlow waited for it for ever,
# printing nothing, deaf to SIGTERM and Ctrl-C, and outliving a killed dvc with the output lock.
@pytest.fixture(scope="module")
def waiting_worker(tmp_path_factory) -> Project:
    """Worker 1 of a two-worker cluster whose worker 2 is never started."""
    dataset = tmp_path_factory.mktemp("reviews")
    make_reviews(200, seed=1).to_parquet(dataset / "train.parquet")
    make_reviews(100, seed=2).to_parquet(dataset / "test.parquet")
    make_unlabelled_reviews(60).to_parquet(dataset / "unsupervised.parquet")
    project = create_tiny_project(tmp_path_factory.mktemp("worker") / "project", dataset)
    project.repro("embed")
    project.set_param("train.distribution", "multi_worker")
    project.commit("multi-worker training")
    return project


def start_repro(project: Project, ports: list[int], log: Path) -> subprocess.Popen:
    """`dvc repro train` as worker 1 of ``ports``, in its own process group as in a terminal,
    without $SHELL: the harder case for a stage that must die with dvc."""
    with log.open("w") as output:
        return subprocess.Popen(
            ["dvc", "repro", "train"],
            cwd=project.root,
            env=project.env_without_shell | {"TF_CONFIG": tf_config(ports, 0)},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=ctrl_c_as_in_a_terminal,
        )


def ctrl_c_as_in_a_terminal() -> None:
    """Let SIGINT end the process, as it does for a command typed in a terminal. A suite started
    as a shell's background job (`nohup pytest &`) ignores SIGINT, and an ignored signal stays
    ignored through fork and exec down to the stage: Ctrl-C never reached it there, and the
    Ctrl-C test failed (the stage's /proc status showed SIGINT in SigIgn)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def listening_on(process: psutil.Process, port: int) -> bool:
    with contextlib.suppress(psutil.Error):
        return any(
            connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
            for connection in process.net_connections("tcp")
        )
    return False


def gone_within(process: psutil.Process, seconds: float) -> bool:
    with contextlib.suppress(psutil.Error):
        process.wait(timeout=seconds)
    return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE


def still_running(process: psutil.Process) -> str:
    """What a process that should have ended is doing: its state, where the kernel has it
    waiting, and which signals it blocks, ignores and catches (SigBlk, SigIgn, SigCgt)."""
    proc = Path("/proc", str(process.pid))
    with contextlib.suppress(OSError):
        status = dict(line.split(":\t", 1) for line in (proc / "status").read_text().splitlines())
        shown = ("State", "Threads", "SigBlk", "SigIgn", "SigCgt")
        return f"wchan {(proc / 'wchan').read_text()}; " + "; ".join(
            f"{name} {status.get(name, '?').strip()}" for name in shown
        )
    return "gone since"


@contextlib.contextmanager
def killed_at_exit(repro: subprocess.Popen) -> Iterator[None]:
    """However the test ends, no dvc and no stage of it is left running."""
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(repro.pid, signal.SIGKILL)
        repro.wait()


def test_a_worker_that_never_starts_is_awaited_boundedly_then_named(waiting_worker, tmp_path):
    waiting_worker.set_param("train.peer_timeout_seconds", 3)
    ports = free_ports(WORKERS)
    repro = start_repro(waiting_worker, ports, tmp_path / "repro.log")
    with killed_at_exit(repro):
        assert repro.wait(timeout=240) != 0
    output = (tmp_path / "repro.log").read_text()
    assert f"this is worker 1 of 2; waiting for worker 2 of 2 at 127.0.0.1:{ports[1]}" in output
    errors = [line for line in output.splitlines() if line.startswith("train: error: ")]
    assert errors == [
        f"train: error: worker 2 of 2 (127.0.0.1:{ports[1]}) did not answer within"
        " train.peer_timeout_seconds (3 s); start the train stage on every worker TF_CONFIG names,"
        " check that its port is open between the machines, or raise train.peer_timeout_seconds"
    ]
    assert "Traceback" not in output
    assert not (waiting_worker.root / "models/model.keras").exists()


@pytest.mark.parametrize("stop", ["kill dvc", "ctrl-c"])
@pytest.mark.parametrize("phase", ["waiting", "forming"])
def test_a_stuck_worker_dies_with_dvc_and_with_ctrl_c(waiting_worker, tmp_path, phase, stop):
    """``waiting``: worker 2 never starts. ``forming``: something answers on worker 2's port
    but never registers with TensorFlow, whose forming of the cluster then blocks the
    interpreter."""
    waiting_worker.set_param("train.peer_timeout_seconds", 300)
    ports = free_ports(WORKERS)
    with contextlib.ExitStack() as stack:
        if phase == "forming":
            impostor = stack.enter_context(socket.socket())
            impostor.bind(("127.0.0.1", ports[1]))
            impostor.listen()
        repro = start_repro(waiting_worker, ports, tmp_path / "repro.log")
        stack.enter_context(killed_at_exit(repro))
        trainer = stage_process(waiting_worker, "train")
        # Generous: on a loaded 2-core machine the stage's imports alone have taken minutes.
        deadline = time.monotonic() + 400
        held = 0  # TensorFlow's server is what listens for seconds when the impostor answers
        while held < (5 if phase == "forming" else 1):
            assert time.monotonic() < deadline and repro.poll() is None, "never got stuck"
            held = held + 1 if listening_on(trainer, ports[0]) else 0
            time.sleep(1)
        if stop == "kill dvc":
            os.kill(repro.pid, signal.SIGKILL)
        else:
            os.killpg(repro.pid, signal.SIGINT)
        assert gone_within(trainer, 60), (
            f"the stage outlived {stop}: {still_running(trainer)}\n"
            + (tmp_path / "repro.log").read_text()[-3000:]
        )
        assert repro.wait(timeout=60) != 0
    errors = [
        line
        for line in (tmp_path / "repro.log").read_text().splitlines()
        if line.startswith("train: error: ")
    ]
    assert len(errors) == 1 and errors[0].startswith(STOPPED[phase, stop]), errors


# What the stage (or, while TensorFlow forms the cluster, its watchdog) says as it stops.
STOPPED = {
    ("waiting", "kill dvc"): "train: error: stopped because its parent process ended",
    ("waiting", "ctrl-c"): "train: error: interrupted; no output was written",
    ("forming", "kill dvc"): "train: error: stopped while TensorFlow formed the cluster",
    ("forming", "ctrl-c"): "train: error: stopped while TensorFlow formed the cluster",
}


def test_a_cluster_that_never_forms_is_stopped_at_the_deadline(waiting_worker, tmp_path):
    waiting_worker.set_param("train.peer_timeout_seconds", 5)
    ports = free_ports(WORKERS)
    with socket.socket() as impostor:  # answers the wait, never registers with TensorFlow
        impostor.bind(("127.0.0.1", ports[1]))
        impostor.listen()
        repro = start_repro(waiting_worker, ports, tmp_path / "repro.log")
        with killed_at_exit(repro):
            assert repro.wait(timeout=240) != 0
    errors = [
        line
        for line in (tmp_path / "repro.log").read_text().splitlines()
        if line.startswith("train: error: ")
    ]
    assert errors == [
        "train: error: TensorFlow did not form the cluster within train.peer_timeout_seconds (5 s)"
        " although every worker's port answered: a worker stopped meanwhile, or an address in"
        " TF_CONFIG is another program's port; check TF_CONFIG and start the train stage on every"
        " worker again"
    ]


IN_STEP = """
import sys
from imdb_rnn import cli
from imdb_rnn.cluster import cluster_formed, read_cluster
from imdb_rnn.distribution import all_workers_agree, distribution_strategy

def main():
    with cluster_formed(read_cluster(sys.argv[1]), 120):
        strategy = distribution_strategy("multi_worker")
    print("formed", flush=True)
    while all_workers_agree(strategy, 1):  # collectives, step after step, as training runs them
        pass

cli.run(main, "train")
"""


def test_sigterm_stops_a_worker_of_a_formed_cluster(tmp_path):
    """TensorFlow's preemption notifier takes SIGTERM over when the cluster forms, and only logs
    it: neither `kill` nor the death of dvc (which sends SIGTERM) stopped a training worker."""
    ports = free_ports(WORKERS)
    logs = [tmp_path / f"worker{index}.log" for index in range(WORKERS)]
    workers = []
    try:
        for index, log in enumerate(logs):
            with log.open("w") as output:
                workers.append(
                    subprocess.Popen(
                        [sys.executable, "-c", IN_STEP, tf_config(ports, index)],
                        cwd=REPO_ROOT,
                        env=os.environ | {"TF_CONFIG": tf_config(ports, index)},
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + 240
        while not all("formed" in log.read_text() for log in logs):
            assert time.monotonic() < deadline and all(w.poll() is None for w in workers), [
                log.read_text()[-3000:] for log in logs
            ]
            time.sleep(0.2)
        workers[0].send_signal(signal.SIGTERM)
        assert workers[0].wait(timeout=60) == 143
        errors = [line for line in logs[0].read_text().splitlines() if ": error: " in line]
        assert errors == ["train: error: stopped by SIGTERM; no output was written"]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
