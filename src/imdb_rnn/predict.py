"""imdb-predict: classify new reviews with the pipeline's final (combined) model.

Reviews come from the command line, a text file (one review per line: lines end at \\n or \\r\\n,
nothing else) or standard input. Each is normalised and encoded by the same functions the pipeline
trained on. By default the combined model scores it, exactly as the combine stage scored the test
split; --member rnn or --member linear uses one member alone.

    imdb-predict "A wonderful film." "Two hours I will never get back."
    imdb-predict --file reviews.txt --json
    cat reviews.txt | imdb-predict --member rnn
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from imdb_rnn import cli
from imdb_rnn.errors import DataError

log = logging.getLogger("imdb-predict")

# What the combine stage writes (dvc.yaml declares the same path; tests/test_dvc_yaml.py checks).
DEFAULT_PREDICTOR = Path("models/predictor.json")
# Characters that would break one-review-per-line, tab-separated output, or drive a terminal.
_CONTROL = {code: " " for code in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))}
EXCERPT_CHARACTERS = 60


@dataclass(frozen=True)
class Prediction:
    label: str
    positive_probability: float
    known_words: int  # tokens the vocabulary knows; 0 means the model can only guess
    review: str


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def probability(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


class _OneLineErrors(argparse.ArgumentParser):
    def error(self, message: str):
        cli.fail(self.prog, f"{message} (see --help)", status=2)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _OneLineErrors(
        prog="imdb-predict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("reviews", nargs="*", help="review texts (default: read --file or stdin)")
    parser.add_argument("--file", type=Path, help="a UTF-8 text file with one review per line")
    parser.add_argument("--json", action="store_true", help="print a JSON array instead of lines")
    parser.add_argument(
        "--member",
        choices=("combined", "rnn", "linear"),
        default="combined",
        help="which model scores: the combination (default) or one member",
    )
    parser.add_argument(
        "--predictor", type=Path, default=DEFAULT_PREDICTOR, help="the combine stage's manifest"
    )
    parser.add_argument(
        "--threshold", type=probability, help="positive at or above this (default: the pipeline's)"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, help="reviews per batch (default: the pipeline's)"
    )
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
    """One review per non-blank line. Lines end at \\n (or \\r\\n) only: str.splitlines would also
    split at \\r, \\v, \\f, \\x1c-\\x1e, U+0085, U+2028 and U+2029, which occur inside real reviews
    (664 of IMDB's 50,000), and so turn one review into several."""
    lines = (line.removesuffix("\r") for line in text.split("\n"))
    return [line.strip() for line in lines if line.strip()]


def read_reviews(args: argparse.Namespace) -> list[str]:
    if args.reviews:
        return [review for review in args.reviews if review.strip()]
    if args.file:
        if args.file.is_dir():
            raise DataError(f"--file {args.file} is a directory; give a text file")
        if not args.file.is_file():
            raise DataError(f"--file {args.file} does not exist")
        return split_reviews(decode_utf8(args.file.read_bytes(), str(args.file)))
    if sys.stdin.isatty():
        return []
    return split_reviews(decode_utf8(sys.stdin.buffer.read(), "standard input"))


def excerpt(review: str) -> str:
    """The start of a review, safe for one tab-separated line: control characters (tabs, ANSI
    escape sequences, line breaks) become spaces."""
    shown = review.translate(_CONTROL)
    if len(shown) > EXCERPT_CHARACTERS:
        shown = shown[: EXCERPT_CHARACTERS - 3] + "..."
    return shown


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    reviews = read_reviews(args)
    if not reviews:
        raise DataError(
            "no reviews to classify; pass them as arguments, with --file, or on standard input"
        )
    import numpy as np

    from imdb_rnn.serving import known_words, load_predictor  # NumPy and TensorFlow: after input

    predictor = load_predictor(args.predictor)
    threshold = predictor.manifest.threshold if args.threshold is None else args.threshold
    if args.batch_size:
        predictor.manifest = predictor.manifest.model_copy(update={"batch_size": args.batch_size})
    members = predictor.member_probabilities(reviews)
    probabilities = (
        predictor.combined(members) if args.member == "combined" else members[args.member]
    )
    if not np.isfinite(probabilities).all():
        raise DataError(
            f"the {args.member} model gave non-finite probabilities: its files are broken;"
            " restore them with dvc checkout, or rerun dvc repro"
        )
    known = known_words(reviews, predictor.vocabulary)
    unknown = [index + 1 for index, count in enumerate(known) if count == 0]
    if unknown:
        log.warning(
            "review(s) %s have no word the vocabulary knows: their scores are guesses",
            ", ".join(map(str, unknown[:10])) + (" ..." if len(unknown) > 10 else ""),
        )
    predictions = [
        Prediction(
            label="positive" if value >= threshold else "negative",
            positive_probability=round(float(value), 4),
            known_words=count,
            review=review,
        )
        for review, value, count in zip(reviews, probabilities, known, strict=True)
    ]
    if args.json:
        print(
            json.dumps(
                [asdict(p) for p in predictions], ensure_ascii=False, allow_nan=False, indent=2
            )
        )
        return
    for prediction in predictions:
        print(
            f"{prediction.label}\t{prediction.positive_probability:.4f}\t{excerpt(prediction.review)}"
        )


def entry_point() -> None:
    """The `imdb-predict` console script."""
    from imdb_rnn.numerics import pin_kernels_or_restart

    pin_kernels_or_restart()  # the same kernels, hence the same numbers, as the pipeline's
    cli.run(main, "imdb-predict", log_level="WARNING", dies_with_parent=False)
