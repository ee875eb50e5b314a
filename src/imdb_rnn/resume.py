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
the input files, the code that runs and the numerics settings, and the file records that
fingerprint too. Before any of it is used, a state must prove it was made for this run and fits
it: its fingerprint, its epoch counts against train.epochs, every callback counter, every array's
shape and dtype against the model's variables, every number finite. One that fails is set aside
(renamed *.rejected) and training starts from scratch. Other runs' states in the project's own
state directory are stale and removed; a completed run removes its own.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import logging
import os
import shutil
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
from pydantic import BaseModel, ConfigDict, NonNegativeInt, ValidationError

from imdb_rnn import CANNOT_CHANGE_RESULTS, artifacts
from imdb_rnn.errors import DataError

log = logging.getLogger(__name__)

STATE_SUFFIX = ".state.npz"
REJECTED_SUFFIX = ".rejected"


class _Strict(BaseModel):
    # A saved state is read back exactly as written: no coercion ("2" is not 2), no NaN.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class _EarlyStoppingCounters(_Strict):
    wait: NonNegativeInt
    stopped_epoch: NonNegativeInt
    best: float | None  # None until the first epoch ends
    best_epoch: NonNegativeInt


class _ReduceLROnPlateauCounters(_Strict):
    wait: NonNegativeInt
    best: float | None
    cooldown_counter: NonNegativeInt


# The callbacks whose counters decide the rest of a run, and the counters that do.
_COUNTER_MODELS: dict[str, type[_Strict]] = {
    "EarlyStopping": _EarlyStoppingCounters,
    "ReduceLROnPlateau": _ReduceLROnPlateauCounters,
}
CALLBACK_COUNTERS = {name: tuple(model.model_fields) for name, model in _COUNTER_MODELS.items()}


class _Counts(_Strict):
    model: NonNegativeInt
    optimizer: NonNegativeInt
    best: NonNegativeInt


class _Meta(_Strict):
    """What a state file records beside its arrays (its "meta" member, JSON)."""

    fingerprint: str
    epochs_done: NonNegativeInt
    history: list[dict[str, float]]
    counters: dict[str, dict[str, Any]]  # checked against _COUNTER_MODELS by read_state
    stop_training: bool
    saved_at: float
    counts: _Counts


# The scores of the saved epoch that the train stage reads back from the history when it ends.
SCORED_LOGS = ("val_loss", "val_accuracy")


class UnusableState(Exception):
    """Why a saved state cannot be resumed from: it is set aside, and training starts over."""


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
    fingerprint: str  # of the run it was made for (see fingerprint())
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
    run_fingerprint: str,
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
        fingerprint=run_fingerprint,
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


def check_state(state: SavedState, run_fingerprint: str, epochs: int) -> None:
    """Raise UnusableState unless ``state`` was made for this run (``run_fingerprint``, with
    train.epochs ``epochs``) and its counts and numbers make sense."""
    if state.fingerprint != run_fingerprint:
        raise UnusableState(
            "it was made for other train params, data or code (it records fingerprint"
            f" {state.fingerprint[:20]}, this run's is {run_fingerprint[:20]})"
        )
    if state.epochs_done > epochs:
        raise UnusableState(
            f"it records {state.epochs_done} epochs done, more than train.epochs ({epochs})"
        )
    if len(state.history) != state.epochs_done:
        raise UnusableState(
            f"it records {state.epochs_done} epochs done but holds the logs of {len(state.history)}"
        )
    if state.stop_training and not state.epochs_done:
        raise UnusableState("it records that training stopped before its first epoch ended")
    for epoch, logs in enumerate(state.history, start=1):
        if missing := [key for key in SCORED_LOGS if key not in logs]:
            raise UnusableState(f"its logs of epoch {epoch} lack {' and '.join(missing)}")
    best_epoch = state.counters.get("EarlyStopping", {}).get("best_epoch", 0)
    if best_epoch >= max(state.epochs_done, 1):  # an index into the history once training ends
        raise UnusableState(
            f"its early stopping's best epoch ({best_epoch}) is not one of the"
            f" {state.epochs_done} done"
        )
    for what, arrays in _arrays(state):
        for index, array in enumerate(arrays):
            if np.issubdtype(array.dtype, np.inexact) and not np.isfinite(array).all():
                raise UnusableState(f"its {what} array {index} holds NaN or infinite values")


def check_fits(
    state: SavedState,
    model_variables: Sequence,
    optimizer_variables: Sequence,
    model_weights: Sequence,
) -> None:
    """Raise UnusableState unless every saved array has the shape and dtype of the variable it
    will be assigned to (anything with .shape and .dtype: Keras variables, NumPy arrays).

    ``model_weights`` are what early stopping's best weights restore (Keras' model.weights);
    a mismatch there would only fail when training ends, hours later.
    """
    expected = {"model": model_variables, "optimizer": optimizer_variables}
    if state.best_weights is not None:
        expected["best weights"] = model_weights
    for what, arrays in _arrays(state):
        variables = expected[what]
        if len(arrays) != len(variables):
            raise UnusableState(
                f"it holds {len(arrays)} {what} arrays, the model has {len(variables)}"
            )
        for index, (array, variable) in enumerate(zip(arrays, variables, strict=True)):
            shape, dtype = tuple(variable.shape), np.dtype(variable.dtype)
            if array.shape != shape or array.dtype != dtype:
                raise UnusableState(
                    f"its {what} array {index} is {array.dtype}{list(array.shape)}, the model's"
                    f" {getattr(variable, 'path', 'variable')} is {dtype}{list(shape)}"
                )


def _arrays(state: SavedState) -> list[tuple[str, list[np.ndarray]]]:
    arrays = [("model", state.model_variables), ("optimizer", state.optimizer_variables)]
    if state.best_weights is not None:
        arrays.append(("best weights", state.best_weights))
    return arrays


def restore_variables(model: keras.Model, state: SavedState) -> None:
    """Put the saved weights, dropout seeds and optimizer state back into a freshly built model
    (one that StateDirectory.fits accepted the state for)."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    for variables, saved in (
        (model.variables, state.model_variables),
        (model.optimizer.variables, state.optimizer_variables),
    ):
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
        run_fingerprint: str,
        tracked: Sequence[keras.callbacks.Callback],
        resumed: SavedState | None,
    ):
        super().__init__()
        self.path, self.run_fingerprint = path, run_fingerprint
        self.tracked, self.resumed = list(tracked), resumed
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
        state = capture(self.model, self.tracked, self.history, self.run_fingerprint)
        write_state(state, self.path)
        self.save_seconds.append(time.perf_counter() - started)


def write_state(state: SavedState, path: Path) -> None:
    """One .npz, written atomically: a kill while saving leaves the previous epoch's state."""
    arrays = {f"model_{index}": value for index, value in enumerate(state.model_variables)}
    arrays |= {f"optimizer_{index}": value for index, value in enumerate(state.optimizer_variables)}
    arrays |= {f"best_{index}": value for index, value in enumerate(state.best_weights or [])}
    meta = {
        "fingerprint": state.fingerprint,
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
    """A state file as write_state wrote it, or UnusableState saying what is wrong with it."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = _Meta.model_validate(json.loads(archive["meta"].tobytes()))

            def arrays(prefix: str) -> list[np.ndarray]:
                return [
                    archive[f"{prefix}_{index}"] for index in range(getattr(meta.counts, prefix))
                ]

            model_variables, optimizer_variables = arrays("model"), arrays("optimizer")
            best_weights = arrays("best") if meta.counts.best else None
        counters = {name: _counters(name, values) for name, values in meta.counters.items()}
    except ValidationError as error:
        raise _invalid(error, "") from None
    except KeyError as error:  # its record, or an array the record counts, is not there
        raise UnusableState(f"it lacks an array ({error.args[0]})") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        detail = " ".join(str(error).split()) or type(error).__name__
        raise UnusableState(f"it is not a readable state file ({detail})") from None
    return SavedState(
        fingerprint=meta.fingerprint,
        epochs_done=meta.epochs_done,
        history=meta.history,
        counters=counters,
        stop_training=meta.stop_training,
        saved_at=meta.saved_at,
        model_variables=model_variables,
        optimizer_variables=optimizer_variables,
        best_weights=best_weights,
    )


def _counters(name: str, values: dict[str, Any]) -> dict[str, Any]:
    """One callback's saved counters, checked: restoring them sets attributes of the callback."""
    if name not in _COUNTER_MODELS:
        raise UnusableState(f"it records counters of {name!r}, a callback it cannot restore")
    try:
        return _COUNTER_MODELS[name].model_validate(values).model_dump()
    except ValidationError as error:
        raise _invalid(error, f"counters.{name}.") from None


def _invalid(error: ValidationError, prefix: str) -> UnusableState:
    problem = error.errors()[0]
    where = prefix + ".".join(str(part) for part in problem["loc"])
    return UnusableState(
        f"its record's {where or 'content'} is wrong ({problem['msg']}, got"
        f" {problem['input']!r:.60})"
    )


def resume_message(state: SavedState, epochs: int) -> str:
    """What a resumed run is about to do, for the log (never "resuming at epoch 3 of 2")."""
    if state.stop_training:
        return f"early stopping ended training after epoch {state.epochs_done}; finishing it"
    if state.epochs_done == epochs:
        return f"all {epochs} epochs were done; finishing"
    return f"resuming at epoch {state.epochs_done + 1} of {epochs}"


class StateDirectory:
    """Where training runs keep their state between epochs: one file per fingerprint, plus the
    locks that keep two processes from writing the same outputs, or the same state, at once.

    A project's own directory (.train-state) serves one workspace, so a state made for other
    inputs is stale and removed. A ``shared`` directory ($IMDB_RNN_STATE_DIR, for queued
    experiments) holds other runs' states, which are left alone.

    A state that fails its checks is renamed *.rejected rather than removed: it is the evidence
    of a bug, a disk fault or a hand-made file, worth a look. A later rejection of the same name
    replaces it, so there is at most one per run; remove it when you have looked.
    """

    def __init__(self, directory: Path, run_fingerprint: str, shared: bool):
        if directory.exists() and not directory.is_dir():
            raise DataError(f"the training state directory {directory} is a file; give a directory")
        self.directory, self.shared = directory, shared
        self.run_fingerprint = run_fingerprint
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

    def load(self, epochs: int) -> SavedState | None:
        """The saved state of this run's inputs, if it proves it was made for this run of
        ``epochs`` epochs (check_state); clears out what cannot be used."""
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
                if path.is_file() and not path.is_symlink():
                    path.unlink(missing_ok=True)
                else:  # nothing a run writes: keep it, out of the way
                    _rename_aside(path)
        if not self.path.exists() and not self.path.is_symlink():
            return None
        try:
            state = read_state(self.path)
            check_state(state, self.run_fingerprint, epochs)
        except UnusableState as problem:
            self._set_aside(str(problem))
            return None
        return state

    def fits(self, state: SavedState, model: keras.Model) -> SavedState | None:
        """``state`` if its arrays fit ``model``'s variables (check_fits), else None, with the
        state set aside. Call it in the scope the model was built in: it builds the optimizer."""
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        try:
            check_fits(state, model.variables, model.optimizer.variables, model.weights)
        except UnusableState as problem:
            self._set_aside(str(problem))
            return None
        return state

    def _set_aside(self, problem: str) -> None:
        rejected = _rename_aside(self.path)
        log.info(
            "starting from scratch: the saved training state %s cannot be resumed: %s; set"
            " aside as %s",
            self.path,
            problem,
            rejected.name,
        )

    def remove(self) -> None:
        """A completed run's state, and its lock file, are no longer needed."""
        self.path.unlink(missing_ok=True)
        self.path.with_suffix(".lock").unlink(missing_ok=True)


def _rename_aside(path: Path) -> Path:
    """Move ``path`` (a file, a link or a directory) to ``<path>.rejected``, replacing an older
    one of that name."""
    rejected = path.with_name(path.name + REJECTED_SUFFIX)
    if rejected.is_dir() and not rejected.is_symlink():
        shutil.rmtree(rejected)
    else:
        rejected.unlink(missing_ok=True)
    os.replace(path, rejected)
    return rejected


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
