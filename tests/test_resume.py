"""Training that survives a kill: resumed runs end with the bytes of uninterrupted ones.

The real `dvc repro` runs a pipeline whose training epochs last about a second; the stage process
is killed with SIGKILL during its second epoch of three, and the next `dvc repro` must continue
from the state saved after the first and end exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import psutil
import pytest

from imdb_rnn.resume import (
    STATE_SUFFIX,
    SavedState,
    StateDirectory,
    UnusableState,
    capture,
    check_fits,
    read_state,
    resume_message,
    write_state,
)
from tests.scratch_project import Project, create_tiny_project
from tests.stage_runner import stage_args

pytestmark = pytest.mark.slow

# What an interrupted and resumed training must reproduce byte for byte: the model, its curves
# and summary (the stages downstream compute from the model alone).
COMPARED = ("models/model.keras", "reports/train")


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


def importing_numpy(process: psutil.Process, timeout: float = 60) -> None:
    """Wait until a stage process maps NumPy, which every stage imports once stages/__init__.py
    has run (and armed the stage's death with its parent)."""
    deadline = time.monotonic() + timeout
    while not any("/numpy/" in region.path for region in process.memory_maps()):
        assert time.monotonic() < deadline, "the stage never imported NumPy"
        time.sleep(0.05)


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


def start_repro(project: Project, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        ["dvc", "repro"],
        cwd=project.root,
        env=env or project.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_run_killed_in_epoch_2_resumes_and_ends_with_the_same_bytes(tmp_path, slow_dataset):
    killed = make_project(tmp_path / "killed", slow_dataset)
    killed.repro("embed")  # ingest, tokenize, embed
    uninterrupted = Project(tmp_path / "uninterrupted")  # a copy: the same commit and inputs
    shutil.copytree(killed.root, uninterrupted.root, symlinks=True)
    uninterrupted.repro("train")
    assert saved_states(uninterrupted) == [], "a completed run removes its saved state"

    repro = start_repro(killed)
    trainer = stage_process(killed, "train")
    wait_for_state(killed, repro)
    trainer.send_signal(signal.SIGSTOP)  # freeze it to look at the state, then kill it
    assert read_state(saved_states(killed)[0]).epochs_done == 1, "not killed during epoch 2"
    trainer.send_signal(signal.SIGKILL)
    output = repro.communicate(timeout=60)[0]
    assert repro.returncode != 0 and not (killed.root / "models/model.keras").exists(), output
    assert not (killed.root / "reports/train").exists(), "no half-written curves"

    resumed = killed.run("dvc", "repro", "train")
    assert "resuming at epoch 2 of 3 (saved " in resumed
    assert snapshot(killed) == snapshot(uninterrupted)
    accuracy = (killed.root / "reports/train/plots/metrics/eval/accuracy.tsv").read_text()
    assert [line.split("\t")[0] for line in accuracy.splitlines()[1:]] == ["0", "1", "2"]
    assert saved_states(killed) == []


def train_args(project: Project) -> list[str]:
    return stage_args("train", project.root)


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
    # Without $SHELL only dvc.yaml's `exec` makes the stage dvc's own child, whose death the
    # kernel then tells it of; with a shell in between, nothing would.
    repro = start_repro(project, env=project.env_without_shell)
    trainer = stage_process(project, "train")
    importing_numpy(trainer)  # the stage has started up: now dvc dies
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


# Round 3: a saved state must prove what it was made for before any of it is used.
RUN = "ab" * 32  # the fingerprint of "this run"


def a_state(**changes) -> SavedState:
    """A valid state after epoch 2 of 3 of the run RUN, with ``changes``."""
    state = SavedState(
        fingerprint=RUN,
        epochs_done=2,
        history=[
            {"loss": 0.5, "val_loss": 0.4, "val_accuracy": 0.8},
            {"loss": 0.3, "val_loss": 0.35, "val_accuracy": 0.85},
        ],
        counters={"EarlyStopping": {"wait": 0, "stopped_epoch": 0, "best": 0.35, "best_epoch": 1}},
        stop_training=False,
        saved_at=1.5,
        model_variables=[np.ones((2, 3), np.float32), np.array([7, 9], np.uint32)],
        optimizer_variables=[np.array(4, np.int64)],
        best_weights=[np.zeros((2, 3), np.float32)],
    )
    return replace(state, **changes)


def test_the_resume_state_round_trips(tmp_path):
    state = a_state()
    write_state(state, tmp_path / "x.state.npz")
    loaded = read_state(tmp_path / "x.state.npz")
    assert loaded.history == state.history and loaded.counters == state.counters
    assert loaded.fingerprint == state.fingerprint
    assert loaded.model_variables[1].dtype == np.uint32
    np.testing.assert_array_equal(loaded.best_weights[0], state.best_weights[0])
    assert os.path.getsize(tmp_path / "x.state.npz") > 0


def nan_weights() -> list[np.ndarray]:
    weights = [np.ones((2, 3), np.float32), np.array([7, 9], np.uint32)]
    weights[0][1, 2] = np.nan
    return weights


def write_meta(path: Path, **changes) -> None:
    """a_state() written, then its record edited by hand."""
    write_state(a_state(), path)
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays["meta"].tobytes()) | changes
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path.with_suffix(""), **arrays)  # savez adds .npz back


@pytest.mark.parametrize(
    ("epochs", "make", "expected"),
    [
        (3, lambda path: write_state(a_state(fingerprint="cd" * 32), path),
         "it was made for other train params, data or code (it records fingerprint"
         " cdcdcdcdcdcdcdcdcdcd, this run's is abababababababababab)"),
        (2, lambda path: write_state(a_state(epochs_done=6, history=[{"loss": 0.5}] * 6), path),
         "it records 6 epochs done, more than train.epochs (2)"),
        (3, lambda path: write_state(a_state(history=[{"loss": 0.5}]), path),
         "it records 2 epochs done but holds the logs of 1"),
        (3, lambda path: write_state(a_state(epochs_done=0, history=[], stop_training=True,
                                             counters={}), path),
         "it records that training stopped before its first epoch ended"),
        (3, lambda path: write_state(a_state(history=[a_state().history[0], {"loss": 0.3}]), path),
         "its logs of epoch 2 lack val_loss and val_accuracy"),
        (3, lambda path: write_state(a_state(model_variables=nan_weights()), path),
         "its model array 0 holds NaN or infinite values"),
        (3, lambda path: write_meta(path, epochs_done="2"),
         "its record's epochs_done is wrong (Input should be a valid integer, got '2')"),
        (3, lambda path: write_meta(path, counters={"EarlyStopping": {
            "wait": "none", "stopped_epoch": 0, "best": 0.3, "best_epoch": 0}}),
         "its record's counters.EarlyStopping.wait is wrong (Input should be a valid integer"),
        (3, lambda path: write_meta(path, counters={"EarlyStopping": {
            "wait": 0, "stopped_epoch": 0, "best": 0.3, "best_epoch": 7}}),
         "its early stopping's best epoch (7) is not one of the 2 done"),
        (3, lambda path: write_meta(path, counters={"ModelCheckpoint": {"filepath": "/x"}}),
         "it records counters of 'ModelCheckpoint', a callback it cannot restore"),
        (3, lambda path: write_meta(path, history=[{"loss": float("nan")}, {"loss": 0.1}]),
         "its record's history.0.loss is wrong (Input should be a finite number, got nan)"),
        (3, lambda path: path.write_bytes(b"PK\x03\x04 truncated"),
         "it is not a readable state file ("),
        (3, lambda path: path.mkdir(),
         "it is not a readable state file ([Errno 21] Is a directory"),
    ],
)  # fmt: skip
def test_a_state_that_does_not_prove_what_it_was_made_for_is_set_aside(
    tmp_path, caplog, epochs, make, expected
):
    state_dir = StateDirectory(tmp_path / "state", RUN, shared=False)
    state_dir.lock(tmp_path / "model.keras")
    make(state_dir.path)
    with caplog.at_level(logging.INFO, logger="imdb_rnn.resume"):
        assert state_dir.load(epochs) is None
    [message] = [record.getMessage() for record in caplog.records]  # one line
    assert message.startswith(
        f"starting from scratch: the saved training state {state_dir.path} cannot be resumed:"
        f" {expected}"
    )
    assert message.endswith("; set aside as abababababababababab.state.npz.rejected")
    assert not state_dir.path.exists()
    assert state_dir.path.with_name(state_dir.path.name + ".rejected").exists()


def test_a_state_that_proves_itself_is_resumed(tmp_path, caplog):
    state_dir = StateDirectory(tmp_path / "state", RUN, shared=False)
    state_dir.lock(tmp_path / "model.keras")
    write_state(a_state(), state_dir.path)
    with caplog.at_level(logging.INFO, logger="imdb_rnn.resume"):
        assert state_dir.load(3).history == a_state().history
    assert caplog.records == [] and state_dir.path.exists()


def test_a_directory_named_like_another_runs_state_is_moved_aside(tmp_path):
    state_dir = StateDirectory(tmp_path / "state", RUN, shared=False)
    state_dir.lock(tmp_path / "model.keras")
    (state_dir.directory / f"{'cd' * 10}{STATE_SUFFIX}").mkdir()
    assert state_dir.load(3) is None
    assert (state_dir.directory / f"{'cd' * 10}{STATE_SUFFIX}.rejected").is_dir()


def test_a_state_must_fit_the_models_variables(tmp_path, caplog):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    fitting = capture(model, [], [{"loss": 0.5, "val_loss": 0.4, "val_accuracy": 0.8}], RUN)
    state_dir = StateDirectory(tmp_path / "state", RUN, shared=False)
    assert state_dir.fits(fitting, model) is fitting

    wrong = [np.zeros((3, 3), np.float32), *fitting.model_variables[1:]]
    write_state(replace(fitting, model_variables=wrong), state_dir.path)
    with caplog.at_level(logging.INFO, logger="imdb_rnn.resume"):
        assert state_dir.fits(state_dir.load(1), model) is None
    assert "cannot be resumed: its model array 0 is float32[3, 3], the model's" in caplog.text
    assert "is float32[3, 2]; set aside as" in caplog.text
    assert not state_dir.path.exists()

    with pytest.raises(UnusableState, match=r"its optimizer array 0 is int32\[\], the model's"):
        ints = [np.array(0, np.int32), *fitting.optimizer_variables[1:]]
        check_fits(
            replace(fitting, optimizer_variables=ints),
            model.variables,
            model.optimizer.variables,
            model.weights,
        )
    with pytest.raises(UnusableState, match="it holds 1 best weights arrays, the model has 2"):
        check_fits(
            replace(fitting, best_weights=fitting.model_variables[:1]),
            model.variables,
            model.optimizer.variables,
            model.weights,
        )


@pytest.mark.parametrize(
    ("changes", "epochs", "expected"),
    [
        ({}, 3, "resuming at epoch 3 of 3"),
        ({}, 2, "all 2 epochs were done; finishing"),
        ({"stop_training": True}, 6, "early stopping ended training after epoch 2; finishing it"),
    ],
)
def test_the_resume_message_says_what_is_left(changes, epochs, expected):
    assert resume_message(a_state(**changes), epochs) == expected


def test_the_train_stage_sets_aside_a_state_that_does_not_fit_and_starts_over(
    tmp_path, tiny_params
):
    """A state with the right name and a wrongly shaped array: it used to crash on every run."""
    import sys

    from tests.conftest import REPO_ROOT
    from tests.stage_runner import run_stage, stage_args, write_params

    # Epochs of a fraction of a second, and enough of them to kill the stage in time.
    tiny_params["train"] |= {"epochs": 20}
    tiny_params["train"]["early_stopping"]["patience"] = 0
    write_params(tmp_path, tiny_params)
    for name in ("ingest", "tokenize", "embed"):
        assert run_stage(tmp_path, name, *stage_args(name)).returncode == 0
    trainer = subprocess.Popen(
        [sys.executable, "-m", "stages.train", *stage_args("train")],
        cwd=tmp_path,
        env=os.environ | {"PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    states = tmp_path / ".train-state"
    while not list(states.glob(f"*{STATE_SUFFIX}")):  # the state appears when epoch 1 ends
        assert trainer.poll() is None, "training ended before it saved a state"
        time.sleep(0.01)
    trainer.kill()
    trainer.wait(timeout=30)
    [path] = states.glob(f"*{STATE_SUFFIX}")
    state = read_state(path)
    wrong = [np.zeros((3, 3), np.float32), *state.model_variables[1:]]
    write_state(replace(state, model_variables=wrong), path)

    result = run_stage(tmp_path, "train", *stage_args("train"))
    assert result.returncode == 0, result.stderr
    assert "cannot be resumed: its model array 0 is float32[3, 3], the model's" in result.stderr
    assert "resuming" not in result.stderr
    assert (tmp_path / "models/model.keras").is_file()
    assert sorted(entry.name for entry in states.glob("*.state.*")) == [f"{path.name}.rejected"]
