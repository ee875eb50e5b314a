"""evaluate: score the trained recurrent model on the validation and test splits.

Reads params.yaml:evaluate, the model, the vocabulary and encoding it must have been trained with
(checked against the record in the model file), and the tokenized validation and test splits.
Writes the model's probabilities for both splits (what the combine stage fits on) and its metrics
(accuracy, precision, recall, F1, ROC-AUC, log loss per split).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from imdb_rnn import artifacts, cli
from imdb_rnn.encoding import check_id_split, read_encoding
from imdb_rnn.evaluation import compute_metrics
from imdb_rnn.model_file import check_belongs_together
from imdb_rnn.params import EvaluateParams, load_section
from imdb_rnn.predictions import SCORED_SPLITS, write_predictions
from imdb_rnn.vocabulary import read_vocabulary

log = logging.getLogger("stages.evaluate")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--vocabulary", type=Path, required=True)
    parser.add_argument("--encoding", type=Path, required=True)
    for split in SCORED_SPLITS:
        parser.add_argument(f"--{split}-ids", type=Path, required=True)
        parser.add_argument(f"--{split}-labels", type=Path, required=True)
    parser.add_argument("--predictions", type=Path, required=True, help="probabilities (.npz)")
    parser.add_argument("--metrics", type=Path, required=True, help="where metrics JSON goes")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_section("evaluate", EvaluateParams)
    vocabulary = read_vocabulary(args.vocabulary)
    encoding = read_encoding(args.encoding)
    check_belongs_together(args.model, vocabulary, args.vocabulary, encoding, args.encoding)
    splits = {}
    for split in SCORED_SPLITS:
        ids_path, labels_path = getattr(args, f"{split}_ids"), getattr(args, f"{split}_labels")
        ids = artifacts.read_array(ids_path, memory_map=True)
        labels = artifacts.read_array(labels_path)
        check_id_split(ids, labels, len(vocabulary), ids_path, labels_path)
        splits[split] = (ids, labels)

    # Imported only now, so that bad parameters and missing files fail before TensorFlow loads.
    from imdb_rnn.model import predict_probabilities
    from imdb_rnn.model_file import read_classifier

    model = read_classifier(args.model)
    probabilities, metrics = {}, {}
    for split, (ids, labels) in splits.items():
        probabilities[split] = predict_probabilities(
            model, ids, params.batch_size, encoding.padding
        )
        metrics[split] = compute_metrics(labels, probabilities[split], params.threshold)
        log.info(
            "%s: %s", split, ", ".join(f"{name} {value}" for name, value in metrics[split].items())
        )
    write_predictions(probabilities, args.predictions)
    artifacts.write_json(metrics, args.metrics)


if __name__ == "__main__":
    cli.run(main, "evaluate")
