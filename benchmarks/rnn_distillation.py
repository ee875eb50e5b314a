"""The combined model distilled into the recurrent member through the unlabelled reviews, measured.

Not part of the test suite, and not a stage: an experiment of issue 20, kept so that its rows of
docs/results.md can be rerun. Reads a full `dvc repro`'s outputs: the tokenized splits with their
vocabulary and encoding, the Word2Vec matrix, the unlabelled reviews of data/raw/, the final model
(models/predictor.json, through imdb_rnn.serving, as imdb-predict loads it) and the members'
probabilities.

The teacher is the pipeline's combined model (recurrent + linear member, stacked): its P(positive)
for each unlabelled review is that review's soft label. A new recurrent member, built from
params.yaml's `train` section and initialised from the same Word2Vec matrix, is trained as the
train stage trains (same callbacks, length-bucketed batches, early stopping on validation loss)
on the training reviews with their labels plus the unlabelled reviews with the teacher's: three
times the text per epoch. A student of a linear teacher learned nothing the stack lacked
(benchmarks/unlabelled_members.py); a recurrent student might, as it sees the linear member's
knowledge through its own features. It is scored alone and stacked on validation with the
existing members; test accuracy is reported beside, never used to choose.

    python benchmarks/rnn_distillation.py --out benchmarks/rnn_distillation.json [--sharpen 2]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from imdb_rnn.numerics import pin_kernels

pin_kernels()  # before NumPy and TensorFlow load, as every stage does

import numpy as np  # noqa: E402
from lm_pretraining import (  # noqa: E402
    append_result,
    read_inputs,
    train_params,
    trained_and_scored,
)

from imdb_rnn.model import build_classifier, seed_everything  # noqa: E402
from imdb_rnn.serving import load_predictor  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
TEACHER_CHUNK = 5_000  # reviews the teacher scores at once (bounded memory)
log = logging.getLogger("rnn_distillation")


def teacher_labels(texts: list[str], sharpen: float) -> np.ndarray:
    """The final model's P(positive) per review; ``sharpen`` > 1 scales its log-odds."""
    predictor = load_predictor(REPOSITORY / "models/predictor.json")
    probabilities = np.concatenate(
        [
            predictor.combined(predictor.member_probabilities(texts[start : start + TEACHER_CHUNK]))
            for start in range(0, len(texts), TEACHER_CHUNK)
        ]
    )
    log_odds = np.log(probabilities) - np.log1p(-probabilities)
    return (1 / (1 + np.exp(-sharpen * log_odds))).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to append the row to")
    parser.add_argument("--sharpen", type=float, default=1.0, help="teacher's log-odds scale")
    parser.add_argument("--learning-rate", type=float, help="student's (default: params.yaml)")
    parser.add_argument("--reviews", type=int, help="only the first N of each split (a smoke run)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    started = time.monotonic()

    params, first = train_params(args.learning_rate), slice(args.reviews)
    inputs = read_inputs(first)
    ids, labels = inputs.ids, inputs.labels
    soft_labels = teacher_labels(inputs.unlabelled_texts, args.sharpen)
    teacher_seconds = time.monotonic() - started

    seed_everything(params.seed, params.deterministic)
    student = build_classifier(params, np.load(REPOSITORY / "data/embedding/matrix.npy"))
    accuracies, stacked, training = trained_and_scored(
        student,
        params,
        (
            np.concatenate([ids["train"], inputs.unlabelled_ids]),
            np.concatenate([labels["train"].astype(np.float32), soft_labels]),
        ),
        inputs,
        first,
        "distilled_rnn",
    )
    row = {
        "settings": {k: str(v) for k, v in vars(args).items() if k != "out"},
        "learning_rate": params.learning_rate,
        "teacher_confident_share": float(np.mean(np.abs(soft_labels - 0.5) > 0.4)),
        "distilled_rnn": accuracies,
        "stacked": stacked,
        "training": training,
        "teacher_seconds": round(teacher_seconds),
    }
    append_result(args.out, row, started, inputs, log)


if __name__ == "__main__":
    main()
