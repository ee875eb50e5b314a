"""train: fit the recurrent classifier on the training split, watching the validation split.

Reads params.yaml:train, the tokenized train/validation arrays, the tokenize stage's encoding
(which side the padding is on) and the embed stage's matrix. Writes the model in Keras' native
format and, through DVCLive, the per-epoch loss, accuracy and learning rate
(<log-dir>/plots/metrics/*) and their final values (<log-dir>/metrics.json).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from imdb_rnn import artifacts, cli
from imdb_rnn.errors import DataError
from imdb_rnn.params import TrainParams, load_section

log = logging.getLogger("stages.train")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="the tokenize stage's outputs")
    parser.add_argument("--matrix", type=Path, required=True, help="the embed stage's matrix")
    parser.add_argument("--model", type=Path, required=True, help="where the .keras model goes")
    parser.add_argument("--log-dir", type=Path, required=True, help="DVCLive's directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_section("train", TrainParams)
    train = artifacts.read_arrays(args.data_dir / "train.npz")
    validation = artifacts.read_arrays(args.data_dir / "validation.npz")
    embedding_matrix = artifacts.read_matrix(args.matrix)
    padding = artifacts.read_json(args.data_dir / "encoding.json")["padding"]
    largest_id = int(max(train["ids"].max(), validation["ids"].max()))
    if largest_id >= len(embedding_matrix):
        raise DataError(
            f"token id {largest_id} has no row in {args.matrix} ({len(embedding_matrix)} rows);"
            " the matrix is from another vocabulary, rerun the pipeline with dvc repro"
        )

    # Imported here so that a bad parameter or a missing file is reported before TensorFlow's
    # multi-second import.
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    from imdb_rnn.model import (
        build_classifier,
        compile_classifier,
        fit_classifier,
        seed_everything,
        uses_cudnn_kernels,
    )

    seed_everything(params.seed, params.deterministic)
    model = compile_classifier(build_classifier(params, embedding_matrix), params)
    model.summary(print_fn=log.info)
    if not uses_cudnn_kernels(params):
        log.info("these settings rule out the cuDNN kernels: a GPU will run the generic ones")

    # dvcyaml=False: dvc.yaml already declares these metrics and plots; save_dvc_exp=False: the
    # stage runs inside `dvc repro` or `dvc exp run`, which own the experiment.
    live = Live(str(args.log_dir), dvcyaml=False, save_dvc_exp=False)
    started = time.perf_counter()
    history, best = fit_classifier(
        model,
        params,
        (train["ids"], train["labels"]),
        (validation["ids"], validation["labels"]),
        padding,
        extra_callbacks=[DVCLiveCallback(live=live)],
        # A progress bar on a terminal; one line per epoch in a log, where a bar would print a
        # new line for every update.
        verbose=1 if sys.stdout.isatty() else 2,
    )
    seconds = time.perf_counter() - started
    epochs = len(history["loss"])
    log.info("trained %d epochs in %.0f s (%.1f s per epoch)", epochs, seconds, seconds / epochs)

    # DVCLive's summary holds the last epoch; early stopping may have restored an earlier one, so
    # record the validation scores of the weights actually saved.
    live.summary["saved_model"] = {
        "epoch": best + 1,
        "val_loss": history["val_loss"][best],
        "val_accuracy": history["val_accuracy"][best],
    }
    live.make_summary()
    artifacts.write_model(model, args.model)


if __name__ == "__main__":
    cli.run(main, "train")
