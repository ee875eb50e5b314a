"""Benchmark the pipeline on the full dataset, and our training path against plain Keras.

Not part of the test suite: it takes about 20 minutes on a 2-core CPU. Two parts, both run by
default (``--skip-pipeline`` / ``--skip-recipe`` leave one out):

pipeline  Clones the committed HEAD into ``--workdir`` and runs ``dvc repro --force`` there from
          nothing, as a new user would (forcing every stage, so that all are timed). Each stage
          appends a machine-readable record of its wall time, peak memory and own figures
          (tokens per second, seconds per epoch...) to the file named by $IMDB_RNN_RECORD (see
          imdb_rnn.cli); this script reads those records, times the whole repro, compares the
          clone's test metrics with the committed reports/metrics/combined.json, checks whether
          dvc.lock and reports/ came out identical to the committed ones, and measures prediction
          throughput of the final model on the 25,000 test reviews.

recipe    Seed notebook 001's LSTM recipe (Embedding(10,000, 128) -> LSTM(64) -> Dense(1), reviews
          cut to 200 tokens, batch 128, Adam) twice in this one process, on the same arrays: as
          the notebook writes it in plain Keras, and through our build_classifier and
          fit_classifier with the DVCLive logger attached, as the train stage runs it. The runs
          alternate, and the first epoch of each (graph tracing) is left out of the timing.

Results go to ``--out`` as JSON and are printed as a table.

    HF_DATASETS_CACHE=$(realpath ../shared/hf/datasets) HF_HUB_OFFLINE=1 \\
        python benchmarks/benchmark.py --out benchmarks/results.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from imdb_rnn.cli import RECORD_ENV

REPOSITORY = Path(__file__).resolve().parents[1]


# Seed notebook 001 (../shared/seeds/001_*.txt), "Building and Training an LSTM Model".
RECIPE = {"vocab_size": 10_000, "max_length": 200, "dimension": 128, "units": 64, "batch_size": 128}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results.json"))
    parser.add_argument("--workdir", type=Path, help="where the clone goes (default: a temp dir)")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--skip-recipe", action="store_true")
    parser.add_argument(
        "--recipe-epochs", type=int, default=2, help="per run; the first is not timed"
    )
    parser.add_argument("--recipe-rounds", type=int, default=2, help="alternating plain/ours pairs")
    parser.add_argument(
        "--recipe-reviews", type=int, help="use only the first N training reviews (a smoke test)"
    )
    parser.add_argument(
        "--raw-dir",
        type=Path,
        help="ingested splits for the recipe (default: the clone's, else data/raw)",
    )
    return parser.parse_args(argv)


def machine() -> dict:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = re.findall(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = names[0] if names else platform.processor()
    import keras
    import tensorflow as tf

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "gpus": [gpu.name for gpu in tf.config.list_physical_devices("GPU")],
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "commit": git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def git(*args: str, cwd: Path = REPOSITORY) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


# --- pipeline -----------------------------------------------------------------------------------


def read_records(path: Path) -> dict:
    """Each stage's record (imdb_rnn.cli): wall time, peak memory and the figures it returned."""
    stages = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        stages[record.pop("command")] = record
    return stages


def run_pipeline_in_clone(workdir: Path) -> dict:
    clone = workdir / "clone"
    if clone.exists():
        shutil.rmtree(clone)
    subprocess.run(["git", "clone", "--quiet", str(REPOSITORY), str(clone)], check=True)
    # The stages' commands say `python`: make it this interpreter, with the project installed.
    records = workdir / "records.jsonl"
    records.unlink(missing_ok=True)
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        RECORD_ENV: str(records),
    }
    print(f"dvc repro in {clone} (about 15 minutes on 2 CPU cores) ...", flush=True)
    started = time.perf_counter()
    completed = subprocess.run(
        # --force: a clone whose train stage reproduces the committed model byte for byte would
        # otherwise skip the stages after it (their inputs match dvc.lock, their reports are
        # in git), and they would go untimed and unchecked.
        [sys.executable, "-m", "dvc", "repro", "--force"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    (workdir / "repro.log").write_text(completed.stdout + completed.stderr)
    if completed.returncode != 0:
        sys.exit(f"dvc repro failed in {clone}; see {workdir / 'repro.log'}")
    # Every output hash in dvc.lock and every report as committed: a bit-identical rerun.
    identical = not git("status", "--porcelain", "dvc.lock", "reports", cwd=clone)
    metrics = Path("reports/metrics/combined.json")
    reproduced = json.loads((clone / metrics).read_text())["test"]["accuracy"]
    committed = json.loads((REPOSITORY / metrics).read_text())["test"]["accuracy"]
    return {
        "repro_wall_s": round(seconds, 1),
        "stages": read_records(records),
        "test_accuracy": reproduced,
        "committed_test_accuracy": committed,
        "accuracy_difference": round(reproduced - committed, 4),
        "identical_to_committed": identical,
        "prediction": prediction_throughput(clone),
    }


def prediction_throughput(clone: Path) -> dict:
    """Reviews per second on the 25,000 test reviews through imdb-predict's path: raw text to the
    combined model's probability (tokenizing, both members and the combination included)."""
    from imdb_rnn import artifacts
    from imdb_rnn.serving import load_predictor

    predictor = load_predictor(clone / "models/predictor.json")
    texts = artifacts.read_reviews(clone / "data/raw/test.parquet")["text"].tolist()
    predictor.combined(predictor.member_probabilities(texts[:512]))  # warm-up

    started = time.perf_counter()
    predictor.combined(predictor.member_probabilities(texts))
    from_text = time.perf_counter() - started
    return {
        "reviews": len(texts),
        "batch_size": predictor.manifest.batch_size,
        "from_text_reviews_per_s": round(len(texts) / from_text),
    }


# --- recipe -------------------------------------------------------------------------------------


def recipe_arrays(raw_dir: Path) -> dict:
    """The seed's input: 10,000-word vocabulary, 200 tokens, padded and cut at the front."""
    from imdb_rnn import artifacts
    from imdb_rnn.encoding import Encoding, encode, pad_and_truncate
    from imdb_rnn.text import tokenize
    from imdb_rnn.vocabulary import build_vocabulary

    splits = {
        name: artifacts.read_reviews(raw_dir / f"{name}.parquet")
        for name in ("train", "validation")
    }
    tokens = {
        name: [tokenize(text) for text in reviews["text"]] for name, reviews in splits.items()
    }
    vocabulary = build_vocabulary(tokens["train"], RECIPE["vocab_size"], min_frequency=1)
    encoding = Encoding(max_length=RECIPE["max_length"], padding="pre", truncating="pre")
    return {
        name: (
            pad_and_truncate(encode(tokens[name], vocabulary), encoding),
            reviews["label"].to_numpy("int8"),
        )
        for name, reviews in splits.items()
    }


class EpochTimer:
    """A Keras callback factory recording each epoch's seconds, validation included."""

    @staticmethod
    def create():
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds: list[float] = []

            def on_epoch_begin(self, epoch, logs=None):
                self._started = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._started)

        return _Timer()


def plain_keras_epochs(arrays: dict, epochs: int) -> list[float]:
    """Seed 001's code path, in plain Keras."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(RECIPE["max_length"],)),
            keras.layers.Embedding(RECIPE["vocab_size"], RECIPE["dimension"]),
            keras.layers.LSTM(RECIPE["units"]),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    timer = EpochTimer.create()
    model.fit(
        *arrays["train"],
        validation_data=arrays["validation"],
        batch_size=RECIPE["batch_size"],
        epochs=epochs,
        callbacks=[timer],
        verbose=0,
    )
    return timer.seconds


def pipeline_epochs(arrays: dict, epochs: int, log_dir: Path) -> list[float]:
    """The same recipe as params, through the train stage's own functions and DVCLive logger."""
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    from imdb_rnn.embedding import random_embedding_matrix
    from imdb_rnn.model import build_classifier, compile_classifier, fit_classifier, seed_everything
    from imdb_rnn.params import PARAMS_FILE, TrainParams, load_section

    defaults = load_section("train", TrainParams, REPOSITORY / PARAMS_FILE).model_dump()
    recipe = copy.deepcopy(defaults) | {
        "model": "lstm",
        "bidirectional": False,
        "num_layers": 1,
        "units": RECIPE["units"],
        "dropout": 0.0,
        "recurrent_dropout": 0.0,
        "spatial_dropout": 0.0,
        "between_layer_dropout": 0.0,
        "pooling": "last",
        "head_dropout": 0.0,
        "dense_units": 0,
        "embedding_trainable": True,
        "mask_padding": False,  # the seed neither masks nor buckets
        "bucket_by_length": False,
        "optimizer": "adam",
        "learning_rate": 0.001,
        "weight_decay": 0.0,
        "batch_size": RECIPE["batch_size"],
        "epochs": epochs,
        # op determinism is process-wide and cannot be switched off again, so both runs go
        # without it (the seed does not ask for it)
        "deterministic": False,
    }
    recipe["early_stopping"]["patience"] = 0
    recipe["reduce_lr"]["patience"] = 0
    params = TrainParams.model_validate(recipe)
    seed_everything(0, params.deterministic)
    matrix = random_embedding_matrix(RECIPE["vocab_size"], RECIPE["dimension"], seed=0)
    model = compile_classifier(build_classifier(params, matrix), params)
    timer = EpochTimer.create()
    live = Live(str(log_dir), dvcyaml=False, save_dvc_exp=False, report=None)
    fit_classifier(
        model,
        params,
        arrays["train"],
        arrays["validation"],
        padding="pre",
        callbacks=[DVCLiveCallback(live=live), timer],
        verbose=0,
    )
    return timer.seconds


def compare_with_plain_keras(
    raw_dir: Path, epochs: int, rounds: int, workdir: Path, reviews: int | None
) -> dict:
    arrays = recipe_arrays(raw_dir)
    if reviews:
        arrays["train"] = tuple(array[:reviews] for array in arrays["train"])
    plain: list[float] = []
    ours: list[float] = []
    for round_number in range(rounds):
        print(f"recipe round {round_number + 1}/{rounds}: plain Keras, then ours ...", flush=True)
        plain += plain_keras_epochs(arrays, epochs)[1:]
        ours += pipeline_epochs(arrays, epochs, workdir / f"dvclive-{round_number}")[1:]
    return {
        "recipe": "seed 001: Embedding(10000, 128) -> LSTM(64) -> Dense(1), maxlen 200, batch 128",
        "train_reviews": len(arrays["train"][1]),
        "plain_keras_s_per_epoch": [round(seconds, 2) for seconds in plain],
        "pipeline_s_per_epoch": [round(seconds, 2) for seconds in ours],
        "ratio_pipeline_to_plain": round(statistics.median(ours) / statistics.median(plain), 3),
    }


# --- report -------------------------------------------------------------------------------------


def table(results: dict) -> str:
    rows = [("machine", f"{results['machine']['cpu']}, {results['machine']['cores']} cores")]
    pipeline = results.get("pipeline")
    if pipeline:
        for name, stage in pipeline["stages"].items():
            extra = ""
            if "tokens_per_second" in stage:
                extra = f", {stage['tokens_per_second']:,} tokens/s"
            if "seconds_per_epoch" in stage:
                extra = f", {stage['epochs']} epochs at {stage['seconds_per_epoch']} s/epoch"
            rows.append(
                (
                    f"stage {name}",
                    f"{stage['seconds']:.1f} s, peak {stage['peak_memory_mib']:,} MiB{extra}",
                )
            )
        rows.append(("dvc repro, fresh clone", f"{pipeline['repro_wall_s'] / 60:.1f} min"))
        rows.append(
            (
                "test accuracy",
                f"{pipeline['test_accuracy']:.4f} (committed"
                f" {pipeline['committed_test_accuracy']:.4f},"
                f" difference {pipeline['accuracy_difference']:+.4f})",
            )
        )
        rows.append(
            (
                "dvc.lock and reports/",
                "identical to the committed ones"
                if pipeline["identical_to_committed"]
                else "differ from the committed ones (git diff in the clone)",
            )
        )
        prediction = pipeline["prediction"]
        rows.append(
            ("prediction", f"{prediction['from_text_reviews_per_s']:,} reviews/s from raw text")
        )
    recipe = results.get("recipe")
    if recipe:
        rows.append(
            (
                "seed LSTM, plain Keras",
                f"{statistics.median(recipe['plain_keras_s_per_epoch']):.1f} s/epoch",
            )
        )
        rows.append(
            (
                "seed LSTM, our pipeline",
                f"{statistics.median(recipe['pipeline_s_per_epoch']):.1f} s/epoch",
            )
        )
        rows.append(("ratio ours / plain", f"{recipe['ratio_pipeline_to_plain']:.3f}"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="imdb-rnn-benchmark-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": machine()}
    if results["machine"]["uncommitted_changes"]:
        print("note: uncommitted changes are not benchmarked; the clone has HEAD only", flush=True)
    if not args.skip_pipeline:
        results["pipeline"] = run_pipeline_in_clone(workdir)
    if not args.skip_recipe:
        raw_dir = args.raw_dir or (
            workdir / "clone/data/raw" if not args.skip_pipeline else REPOSITORY / "data/raw"
        )
        results["recipe"] = compare_with_plain_keras(
            raw_dir, args.recipe_epochs, args.recipe_rounds, workdir, args.recipe_reviews
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
