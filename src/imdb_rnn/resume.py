"""Training that survives a kill: the full state saved after every epoch, and resumed from it.

DVC 3 has no checkpoints, and Keras' BackupAndRestore saves only the weights, the optimizer and
the epoch: not the random state of the dropout layers, nor the counters of early stopping and the
learning-rate schedule, nor the best weights early stopping will restore. Resumed from it, a run
would continue, but differently from one that was never interrupted. So the train stage saves,
after every epoch, everything the rest of the run depends on:

* every model variable (weights, and the seed-generator states of the dropout layers);
* every optimizer variable (moments, iteration count, current learning rate);
* early stopping's and reduce-on-plateau's counters, and early stopping's best weights;
* the history of epoch logs, which replays DVCLive's curves (each step once, in order);
* whether early stopping already ended training.

The order of the training batches needs no saving: it is a function of the seed and the epoch
(imdb_rnn.batching). A run killed at any point and resumed ends with the same bytes as one that was
never interrupted.

A saved state belongs to one set of inputs: its file name is the fingerprint of the train params,
the input files, the code that runs and the numerics settings. Anything else found in the state
directory is stale and removed; a completed run removes its own.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import logging
import os
import sys
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np

from imdb_rnn import CANNOT_CHANGE_RESULTS, artifacts
from imdb_rnn.errors import DataError

log = logging.getLogger(__name__)

STATE_SUFFIX = ".state.npz"
# The callbacks whose counters decide the rest of a run, and the counters that do.
CALLBACK_COUNTERS = {
    "EarlyStopping": ("wait", "stopped_epoch", "best", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
}


def fingerprint(settings: Mapping[str, Any], files: Mapping[str, Path]) -> str:
    """A hash of everything a training run reads: a saved state is resumed only when it matches.

    ``files`` maps a stable name (a path relative to the project, so that a copy of the project
    made by `dvc exp run --queue` gives the same fingerprint) to the file to hash.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for name in sorted(files):
        digest.update(f"{name}:{artifacts.file_sha256(files[name])}".encode())
    return digest.hexdigest()


def loaded_code(
    project: Path, code_directories: Sequence[str] = ("src", "stages")
) -> dict[str, Path]:
    """The source files of this project's modules loaded so far, by their path relative to the
    project: the code that is running (a virtual environment inside the project is not code).

    Modules that cannot change a result (imdb_rnn.CANNOT_CHANGE_RESULTS: messages, logging,
    parameter validation, the machine's description) are left out, so that rewording a log line
    does not throw away hours of saved training.
    """
    project = project.resolve()
    roots = [project / directory for directory in code_directories]
    files = {}
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if not origin or name.removeprefix("imdb_rnn.") in CANNOT_CHANGE_RESULTS:
            continue
        if any(Path(origin).resolve().is_relative_to(root) for root in roots):
            files[str(Path(origin).resolve().relative_to(project))] = Path(origin)
    return files


@dataclass(frozen=True)
class SavedState:
    epochs_done: int  # epochs completed; the next one to run is this 0-based index
    history: list[dict[str, float]]  # Keras' epoch logs, one per completed epoch
    counters: dict[str, dict[str, Any]]  # CALLBACK_COUNTERS, per callback class
    stop_training: bool  # early stopping ended training after the last completed epoch
    saved_at: float  # time.time()
    model_variables: list[np.ndarray]
    optimizer_variables: list[np.ndarray]
    best_weights: list[np.ndarray] | None


def capture(
    model: keras.Model,
    callbacks: Sequence[keras.callbacks.Callback],
    history: list[dict[str, float]],
) -> SavedState:
    """The state of a training run at the end of an epoch (after every callback has run)."""
    counters, best_weights = {}, None
    for callback in callbacks:
        name = type(callback).__name__
        if name in CALLBACK_COUNTERS:
            counters[name] = {
                key: _plain(getattr(callback, key)) for key in CALLBACK_COUNTERS[name]
            }
        if isinstance(callback, keras.callbacks.EarlyStopping) and callback.best_weights:
            best_weights = [np.asarray(weight) for weight in callback.best_weights]
    return SavedState(
        epochs_done=len(history),
        history=list(history),
        counters=counters,
        stop_training=bool(model.stop_training),
        saved_at=time.time(),
        model_variables=[np.asarray(variable) for variable in model.variables],
        optimizer_variables=[np.asarray(variable) for variable in model.optimizer.variables],
        best_weights=best_weights,
    )


def _plain(value: Any) -> Any:
    """A callback counter as a JSON value (Keras keeps some as NumPy scalars)."""
    return value.item() if isinstance(value, np.generic) else value


def restore_variables(model: keras.Model, state: SavedState) -> None:
    """Put the saved weights, dropout seeds and optimizer state back into a freshly built model."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    for variables, saved, what in (
        (model.variables, state.model_variables, "model"),
        (model.optimizer.variables, state.optimizer_variables, "optimizer"),
    ):
        if len(variables) != len(saved):
            raise DataError(
                f"the saved training state has {len(saved)} {what} variables, the model"
                f" {len(variables)}; remove the state directory and train from scratch"
            )
        for variable, value in zip(variables, saved, strict=True):
            variable.assign(value)


class Checkpoint(keras.callbacks.Callback):
    """Saves the training state after every epoch; on resume, restores the callbacks' counters.

    Must come last in the callback list: it saves what the others left at the end of the epoch,
    and restores their counters after their own on_train_begin has reset them.
    """

    def __init__(
        self,
        path: Path,
        tracked: Sequence[keras.callbacks.Callback],
        resumed: SavedState | None,
    ):
        super().__init__()
        self.path, self.tracked, self.resumed = path, list(tracked), resumed
        self.history: list[dict[str, float]] = list(resumed.history) if resumed else []
        self.save_seconds: list[float] = []

    def on_train_begin(self, logs=None):
        if self.resumed is None:
            return
        for callback in self.tracked:
            for key, value in self.resumed.counters.get(type(callback).__name__, {}).items():
                setattr(callback, key, value)
            if isinstance(callback, keras.callbacks.EarlyStopping) and self.resumed.best_weights:
                callback.best_weights = list(self.resumed.best_weights)
        self.model.stop_training = self.resumed.stop_training

    def on_epoch_end(self, epoch, logs=None):
        started = time.perf_counter()
        self.history.append({key: float(value) for key, value in (logs or {}).items()})
        write_state(capture(self.model, self.tracked, self.history), self.path)
        self.save_seconds.append(time.perf_counter() - started)


def write_state(state: SavedState, path: Path) -> None:
    """One .npz, written atomically: a kill while saving leaves the previous epoch's state."""
    arrays = {f"model_{index}": value for index, value in enumerate(state.model_variables)}
    arrays |= {f"optimizer_{index}": value for index, value in enumerate(state.optimizer_variables)}
    arrays |= {f"best_{index}": value for index, value in enumerate(state.best_weights or [])}
    meta = {
        "epochs_done": state.epochs_done,
        "history": state.history,
        "counters": state.counters,
        "stop_training": state.stop_training,
        "saved_at": state.saved_at,
        "counts": {
            "model": len(state.model_variables),
            "optimizer": len(state.optimizer_variables),
            "best": len(state.best_weights or []),
        },
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta, allow_nan=False).encode(), dtype=np.uint8)
    artifacts.write_arrays(path, **arrays)


def read_state(path: Path) -> SavedState:
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(archive["meta"].tobytes())
        counts = meta["counts"]

        def arrays(prefix: str) -> list[np.ndarray]:
            return [archive[f"{prefix}_{index}"] for index in range(counts[prefix])]

        return SavedState(
            epochs_done=meta["epochs_done"],
            history=meta["history"],
            counters=meta["counters"],
            stop_training=meta["stop_training"],
            saved_at=meta["saved_at"],
            model_variables=arrays("model"),
            optimizer_variables=arrays("optimizer"),
            best_weights=arrays("best") if counts["best"] else None,
        )


class StateDirectory:
    """Where training runs keep their state between epochs: one file per fingerprint, plus the
    locks that keep two processes from writing the same outputs, or the same state, at once.

    A project's own directory (.train-state) serves one workspace, so a state made for other
    inputs is stale and removed. A ``shared`` directory ($IMDB_RNN_STATE_DIR, for queued
    experiments) holds other runs' states, which are left alone.
    """

    def __init__(self, directory: Path, run_fingerprint: str, shared: bool):
        if directory.exists() and not directory.is_dir():
            raise DataError(f"the training state directory {directory} is a file; give a directory")
        self.directory, self.shared = directory, shared
        self.path = directory / f"{run_fingerprint[:20]}{STATE_SUFFIX}"
        self._locks: list = []  # kept open: a lock lasts as long as this process

    def lock(self, outputs: Path) -> None:
        """Hold exclusive locks on ``outputs`` and on this run's state, or fail at once."""
        self.directory.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256(str(outputs.resolve()).encode()).hexdigest()[:12]
        for lock_file, what in (
            (self.directory / f"writer-{key}.lock", f"training into {outputs}"),
            (self.path.with_suffix(".lock"), "training the same run (same inputs)"),
        ):
            self._locks.append(_exclusive(lock_file, what))

    def load(self) -> SavedState | None:
        """The saved state of this run's inputs, if any (and clear out what cannot be used)."""
        # A killed write leaves its temporary behind; the lock on it tells a stale one from one
        # in use. A shared directory may serve several machines, whose locks this one may not
        # see: there, only this run's own go (no other process writes them while it holds the
        # run's lock).
        artifacts.remove_stale_temporaries(
            self.directory, glob.escape(self.path.name) if self.shared else f"*{STATE_SUFFIX}"
        )
        others = [
            path
            for path in self.directory.glob(f"*{STATE_SUFFIX}")
            if path != self.path and not path.name.startswith(".")
        ]
        if others and not self.path.exists():
            log.info(
                "starting from scratch: the saved training state in %s was made for other train"
                " params, data or code (%s)",
                self.directory,
                "kept: the directory is shared" if self.shared else "removed",
            )
        if not self.shared:
            for path in others:
                path.unlink(missing_ok=True)
        if not self.path.exists():
            return None
        try:
            return read_state(self.path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            log.info("starting from scratch: the saved training state is unreadable (%s)", error)
            self.path.unlink(missing_ok=True)
            return None

    def remove(self) -> None:
        """A completed run's state, and its lock file, are no longer needed."""
        self.path.unlink(missing_ok=True)
        self.path.with_suffix(".lock").unlink(missing_ok=True)


def _exclusive(lock_file: Path, what: str):
    """An open file holding an exclusive lock, with the holder's process id written in it."""
    stream = lock_file.open("a+")
    try:
        fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        stream.seek(0)
        holder = stream.read().strip() or "another process"
        stream.close()
        raise DataError(
            f"{holder} is already {what}; wait for it to finish or stop it (kill <pid>),"
            " then run again"
        ) from None
    stream.seek(0)
    stream.truncate()
    stream.write(f"process {os.getpid()} (started {datetime.now():%H:%M:%S})")
    stream.flush()
    return stream
