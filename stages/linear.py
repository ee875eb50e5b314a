"""linear: fit the linear member, a logistic regression on word n-grams, on the training split.

Reads params.yaml:linear, evaluate.threshold (both members are scored at the same threshold) and
the ingest stage's three splits. Writes the model as plain arrays (no pickle), its probabilities
for the validation and test splits (what the combine stage fits on) and its metrics.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from imdb_rnn import artifacts, cli
from imdb_rnn.evaluation import compute_metrics
from imdb_rnn.linear import fit_linear, write_linear
from imdb_rnn.params import EvaluateParams, LinearParams, load_section
from imdb_rnn.predictions import SCORED_SPLITS, write_predictions

log = logging.getLogger("stages.linear")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    for split in ("train", *SCORED_SPLITS):
        parser.add_argument(f"--{split}-reviews", type=Path, required=True, help="parquet input")
    parser.add_argument("--model", type=Path, required=True, help="where the .npz model goes")
    parser.add_argument("--predictions", type=Path, required=True, help="probabilities (.npz)")
    parser.add_argument("--metrics", type=Path, required=True, help="where metrics JSON goes")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    params = load_section("linear", LinearParams)
    threshold = load_section("evaluate", EvaluateParams).threshold
    reviews = {
        split: artifacts.read_reviews(getattr(args, f"{split}_reviews"))
        for split in ("train", *SCORED_SPLITS)
    }
    started = time.perf_counter()
    model = fit_linear(reviews["train"]["text"], reviews["train"]["label"].to_numpy(), params)
    seconds = time.perf_counter() - started
    log.info("fitted on %d n-grams in %.1f s", len(model.ngrams), seconds)
    probabilities, metrics = {}, {}
    for split in SCORED_SPLITS:
        probabilities[split] = model.probabilities(reviews[split]["text"])
        metrics[split] = compute_metrics(
            reviews[split]["label"].to_numpy(), probabilities[split], threshold
        )
        log.info("%s accuracy %.4f", split, metrics[split]["accuracy"])
    write_linear(model, args.model)
    write_predictions(probabilities, args.predictions)
    artifacts.write_json(metrics, args.metrics)
    return {"ngrams": len(model.ngrams), "fit_seconds": round(seconds, 1)}


if __name__ == "__main__":
    cli.run(main, "linear")
