"""tokenize: build the vocabulary from the training split and encode every split as id matrices.

Reads params.yaml:tokenize and <raw-dir>/{train,validation,test}.parquet. Writes, under <out-dir>:
{train,validation,test}.npz (``ids`` int32 (reviews, max_length), ``labels`` int8 (reviews,)),
vocabulary.json, encoding.json (what imdb-predict needs to encode new text the same way), and
train_tokens.txt, the full untruncated training token sequences that the embed stage learns from.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from imdb_rnn import artifacts, cli
from imdb_rnn.data import SPLIT_NAMES
from imdb_rnn.params import TokenizeParams, load_section
from imdb_rnn.text import build_vocabulary, describe_encoding, encode, pad_and_truncate, tokenize

log = logging.getLogger("stages.tokenize")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--raw-dir", type=Path, required=True, help="the ingest stage's split files"
    )
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True, help="JSON: OOV rate, truncation")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_section("tokenize", TokenizeParams)
    raw_reviews = {
        name: artifacts.read_reviews(args.raw_dir / f"{name}.parquet") for name in SPLIT_NAMES
    }

    started = time.perf_counter()
    tokens = {
        name: [tokenize(text) for text in reviews["text"]] for name, reviews in raw_reviews.items()
    }
    seconds = time.perf_counter() - started
    total = sum(len(review) for split in tokens.values() for review in split)
    log.info("tokenized %d tokens in %.1f s (%.0f tokens/s)", total, seconds, total / seconds)

    vocabulary = build_vocabulary(tokens["train"], params.vocab_size, params.min_frequency)
    log.info("vocabulary: %d ids (cap %d)", len(vocabulary), params.vocab_size)
    report: dict[str, object] = {"vocabulary_ids": len(vocabulary)}
    for name in SPLIT_NAMES:
        token_ids = encode(tokens[name], vocabulary)
        padded_ids = pad_and_truncate(
            token_ids, params.max_length, params.padding, params.truncating
        )
        labels = raw_reviews[name]["label"].to_numpy("int8")
        artifacts.write_arrays(args.out_dir / f"{name}.npz", ids=padded_ids, labels=labels)
        report[name] = describe_encoding(token_ids, params.max_length)

    artifacts.write_vocabulary(vocabulary, args.out_dir / "vocabulary.json")
    encoding = {key: getattr(params, key) for key in ("max_length", "padding", "truncating")}
    artifacts.write_json(encoding, args.out_dir / "encoding.json")
    artifacts.write_token_corpus(tokens["train"], args.out_dir / "train_tokens.txt")
    artifacts.write_json(report, args.report)


if __name__ == "__main__":
    cli.run(main, "tokenize")
