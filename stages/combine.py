"""combine: fit the combination of the members on the validation split and score it on test.

Reads params.yaml:combine and evaluate.threshold, each member's probabilities (rnn, linear), the
raw validation and test splits (labels, and the texts of the error analysis), and the member files
imdb-predict will load. Writes the combined model's metrics, the data of three test plots
(confusion matrix, ROC curve, precision-recall curve), the most confidently misclassified test
reviews, and models/predictor.json: everything imdb-predict needs to serve the combined model.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from imdb_rnn import artifacts, cli
from imdb_rnn.combination import fit_combiner
from imdb_rnn.errors import DataError
from imdb_rnn.evaluation import (
    compute_metrics,
    confusion_rows,
    most_confident_errors,
    precision_recall_points,
    roc_points,
)
from imdb_rnn.params import CombineParams, EvaluateParams, load_section
from imdb_rnn.predictions import SCORED_SPLITS, read_predictions
from imdb_rnn.predictor_file import MEMBERS, PredictorManifest, file_ref, write_manifest

log = logging.getLogger("stages.combine")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    for member in MEMBERS:
        parser.add_argument(f"--{member}-predictions", type=Path, required=True)
    for split in SCORED_SPLITS:
        parser.add_argument(f"--{split}-reviews", type=Path, required=True, help="parquet input")
    parser.add_argument("--rnn-model", type=Path, required=True)
    parser.add_argument("--vocabulary", type=Path, required=True)
    parser.add_argument("--encoding", type=Path, required=True)
    parser.add_argument("--linear-model", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--plots-dir", type=Path, required=True)
    parser.add_argument("--misclassified", type=Path, required=True, help="error analysis JSON")
    parser.add_argument("--predictor", type=Path, required=True, help="what imdb-predict serves")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_section("combine", CombineParams)
    evaluate = load_section("evaluate", EvaluateParams)
    reviews = {
        split: artifacts.read_reviews(getattr(args, f"{split}_reviews")) for split in SCORED_SPLITS
    }
    members = {
        member: read_predictions(getattr(args, f"{member}_predictions")) for member in MEMBERS
    }
    for member, predictions in members.items():
        for split in SCORED_SPLITS:
            if len(predictions[split]) != len(reviews[split]):
                raise DataError(
                    f"{getattr(args, f'{member}_predictions')} has {len(predictions[split])}"
                    f" {split} probabilities for {len(reviews[split])} reviews; the files come"
                    " from different runs, rerun dvc repro"
                )
    labels = {split: reviews[split]["label"].to_numpy() for split in SCORED_SPLITS}

    combiner = fit_combiner(
        {member: members[member]["validation"] for member in MEMBERS},
        labels["validation"],
        params.method,
        params.c,
    )
    log.info("weights %s, intercept %.4f", combiner.weights, combiner.intercept)
    probabilities = {
        split: combiner.probabilities({member: members[member][split] for member in MEMBERS})
        for split in SCORED_SPLITS
    }
    metrics = {
        split: compute_metrics(labels[split], probabilities[split], evaluate.threshold)
        for split in SCORED_SPLITS
    }
    for split in SCORED_SPLITS:
        log.info("%s: %s", split, ", ".join(f"{k} {v}" for k, v in metrics[split].items()))

    test_labels, test_probabilities = labels["test"], probabilities["test"]
    artifacts.write_json(metrics, args.metrics)
    artifacts.write_csv(
        confusion_rows(test_labels, test_probabilities, evaluate.threshold),
        args.plots_dir / "confusion_matrix.csv",
    )
    artifacts.write_csv(roc_points(test_labels, test_probabilities), args.plots_dir / "roc.csv")
    artifacts.write_csv(
        precision_recall_points(test_labels, test_probabilities),
        args.plots_dir / "precision_recall.csv",
    )
    errors = most_confident_errors(
        reviews["test"]["text"],
        test_labels,
        test_probabilities,
        evaluate.threshold,
        evaluate.misclassified_examples,
    )
    artifacts.write_json(errors, args.misclassified)
    write_manifest(
        PredictorManifest(
            threshold=evaluate.threshold,
            batch_size=evaluate.batch_size,
            weights=combiner.weights,
            intercept=combiner.intercept,
            rnn_model=file_ref(args.rnn_model, args.predictor),
            vocabulary=file_ref(args.vocabulary, args.predictor),
            encoding=file_ref(args.encoding, args.predictor),
            linear_model=file_ref(args.linear_model, args.predictor),
        ),
        args.predictor,
    )


if __name__ == "__main__":
    cli.run(main, "combine")
