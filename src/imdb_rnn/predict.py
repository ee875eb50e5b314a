"""imdb-predict: classify new reviews with the trained model.

Reviews come from the command line, a text file (one review per line) or standard input. Each is
normalised and encoded by the same functions the pipeline trained on (imdb_rnn.text), with the
vocabulary and encoding settings the tokenize stage wrote.

    imdb-predict "A wonderful film." "Two hours I will never get back."
    imdb-predict --file reviews.txt --json
    cat reviews.txt | imdb-predict
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from imdb_rnn import artifacts, cli
from imdb_rnn.errors import DataError
from imdb_rnn.text import Vocabulary, encode_reviews


@dataclass(frozen=True)
class Prediction:
    label: str
    positive_probability: float
    review: str


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="imdb-predict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("reviews", nargs="*", help="review texts (default: read --file or stdin)")
    parser.add_argument("--file", type=Path, help="a UTF-8 text file with one review per line")
    parser.add_argument("--json", action="store_true", help="print a JSON array instead of lines")
    parser.add_argument("--threshold", type=float, default=0.5, help="positive at or above this")
    parser.add_argument("--model", type=Path, default=Path("models/model.keras"))
    parser.add_argument("--vocabulary", type=Path, default=Path("data/tokenized/vocabulary.json"))
    parser.add_argument("--encoding", type=Path, default=Path("data/tokenized/encoding.json"))
    parser.add_argument("--batch-size", type=int, default=256)
    return parser.parse_args(argv)


def decode_utf8(data: bytes, origin: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{origin} is not valid UTF-8 (byte {data[error.start]:#04x} at offset {error.start});"
            " convert it first, e.g. iconv -f latin1 -t utf-8"
        ) from None


def split_reviews(text: str) -> list[str]:
    """One review per non-blank line."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def classify(
    reviews: list[str],
    model,
    vocabulary: Vocabulary,
    encoding: dict,
    threshold: float,
    batch_size: int,
) -> list[Prediction]:
    padded_ids = encode_reviews(
        reviews, vocabulary, encoding["max_length"], encoding["padding"], encoding["truncating"]
    )
    from imdb_rnn.model import predict_probabilities  # TensorFlow: after the input is checked

    probabilities = predict_probabilities(model, padded_ids, batch_size, encoding["padding"])
    return [
        Prediction(
            label="positive" if probability >= threshold else "negative",
            positive_probability=round(float(probability), 4),
            review=review,
        )
        for review, probability in zip(reviews, probabilities, strict=True)
    ]


def read_reviews(args: argparse.Namespace) -> list[str]:
    if args.reviews:
        return [review for review in args.reviews if review.strip()]
    if args.file:
        if not args.file.is_file():
            raise DataError(f"{args.file} does not exist")
        return split_reviews(decode_utf8(args.file.read_bytes(), str(args.file)))
    if sys.stdin.isatty():
        return []
    return split_reviews(decode_utf8(sys.stdin.buffer.read(), "standard input"))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not 0 < args.threshold < 1:
        raise DataError(f"--threshold must be between 0 and 1, got {args.threshold}")
    reviews = read_reviews(args)
    if not reviews:
        raise DataError(
            "no reviews to classify; pass them as arguments, with --file, or on standard input"
        )
    vocabulary = artifacts.read_vocabulary(args.vocabulary)
    encoding = artifacts.read_json(args.encoding)
    artifacts.existing(args.model)  # before TensorFlow's multi-second import
    from imdb_rnn.model import read_classifier

    model = read_classifier(args.model)
    predictions = classify(reviews, model, vocabulary, encoding, args.threshold, args.batch_size)
    if args.json:
        print(
            json.dumps(
                [asdict(prediction) for prediction in predictions], ensure_ascii=False, indent=2
            )
        )
        return
    for prediction in predictions:
        excerpt = (
            prediction.review if len(prediction.review) <= 60 else prediction.review[:57] + "..."
        )
        print(f"{prediction.label}\t{prediction.positive_probability:.4f}\t{excerpt}")


def entry_point() -> None:
    """The `imdb-predict` console script."""
    cli.run(main, "imdb-predict", log_level="WARNING")
