"""Training that survives a kill: resumed runs end with the bytes of uninterrupted ones.

The real `dvc repro` runs a pipeline whose training epochs last about a second; the stage process
is killed with SIGKILL during its second epoch of three, and the next `dvc repro` must continue
from the state saved after the first and end exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from imdb_rnn.resume import STATE_SUFFIX, read_state
from tests.scratch_project import Project, create_tiny_project

pytestmark = pytest.mark.slow

# What an interrupted and resumed run must reproduce byte for byte.
COMPARED = ("models/model.keras", "reports/train", "reports/metrics", "models/predictor.json")


def make_project(root: Path, dataset: Path) -> Project:
    project = create_tiny_project(root, dataset)
    for key, value in {
        "tokenize.max_length": 40,
        "train.units": 8,
        "train.batch_size": 16,
        "train.epochs": 3,
        "train.early_stopping.patience": 1,  # its counters must survive the kill too
    }.items():
        project.set_param(key, value)
    project.commit("slower tiny pipeline")
    return project


def stage_process(project: Project, name: str, timeout: float = 120) -> psutil.Process:
    """The `python -m stages.<name>` process running in this project."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in psutil.process_iter(["cmdline", "cwd"]):
            command = process.info["cmdline"] or []
            if f"stages.{name}" in command and process.info["cwd"] == str(project.root):
                return process
        time.sleep(0.05)
    raise AssertionError(f"stage {name} never started")


def saved_states(project: Project) -> list[Path]:
    return sorted((project.root / ".train-state").glob(f"*{STATE_SUFFIX}"))


def snapshot(project: Project) -> dict[str, bytes]:
    files = {}
    for name in COMPARED:
        path = project.root / name
        for file in [path] if path.is_file() else sorted(path.rglob("*")):
            if file.is_file():
                files[str(file.relative_to(project.root))] = file.read_bytes()
    return files


def start_repro(project: Project) -> subprocess.Popen:
    return subprocess.Popen(
        ["dvc", "repro"],
        cwd=project.root,
        env=project.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_run_killed_in_epoch_2_resumes_and_ends_with_the_same_bytes(tmp_path, slow_dataset):
    uninterrupted = make_project(tmp_path / "uninterrupted", slow_dataset)
    uninterrupted.repro()
    assert saved_states(uninterrupted) == [], "a completed run removes its saved state"

    killed = make_project(tmp_path / "killed", slow_dataset)
    killed.repro("embed")  # ingest, tokenize, embed
    repro = start_repro(killed)
    trainer = stage_process(killed, "train")
    wait_for_state(killed, repro)
    trainer.send_signal(signal.SIGSTOP)  # freeze it to look at the state, then kill it
    assert read_state(saved_states(killed)[0]).epochs_done == 1, "not killed during epoch 2"
    trainer.send_signal(signal.SIGKILL)
    output = repro.communicate(timeout=60)[0]
    assert repro.returncode != 0 and not (killed.root / "models/model.keras").exists(), output
    assert not (killed.root / "reports/train").exists(), "no half-written curves"

    resumed = killed.run("dvc", "repro")
    assert "resuming at epoch 2 of 3 (saved " in resumed
    assert snapshot(killed) == snapshot(uninterrupted)
    accuracy = (killed.root / "reports/train/plots/metrics/eval/accuracy.tsv").read_text()
    assert [line.split("\t")[0] for line in accuracy.splitlines()[1:]] == ["0", "1", "2"]
    assert saved_states(killed) == []


def train_args(project: Project) -> list[str]:
    import shlex

    import yaml

    command = yaml.safe_load((project.root / "dvc.yaml").read_text())["stages"]["train"]["cmd"]
    return shlex.split(command)[3:]


def wait_for_state(project: Project, repro: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not saved_states(project):  # the state appears when epoch 1 ends
        assert time.monotonic() < deadline and repro.poll() is None, repro.communicate()[0]
        time.sleep(0.02)


def test_one_writer_at_a_time_and_never_the_wrong_state(tmp_path, slow_dataset):
    """One project through what a careless user does: kill only dvc, start a second training
    beside a running one, change a parameter after a kill."""
    project = make_project(tmp_path / "project", slow_dataset)
    project.repro("embed")

    # Killing the dvc process alone: the stage must not outlive it (no orphan writing outputs).
    repro = start_repro(project)
    trainer = stage_process(project, "train")
    repro.send_signal(signal.SIGKILL)
    repro.wait(timeout=30)
    trainer.wait(timeout=30)  # psutil raises TimeoutExpired if it is still running

    # A second training into the same outputs is refused while the first holds the lock.
    first = start_repro(project)
    trainer = stage_process(project, "train")
    wait_for_state(project, first)
    trainer.send_signal(signal.SIGSTOP)  # still writing, as far as anyone can tell
    second = subprocess.run(
        ["python", "-m", "stages.train", *train_args(project)],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
    )
    assert second.returncode == 1
    assert "is already training into models/model.keras" in second.stderr.splitlines()[-1]

    # Killed now, and the params changed: the saved state is another run's, and is not resumed.
    trainer.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    project.set_param("train.units", 6)
    output = project.run("dvc", "repro")
    assert "starting from scratch: the saved training state" in output
    assert "resuming" not in output
    assert saved_states(project) == [], "a completed run removes its state"
    history = (project.root / "reports/train/plots/metrics/train/loss.tsv").read_text()
    steps = [int(line.split("\t")[0]) for line in history.splitlines()[1:]]
    assert steps == list(range(len(steps))), "each step once, in order"
    assert "Data and pipelines are up to date" in project.run("dvc", "status")


def test_the_resume_state_round_trips(tmp_path):
    from imdb_rnn.resume import SavedState, write_state

    state = SavedState(
        epochs_done=2,
        history=[{"loss": 0.5, "val_loss": 0.4}, {"loss": 0.3, "val_loss": 0.35}],
        counters={"EarlyStopping": {"wait": 0, "stopped_epoch": 0, "best": 0.35, "best_epoch": 1}},
        stop_training=False,
        saved_at=1.5,
        model_variables=[np.ones((2, 3), np.float32), np.array([7, 9], np.uint32)],
        optimizer_variables=[np.array(4, np.int64)],
        best_weights=[np.zeros(3, np.float32)],
    )
    write_state(state, tmp_path / "x.state.npz")
    loaded = read_state(tmp_path / "x.state.npz")
    assert loaded.history == state.history and loaded.counters == state.counters
    assert loaded.model_variables[1].dtype == np.uint32
    np.testing.assert_array_equal(loaded.best_weights[0], state.best_weights[0])
    assert os.path.getsize(tmp_path / "x.state.npz") > 0
