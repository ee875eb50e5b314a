"""baseline: fit an n-gram logistic regression on the same splits, for comparison.

Reads params.yaml:baseline and <raw-dir>/{train,validation,test}.parquet. Writes the baseline's
validation and test metrics, scored exactly as the evaluate stage scores the recurrent model.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from imdb_rnn import artifacts, cli
from imdb_rnn.baseline import build_baseline, positive_probabilities
from imdb_rnn.data import SPLIT_NAMES
from imdb_rnn.evaluation import compute_metrics
from imdb_rnn.params import BaselineParams, EvaluateParams, load_section

log = logging.getLogger("stages.baseline")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--raw-dir", type=Path, required=True, help="the ingest stage's split files"
    )
    parser.add_argument("--metrics", type=Path, required=True, help="where metrics JSON goes")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_section("baseline", BaselineParams)
    # The recurrent model's decision threshold: both are scored the same way.
    threshold = load_section("evaluate", EvaluateParams).threshold
    splits = {
        name: artifacts.read_reviews(args.raw_dir / f"{name}.parquet") for name in SPLIT_NAMES
    }
    started = time.perf_counter()
    model = build_baseline(params).fit(splits["train"]["text"], splits["train"]["label"])
    features = len(model[0].vocabulary_)
    log.info("fitted on %d n-grams in %.1f s", features, time.perf_counter() - started)
    report = {"features": params.features, "ngram_features": features, "threshold": threshold}
    for name in ("validation", "test"):
        probabilities = positive_probabilities(model, splits[name]["text"])
        report[name] = compute_metrics(splits[name]["label"].to_numpy(), probabilities, threshold)
        log.info("%s accuracy %.4f", name, report[name]["accuracy"])
    artifacts.write_json(report, args.metrics)


if __name__ == "__main__":
    cli.run(main, "baseline")
