"""tokenize: build the vocabulary from the training split and encode every split as id matrices.

Reads params.yaml:tokenize and the ingest stage's three parquet splits. Writes, for each split, the
ids (int32 (reviews, max_length)) and labels (int8 (reviews,)) as .npy files that later stages can
memory-map; vocabulary.json; encoding.json (what imdb-predict needs to encode new text the same
way); the training corpus, the full untruncated token sequences that the embed stage learns from;
and a JSON report (vocabulary size, out-of-vocabulary rate and truncation per split).

Memory stays bounded by the vocabulary and one chunk of reviews, whatever the corpus size: the
training split is tokenized once, counted and written to the corpus file as it goes; the ids are
then written chunk by chunk into memory-mapped files.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import Counter
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from imdb_rnn import artifacts, cli
from imdb_rnn.encoding import (
    Encoding,
    EncodingStats,
    encode,
    pad_and_truncate,
    write_encoding,
)
from imdb_rnn.errors import DataError
from imdb_rnn.params import TokenizeParams, load_section
from imdb_rnn.text import tokenize
from imdb_rnn.vocabulary import Vocabulary, vocabulary_from_counts, write_vocabulary

log = logging.getLogger("stages.tokenize")

SPLITS = ("train", "validation", "test")
CHUNK_REVIEWS = 5_000  # reviews in memory at once


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    for split in SPLITS:
        parser.add_argument(f"--{split}-reviews", type=Path, required=True, help="parquet input")
        parser.add_argument(f"--{split}-ids", type=Path, required=True, help=".npy output")
        parser.add_argument(f"--{split}-labels", type=Path, required=True, help=".npy output")
    parser.add_argument("--vocabulary", type=Path, required=True)
    parser.add_argument("--encoding", type=Path, required=True)
    parser.add_argument(
        "--corpus", type=Path, required=True, help="training tokens, one review a line"
    )
    parser.add_argument("--report", type=Path, required=True, help="JSON: OOV rate, truncation")
    return parser.parse_args(argv)


def count_and_write_corpus(reviews: Path, corpus: Path, total: int) -> tuple[Counter[str], int]:
    """Tokenize the training reviews once: count every word and write each review's tokens as
    one line of the corpus file. Returns the counts and the number of tokens."""
    counts: Counter[str] = Counter()
    tokens_seen = 0
    progress = cli.ProgressLog("tokenized training reviews", total)
    done = 0
    with artifacts.text_writer(corpus) as stream:
        for chunk in artifacts.iter_reviews(reviews, CHUNK_REVIEWS):
            for text in chunk["text"]:
                tokens = tokenize(text)
                counts.update(tokens)
                tokens_seen += len(tokens)
                stream.write(" ".join(tokens) + "\n")
            done += len(chunk)
            progress.update(done)
    return counts, tokens_seen


def check_room_for(split: str, reviews: int, encoding: Encoding, output: Path) -> None:
    """Refuse an id matrix the disk, or a chunk of it the memory, could not hold, before any
    allocation fails with a traceback (as `tokenize.max_length: 1000000000` would)."""
    row_bytes = encoding.max_length * 4
    problems = []
    free_disk = artifacts.free_disk_bytes(output)
    if reviews * row_bytes > free_disk:
        problems.append(
            f"{reviews * row_bytes / 2**30:,.1f} GiB of disk ({free_disk / 2**30:,.1f} GiB free)"
        )
    free_memory = artifacts.available_memory_bytes()
    if free_memory is not None and min(reviews, CHUNK_REVIEWS) * row_bytes * 2 > free_memory:
        problems.append(f"more memory than the {free_memory / 2**30:,.1f} GiB available")
    if problems:
        raise DataError(
            f"the {split} id matrix ({reviews} reviews x tokenize.max_length"
            f" {encoding.max_length}) would need {' and '.join(problems)}; lower"
            " tokenize.max_length (IMDB's longest review has about 2,500 tokens)"
        )


def token_lists(split: str, reviews: Path, corpus: Path) -> Iterator[list[str]]:
    """Each review's tokens: read back from the corpus for the training split (tokenized once),
    tokenized afresh for the others."""
    if split == "train":
        yield from artifacts.iter_token_corpus(corpus)
        return
    for chunk in artifacts.iter_reviews(reviews, CHUNK_REVIEWS):
        for text in chunk["text"]:
            yield tokenize(text)


def write_split(
    args: argparse.Namespace, split: str, vocabulary: Vocabulary, encoding: Encoding
) -> dict[str, float]:
    """Encode one split into its ids and labels files, a chunk at a time; return its report."""
    reviews_path = getattr(args, f"{split}_reviews")
    rows = artifacts.review_count(reviews_path)
    check_room_for(split, rows, encoding, getattr(args, f"{split}_ids"))
    stats = EncodingStats(encoding.max_length)
    tokens = token_lists(split, reviews_path, args.corpus)
    with (
        artifacts.array_writer(
            getattr(args, f"{split}_ids"), (rows, encoding.max_length), "int32"
        ) as ids,
        artifacts.array_writer(getattr(args, f"{split}_labels"), (rows,), "int8") as labels,
    ):
        start = 0
        for chunk in artifacts.iter_reviews(reviews_path, CHUNK_REVIEWS):
            chunk_ids = encode(islice(tokens, len(chunk)), vocabulary)
            stats.add(chunk_ids)
            end = start + len(chunk)
            ids[start:end] = pad_and_truncate(chunk_ids, encoding)
            labels[start:end] = chunk["label"].to_numpy("int8")
            start = end
    return stats.report()


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    params = load_section("tokenize", TokenizeParams)
    encoding = Encoding(
        max_length=params.max_length, padding=params.padding, truncating=params.truncating
    )
    train_rows = artifacts.review_count(args.train_reviews)

    started = time.perf_counter()
    counts, total = count_and_write_corpus(args.train_reviews, args.corpus, train_rows)
    seconds = time.perf_counter() - started
    log.info(
        "tokenized %d training tokens in %.1f s (%.0f tokens/s)", total, seconds, total / seconds
    )

    vocabulary = vocabulary_from_counts(counts, params.vocab_size, params.min_frequency)
    del counts
    log.info("vocabulary: %d ids (cap %d)", len(vocabulary), params.vocab_size)
    report: dict[str, object] = {"vocabulary_ids": len(vocabulary)}
    for split in SPLITS:
        report[split] = write_split(args, split, vocabulary, encoding)
    write_vocabulary(vocabulary, args.vocabulary)
    write_encoding(encoding, args.encoding)
    artifacts.write_json(report, args.report)
    return {"training_tokens": total, "tokens_per_second": round(total / seconds)}


if __name__ == "__main__":
    cli.run(main, "tokenize")
