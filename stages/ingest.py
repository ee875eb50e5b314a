"""ingest: load labelled reviews, split them, and write one parquet file per split.

Reads params.yaml:ingest. Writes one parquet file per split (columns text, label) and a JSON report
of rows, label balance and review lengths per split.

Memory does not grow with the corpus: the source is read a chunk at a time, cleaned, and appended
to a scratch Arrow file beside the outputs; the splits are drawn from the labels alone; then each
split's reviews are gathered from the memory-mapped scratch file a chunk at a time and written.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from imdb_rnn import artifacts, cli
from imdb_rnn.data import SPLIT_NAMES, ReviewCleaner, make_splits, summarize_splits, word_counts
from imdb_rnn.params import IngestParams, load_section
from imdb_rnn.sources import REVIEWS_PER_CHUNK, Chunks, load_reviews

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


def store_clean_reviews(
    sources: Mapping[str, Chunks], origin: str, store: artifacts.ReviewStore
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Clean every source split into ``store``, end to end in the source's order; return each
    source split's labels and its count of empty reviews dropped."""
    labels: dict[str, np.ndarray] = {}
    dropped_empty: dict[str, int] = {}
    with store.appender() as append:
        for name, chunks in sources.items():
            cleaner = ReviewCleaner(f"{origin}, split {name}")
            parts = []
            for chunk in chunks:
                clean = cleaner.clean(chunk)
                append(clean)
                parts.append(clean["label"].to_numpy())
            cleaner.finish()
            labels[name] = np.concatenate(parts)
            dropped_empty[name] = cleaner.dropped_empty
    return labels, dropped_empty


def write_split(store: artifacts.ReviewStore, rows: np.ndarray, path: Path) -> np.ndarray:
    """Gather the reviews at ``rows`` into a parquet file; return their lengths in words."""
    lengths = []
    with artifacts.reviews_writer(path) as write:
        for start in range(0, len(rows), REVIEWS_PER_CHUNK):
            reviews = store.take(rows[start : start + REVIEWS_PER_CHUNK])
            write(reviews)
            lengths.append(word_counts(reviews["text"]))
    return np.concatenate(lengths)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_section("ingest", IngestParams)
    origin = describe_source(params)
    log.info("loading %s", origin)
    sources = load_reviews(params.source, params.dataset, params.revision)
    # Beside the outputs, not in /tmp: /tmp is often memory (tmpfs), which would defeat the point.
    # In the nearest existing directory, so that a failure creates no directory either; a killed
    # run's scratch (a copy of the whole corpus) is removed by the next.
    output_dir = args.train.parent
    nearest = next(path for path in (output_dir, *output_dir.parents) if path.is_dir())
    with artifacts.scratch_directory(nearest / "ingest") as scratch:
        store = artifacts.ReviewStore(Path(scratch) / "reviews.arrow")
        source_labels, dropped_empty = store_clean_reviews(sources, origin, store)
        labels = np.concatenate(list(source_labels.values()))
        splits = make_splits(source_labels, params, origin)
        lengths = {}
        for name, rows in splits.items():
            lengths[name] = write_split(store, rows, getattr(args, name))
            log.info("%s: %d reviews", name, len(rows))
    if any(dropped_empty.values()):
        log.info("dropped empty or whitespace-only reviews per source split: %s", dropped_empty)
    split_labels = {name: labels[rows] for name, rows in splits.items()}
    artifacts.write_json(summarize_splits(split_labels, lengths, dropped_empty), args.report)


if __name__ == "__main__":
    cli.run(main, "ingest")
