"""ingest: load labelled reviews, split them, and write one parquet file per split.

Reads params.yaml:ingest. Writes one parquet file per split (columns text, label), one of
unlabelled reviews (column text; no rows with ingest.unlabelled false), and a JSON report of rows,
label balance and review lengths per split, and of the unlabelled reviews kept and dropped.

Memory does not grow with the corpus: the source is read a chunk at a time, cleaned, and appended
to a scratch Arrow file beside the outputs; the splits are drawn from the labels alone; then each
split's reviews are gathered from the memory-mapped scratch file a chunk at a time and written.
The unlabelled reviews are streamed from their source to a scratch file, less the copies of
validation and test reviews (imdb_rnn.unlabelled), before any split is written, and copied to
their output last: a bad file of unlabelled reviews, like a bad source, stops the stage before it
writes anything, not even a directory.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from imdb_rnn import artifacts, cli
from imdb_rnn.data import (
    SPLIT_NAMES,
    ReviewCleaner,
    Splits,
    make_splits,
    summarize_splits,
    word_counts,
)
from imdb_rnn.params import IngestParams, load_section
from imdb_rnn.sources import REVIEWS_PER_CHUNK, Chunks, load_reviews, load_unlabelled
from imdb_rnn.unlabelled import DIGEST, UnlabelledSelector, summarize_unlabelled, text_digests

log = logging.getLogger("stages.ingest")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    for split in SPLIT_NAMES:
        parser.add_argument(
            f"--{split}", type=Path, required=True, help=f"the {split} parquet file"
        )
    parser.add_argument(
        "--unlabelled", type=Path, required=True, help="the unlabelled parquet file (text only)"
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


def describe_unlabelled(params: IngestParams) -> str:
    """How error messages name the source of the unlabelled reviews."""
    if params.unlabelled_path is not None:
        return params.unlabelled_path
    if params.source == "huggingface":
        return f"Hugging Face dataset {params.dataset}, split unsupervised"
    return f"local source {params.source}, unsupervised files"


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


def scored_digests(store: artifacts.ReviewStore, splits: Splits) -> np.ndarray:
    """The digests of the validation and test reviews, read from ``store`` as they will be
    written: the texts no unsupervised learner may see."""
    digests = [np.empty(0, dtype=DIGEST)]
    for rows in (splits.validation, splits.test):
        for start in range(0, len(rows), REVIEWS_PER_CHUNK):
            reviews = store.take(rows[start : start + REVIEWS_PER_CHUNK])
            digests.append(text_digests(reviews["text"]))
    return np.concatenate(digests)


def write_unlabelled(chunks: Chunks, selector: UnlabelledSelector, path: Path) -> dict:
    """Write the texts ``selector`` keeps, a chunk at a time; return their summary. The file
    appears only if the whole input is good."""
    lengths = [np.empty(0, dtype=np.int64)]
    with artifacts.texts_writer(path) as write:
        for chunk in chunks:
            texts = selector.select(chunk["text"])
            if len(texts):
                write(texts)
                lengths.append(word_counts(texts))
            if selector.full:
                break
        selector.finish()
    summary = summarize_unlabelled(selector, np.concatenate(lengths))
    log.info(
        "unlabelled: %(rows)d reviews; dropped %(dropped_copies_of_validation_or_test)d copies of"
        " validation or test reviews, %(dropped_repeats)d repeats, %(dropped_empty)d empty",
        summary,
    )
    return summary


def write_no_unlabelled(path: Path) -> dict:
    """For ingest.unlabelled false: a file of no rows but the same column, so that the stage's
    outputs stay those dvc.yaml names; and the summary that says so."""
    with artifacts.texts_writer(path):
        pass
    log.info("unlabelled: none written (ingest.unlabelled is false)")
    return summarize_unlabelled(None, np.empty(0, dtype=np.int64))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_section("ingest", IngestParams)
    origin = describe_source(params)
    # First: a source without unlabelled reviews (Keras, a single file) says so before any load.
    unlabelled = (
        load_unlabelled(params.source, params.dataset, params.revision, params.unlabelled_path)
        if params.unlabelled
        else None
    )
    log.info("loading %s", origin)
    sources = load_reviews(params.source, params.dataset, params.revision)
    # A killed run's scratch (a copy of the whole corpus) is removed by the next run.
    with artifacts.scratch_beside_outputs(args.train, "ingest") as scratch:
        store = artifacts.ReviewStore(Path(scratch) / "reviews.arrow")
        source_labels, dropped_empty = store_clean_reviews(sources, origin, store)
        labels = np.concatenate(list(source_labels.values()))
        splits = make_splits(source_labels, params, origin)
        unlabelled_file = Path(scratch) / "unlabelled.parquet"
        if unlabelled is None:
            unlabelled_summary = write_no_unlabelled(unlabelled_file)
        else:
            selector = UnlabelledSelector(
                describe_unlabelled(params),
                scored_digests(store, splits),
                params.max_reviews_per_split,
            )
            unlabelled_summary = write_unlabelled(unlabelled, selector, unlabelled_file)
        lengths = {}
        for name, rows in splits.items():
            lengths[name] = write_split(store, rows, getattr(args, name))
            log.info("%s: %d reviews", name, len(rows))
        artifacts.copy_file(unlabelled_file, args.unlabelled)
    if any(dropped_empty.values()):
        log.info("dropped empty or whitespace-only reviews per source split: %s", dropped_empty)
    split_labels = {name: labels[rows] for name, rows in splits.items()}
    summary = summarize_splits(split_labels, lengths, dropped_empty)
    artifacts.write_json(summary | {"unlabelled": unlabelled_summary}, args.report)


if __name__ == "__main__":
    cli.run(main, "ingest")
