"""train: fit the recurrent classifier on the training split, watching the validation split.

Reads params.yaml:train, the tokenized train/validation ids and labels (memory-mapped), the
vocabulary and encoding they were made with, and the embed stage's matrix. Writes the model in
Keras' native format (recording the vocabulary and encoding it must be used with) and, through
DVCLive, the per-epoch loss, accuracy and learning rate (<log-dir>/plots/metrics/*) and their
final values (<log-dir>/metrics.json).

Resumable: after every epoch the full training state goes to --state-dir (or $IMDB_RNN_STATE_DIR),
so a run that is killed continues from its last completed epoch when started again, and ends with
the same bytes as a run that was never interrupted (see imdb_rnn.resume).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from imdb_rnn import artifacts, cli
from imdb_rnn.cluster import cluster_formed, read_cluster
from imdb_rnn.encoding import Encoding, check_id_split, read_encoding
from imdb_rnn.errors import DataError
from imdb_rnn.params import TrainParams, load_section
from imdb_rnn.vocabulary import Vocabulary, read_vocabulary

log = logging.getLogger("stages.train")

# Overrides --state-dir: e.g. an absolute directory that queued experiments, which run in
# temporary copies of the project, can resume from.
STATE_DIR_ENV = "IMDB_RNN_STATE_DIR"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    for split in ("train", "validation"):
        parser.add_argument(f"--{split}-ids", type=Path, required=True)
        parser.add_argument(f"--{split}-labels", type=Path, required=True)
    parser.add_argument("--vocabulary", type=Path, required=True)
    parser.add_argument("--encoding", type=Path, required=True)
    parser.add_argument("--matrix", type=Path, required=True, help="the embed stage's matrix")
    parser.add_argument("--model", type=Path, required=True, help="where the .keras model goes")
    parser.add_argument("--log-dir", type=Path, required=True, help="DVCLive's directory")
    parser.add_argument(
        "--state-dir", type=Path, required=True, help="training state kept between epochs"
    )
    parser.add_argument(
        "--environment", type=Path, required=True, help="JSON: machine, kernels, versions"
    )
    return parser.parse_args(argv)


def input_files(args: argparse.Namespace) -> dict[str, Path]:
    paths = (
        args.train_ids,
        args.train_labels,
        args.validation_ids,
        args.validation_labels,
        args.vocabulary,
        args.encoding,
        args.matrix,
    )
    return {str(path): path for path in paths}


@dataclass(frozen=True)
class TrainingInputs:
    vocabulary: Vocabulary
    encoding: Encoding
    train: tuple[np.ndarray, np.ndarray]  # ids (memory-mapped), labels
    validation: tuple[np.ndarray, np.ndarray]
    matrix: np.ndarray


def read_inputs(args: argparse.Namespace) -> TrainingInputs:
    """Every input, checked to belong together, before TensorFlow is imported."""
    inputs = TrainingInputs(
        vocabulary=read_vocabulary(args.vocabulary),
        encoding=read_encoding(args.encoding),
        train=(
            artifacts.read_array(args.train_ids, memory_map=True),
            artifacts.read_array(args.train_labels),
        ),
        validation=(
            artifacts.read_array(args.validation_ids, memory_map=True),
            artifacts.read_array(args.validation_labels),
        ),
        matrix=artifacts.read_array(args.matrix),
    )
    if inputs.matrix.ndim != 2 or len(inputs.matrix) != len(inputs.vocabulary):
        raise DataError(
            f"{args.matrix} {inputs.matrix.shape} does not have one row per id of"
            f" {args.vocabulary} ({len(inputs.vocabulary)} ids); they come from different runs,"
            " rerun dvc repro"
        )
    check_id_split(*inputs.train, len(inputs.vocabulary), args.train_ids, args.train_labels)
    check_id_split(
        *inputs.validation, len(inputs.vocabulary), args.validation_ids, args.validation_labels
    )
    return inputs


def replace_directory(source: Path, target: Path) -> None:
    """Move a finished directory into place, replacing whatever was there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    os.replace(source, target)


def agreed_state(strategy, saved):
    """``saved`` if every worker resumes from the same epoch, else None. With several workers,
    all must, or their steps no longer pair up; a worker killed while saving can be an epoch
    behind the others."""
    from imdb_rnn.distribution import all_workers_agree

    if all_workers_agree(strategy, saved.epochs_done if saved else -1):
        return saved
    log.info("starting from scratch: the workers' saved states are of different epochs")
    return None


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    params = load_section("train", TrainParams)
    # Before TensorFlow's import: TensorFlow answers a TF_CONFIG it cannot use with a traceback.
    multi_worker = params.distribution == "multi_worker"
    cluster = read_cluster(os.environ.get("TF_CONFIG")) if multi_worker else None
    inputs = read_inputs(args)

    # Imported here so that a bad parameter or a missing file is reported before TensorFlow's
    # multi-second import.
    import keras
    import tensorflow as tf
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    from imdb_rnn import resume
    from imdb_rnn.distribution import distribution_strategy
    from imdb_rnn.environment import describe_environment
    from imdb_rnn.model import (
        build_classifier,
        compile_classifier,
        fit_classifier,
        saved_epoch,
        seed_everything,
        training_callbacks,
        uses_cudnn_kernels,
    )
    from imdb_rnn.model_file import training_record, write_model
    from imdb_rnn.numerics import numerics_settings

    run_fingerprint = resume.fingerprint(
        {
            # how long workers wait for each other cannot change the model
            "params": params.model_dump(exclude={"peer_timeout_seconds"}),
            "numerics": numerics_settings(),
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                         "numpy": np.__version__, "python": sys.version.split()[0]},
        },
        input_files(args) | resume.loaded_code(PROJECT_ROOT),
    )  # fmt: skip
    shared = os.environ.get(STATE_DIR_ENV)
    state_dir = resume.StateDirectory(
        Path(shared or args.state_dir), run_fingerprint, shared=bool(shared)
    )
    state_dir.lock(args.model)
    saved = state_dir.load(params.epochs)
    # TensorFlow alone would wait for a missing worker for ever, deaf to signals.
    with cluster_formed(cluster, params.peer_timeout_seconds):
        strategy = distribution_strategy(params.distribution)
    scope = strategy.scope if strategy else contextlib.nullcontext
    saved = agreed_state(strategy, saved)

    seed_everything(params.seed, params.deterministic)
    with scope():
        model = compile_classifier(build_classifier(params, inputs.matrix), params)
        # Checking the state against the model builds the optimizer, whose variables several
        # workers create together: so only after they agreed that all of them, or none, resume.
        if saved is not None:
            saved = state_dir.fits(saved, model)
    saved = agreed_state(strategy, saved)  # again: a worker may have set its state aside
    if saved is not None:
        with scope():
            resume.restore_variables(model, saved)
    model.summary(print_fn=log.info)
    if not uses_cudnn_kernels(params):
        log.info("these settings rule out the cuDNN kernels: a GPU will run the generic ones")
    if saved is not None:
        log.info(
            "%s (saved %s)",
            resume.resume_message(saved, params.epochs),
            datetime.fromtimestamp(saved.saved_at).strftime("%H:%M"),
        )

    schedule = training_callbacks(params)
    # DVCLive writes into a hidden directory beside --log-dir (same file system, so the final move
    # is a rename) and its files move into --log-dir only when training succeeds: a failed or
    # killed run leaves no half-written curves, and a resumed one replays the saved history.
    # dvcyaml=False: dvc.yaml already declares these; save_dvc_exp=False: `dvc repro` and
    # `dvc exp run` own the experiment.
    live_dir = args.log_dir.parent / f".{args.log_dir.name}.live"
    if live_dir.exists():
        shutil.rmtree(live_dir)
    live = Live(str(live_dir), dvcyaml=False, save_dvc_exp=False)
    logger = DVCLiveCallback(live=live)
    for epoch, logs in enumerate(saved.history if saved else []):
        logger.on_epoch_end(epoch, dict(logs))  # replay: every step once, in order
    checkpoint = resume.Checkpoint(state_dir.path, run_fingerprint, schedule, saved)
    first_epoch = saved.epochs_done if saved else 0
    started = time.perf_counter()
    fit_classifier(
        model,
        params,
        inputs.train,
        inputs.validation,
        inputs.encoding.padding,
        callbacks=[*schedule, logger, checkpoint],
        initial_epoch=first_epoch,
        # early stopping may already have ended the run before it was killed
        final_epoch=first_epoch if saved and saved.stop_training else params.epochs,
        # A progress bar on a terminal; one line per epoch in a log.
        verbose=1 if sys.stdout.isatty() else 2,
    )
    seconds = time.perf_counter() - started
    history = checkpoint.history
    epochs_run = len(history) - first_epoch
    per_epoch = seconds / epochs_run if epochs_run else 0.0
    log.info("trained %d epochs in %.0f s (%.1f s per epoch)", epochs_run, seconds, per_epoch)
    save_seconds = sum(checkpoint.save_seconds) / max(len(checkpoint.save_seconds), 1)
    if checkpoint.save_seconds:
        log.info(
            "saving the training state took %.2f s per epoch (%.1f%% of an epoch)",
            save_seconds,
            100 * save_seconds / per_epoch if per_epoch else 0,
        )
    # DVCLive's summary holds the last epoch; early stopping may have restored an earlier one, so
    # record the validation scores of the weights actually saved.
    best = saved_epoch(schedule, epochs_done=len(history))
    live.summary["saved_model"] = {
        "epoch": best + 1,
        "val_loss": history[best]["val_loss"],
        "val_accuracy": history[best]["val_accuracy"],
    }
    live.make_summary()
    write_model(model, args.model, training_record(inputs.vocabulary, inputs.encoding))
    replace_directory(live_dir, args.log_dir)
    artifacts.write_json(describe_environment(), args.environment)
    state_dir.remove()
    return {
        "epochs": epochs_run,
        "seconds_per_epoch": round(per_epoch, 2),
        "state_save_seconds": round(save_seconds, 3),
    }


if __name__ == "__main__":
    cli.run(main, "train")
