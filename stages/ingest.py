"""ingest: load labelled reviews, split them, and write one parquet file per split.

Reads params.yaml:ingest. Writes one parquet file per split (columns text, label) and a JSON report
of rows, label balance and review lengths per split.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from imdb_rnn import artifacts, cli
from imdb_rnn.data import SPLIT_NAMES, make_splits, summarize_splits
from imdb_rnn.params import IngestParams, load_section
from imdb_rnn.sources import load_reviews

log = logging.getLogger("stages.ingest")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    for split in SPLIT_NAMES:
        parser.add_argument(
            f"--{split}", type=Path, required=True, help=f"the {split} parquet file"
        )
    parser.add_argument("--report", type=Path, required=True, help="JSON summary of the splits")
    return parser.parse_args(argv)


def describe_source(params: IngestParams) -> str:
    """How error messages and logs name the source."""
    if params.source == "huggingface":
        return f"Hugging Face dataset {params.dataset}"
    if params.source == "keras":
        return "Keras IMDB"
    return f"local source {params.source}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_section("ingest", IngestParams)
    origin = describe_source(params)
    log.info("loading %s", origin)
    raw_reviews = load_reviews(params.source, params.dataset, params.revision)
    splits, dropped_empty = make_splits(raw_reviews, params, origin)
    for name, reviews in splits.items():
        artifacts.write_reviews(reviews, getattr(args, name))
        log.info("%s: %d reviews", name, len(reviews))
    if any(dropped_empty.values()):
        log.info("dropped empty or whitespace-only reviews per source split: %s", dropped_empty)
    artifacts.write_json(summarize_splits(splits, dropped_empty), args.report)


if __name__ == "__main__":
    cli.run(main, "ingest")
