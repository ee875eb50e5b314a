"""evaluate: score the trained model on the test split.

Reads params.yaml:evaluate, the model, the tokenized test arrays and the raw test reviews (for
error analysis). Writes the metrics (accuracy, precision, recall, F1, ROC-AUC, log loss), the data
of three plots (confusion matrix, ROC curve, precision-recall curve) and the most confidently
misclassified test reviews.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from imdb_rnn import artifacts, cli
from imdb_rnn.errors import DataError
from imdb_rnn.evaluation import (
    compute_metrics,
    confusion_rows,
    most_confident_errors,
    precision_recall_points,
    roc_points,
)
from imdb_rnn.params import EvaluateParams, load_section

log = logging.getLogger("stages.evaluate")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--test-ids", type=Path, required=True, help="tokenized test split (.npz)")
    parser.add_argument(
        "--encoding", type=Path, required=True, help="the tokenize stage's encoding.json"
    )
    parser.add_argument(
        "--test-reviews", type=Path, required=True, help="raw test split (.parquet)"
    )
    parser.add_argument("--metrics", type=Path, required=True, help="where metrics JSON goes")
    parser.add_argument("--plots-dir", type=Path, required=True)
    parser.add_argument("--misclassified", type=Path, required=True, help="error analysis JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_section("evaluate", EvaluateParams)
    test = artifacts.read_arrays(args.test_ids)
    reviews = artifacts.read_reviews(args.test_reviews)
    if len(reviews) != len(test["labels"]):
        raise DataError(
            f"{args.test_reviews} has {len(reviews)} reviews but {args.test_ids} has"
            f" {len(test['labels'])}; they come from different runs, rerun with dvc repro"
        )
    # Imported only now, so that bad parameters and missing files fail before TensorFlow loads.
    artifacts.existing(args.model)
    from imdb_rnn.model import predict_probabilities, read_classifier

    model = read_classifier(args.model)
    padding = artifacts.read_json(args.encoding)["padding"]
    probabilities = predict_probabilities(model, test["ids"], params.batch_size, padding)
    labels = test["labels"]

    scores = compute_metrics(labels, probabilities, params.threshold)
    log.info("test: %s", ", ".join(f"{name} {value:.4f}" for name, value in scores.items()))
    artifacts.write_json(
        {**scores, "threshold": params.threshold, "test_reviews": len(labels)}, args.metrics
    )
    artifacts.write_csv(
        confusion_rows(labels, probabilities, params.threshold),
        args.plots_dir / "confusion_matrix.csv",
    )
    artifacts.write_csv(roc_points(labels, probabilities), args.plots_dir / "roc.csv")
    artifacts.write_csv(
        precision_recall_points(labels, probabilities), args.plots_dir / "precision_recall.csv"
    )
    errors = most_confident_errors(
        reviews["text"], labels, probabilities, params.threshold, params.misclassified_examples
    )
    artifacts.write_json(errors, args.misclassified)


if __name__ == "__main__":
    cli.run(main, "evaluate")
