"""imdb-predict: classify new reviews with the pipeline's final (combined) model.

Reviews come from the command line, a text file (one review per line: lines end at \\n or \\r\\n,
nothing else) or standard input. Each is normalised and encoded by the same functions the pipeline
trained on. By default the combined model scores it, exactly as the combine stage scored the test
split; --member rnn or --member linear uses one member alone. A file or standard input is read,
classified and answered a chunk of reviews at a time, so memory does not grow with the input.

    imdb-predict "A wonderful film." "Two hours I will never get back."
    imdb-predict --file reviews.txt --json
    cat reviews.txt | imdb-predict --member rnn
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from imdb_rnn import cli
from imdb_rnn.errors import DataError

if TYPE_CHECKING:
    from imdb_rnn.serving import Predictor  # NumPy: imported only once the input is known

log = logging.getLogger("imdb-predict")

# What the combine stage writes (dvc.yaml declares the same path; tests/test_dvc_yaml.py checks).
DEFAULT_PREDICTOR = Path("models/predictor.json")
# Characters that would break one-review-per-line, tab-separated output, or drive a terminal.
_CONTROL = {code: " " for code in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))}
EXCERPT_CHARACTERS = 60
# Reviews are read, scored and written this many batches at a time. The recurrent member sorts the
# reviews it is given by length and cuts each batch to its longest, so sorting more reviews at once
# wastes less work on padding: on IMDB's test split, chunks of 16 batches pad 5 % more than sorting
# the whole input, one batch at a time 91 % more. 16 batches of 512 reviews are about 10 MB of text.
BATCHES_PER_CHUNK = 16
# How many numbers of reviews without a known word the warning lists.
UNKNOWN_LISTED = 10


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


def decode_utf8(data: bytes, origin: str, offset: int) -> str:
    """``data`` as text; ``offset`` is where it starts in ``origin``, for the error message."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{origin} is not valid UTF-8 (byte {data[error.start]:#04x} at offset"
            f" {offset + error.start}); convert it first, e.g. iconv -f latin1 -t utf-8"
        ) from None


def stream_reviews(stream: BinaryIO, origin: str) -> Iterator[str]:
    """One review per non-blank line, read a line at a time. Lines end at \\n (or \\r\\n) only,
    as a binary stream splits them (no other UTF-8 character holds that byte): str.splitlines would
    also split at \\r, \\v, \\f, \\x1c-\\x1e, U+0085, U+2028 and U+2029, which occur inside real
    reviews (664 of IMDB's 50,000), and so turn one review into several."""
    offset = 0  # where the line starts in the stream, for an error message
    for line in stream:
        review = decode_utf8(line, origin, offset).removesuffix("\n").removesuffix("\r").strip()
        if review:
            yield review
        offset += len(line)


def read_reviews(args: argparse.Namespace) -> Iterator[str]:
    """The reviews to classify, read lazily: a file or standard input line by line."""
    if args.reviews:
        for number, review in enumerate(args.reviews, start=1):
            # Python keeps an argument's undecodable bytes as lone surrogates, which printing the
            # review later would fail on: refused here as a file's bytes are.
            text = decode_utf8(os.fsencode(review), f"review argument {number}", 0)
            if text.strip():
                yield text
    elif args.file:
        if args.file.is_dir():
            raise DataError(f"--file {args.file} is a directory; give a text file")
        if not args.file.exists():  # not is_file(): a pipe, <(command) or /dev/stdin is read too
            raise DataError(f"--file {args.file} does not exist")
        with args.file.open("rb") as stream:
            yield from stream_reviews(stream, str(args.file))
    elif not sys.stdin.isatty():
        yield from stream_reviews(sys.stdin.buffer, "standard input")


def chunks(reviews: Iterable[str], size: int) -> Iterator[list[str]]:
    """Consecutive lists of ``size`` reviews (the last one shorter)."""
    iterator = iter(reviews)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def json_items(items: Iterable[dict], first: bool) -> str:
    """Items of a JSON array as ``json.dumps(array, indent=2)`` writes them, with what comes before
    them: the array's opening for the first ones, a comma for later ones. A whole array is these
    pieces followed by "\\n]"."""
    # An item's line breaks are all indentation: json escapes any inside a string.
    texts = (json.dumps(item, ensure_ascii=False, allow_nan=False, indent=2) for item in items)
    return ("[\n  " if first else ",\n  ") + ",\n  ".join(
        text.replace("\n", "\n  ") for text in texts
    )


def excerpt(review: str) -> str:
    """The start of a review, safe for one tab-separated line: control characters (tabs, ANSI
    escape sequences, line breaks) become spaces."""
    shown = review.translate(_CONTROL)
    if len(shown) > EXCERPT_CHARACTERS:
        shown = shown[: EXCERPT_CHARACTERS - 3] + "..."
    return shown


def classify(
    predictor: Predictor, reviews: list[str], member: str, threshold: float
) -> tuple[list[Prediction], list[int]]:
    """Each review's prediction, and the positions of the reviews without a known word."""
    import numpy as np

    from imdb_rnn.serving import known_words

    members = predictor.member_probabilities(reviews)
    probabilities = predictor.combined(members) if member == "combined" else members[member]
    if not np.isfinite(probabilities).all():
        raise DataError(
            f"the {member} model gave non-finite probabilities: its files are broken;"
            " restore them with dvc checkout, or rerun dvc repro"
        )
    known = known_words(reviews, predictor.vocabulary)
    predictions = [
        Prediction(
            label="positive" if value >= threshold else "negative",
            positive_probability=round(float(value), 4),
            known_words=count,
            review=review,
        )
        for review, value, count in zip(reviews, probabilities, known, strict=True)
    ]
    return predictions, [index for index, count in enumerate(known) if count == 0]


def line_of(prediction: Prediction) -> str:
    """One tab-separated line: label, probability, the start of the review."""
    shown = excerpt(prediction.review)
    return f"{prediction.label}\t{prediction.positive_probability:.4f}\t{shown}\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    reviews = read_reviews(args)
    first = next(reviews, None)  # a file's checks, and the first line of stdin
    if first is None:
        raise DataError(
            "no reviews to classify; pass them as arguments, with --file, or on standard input"
        )
    from imdb_rnn.serving import load_predictor  # NumPy and TensorFlow: after input

    predictor = load_predictor(args.predictor)
    threshold = predictor.manifest.threshold if args.threshold is None else args.threshold
    if args.batch_size:
        predictor.manifest = predictor.manifest.model_copy(update={"batch_size": args.batch_size})
    size = predictor.manifest.batch_size * BATCHES_PER_CHUNK

    unknown: list[int] = []  # numbers (from 1) of the reviews without a known word
    done = 0
    for chunk in chunks(itertools.chain([first], reviews), size):
        predictions, without_known_word = classify(predictor, chunk, args.member, threshold)
        unknown += [done + 1 + index for index in without_known_word]
        del unknown[UNKNOWN_LISTED + 1 :]  # enough to list the first few, then "..."
        if args.json:
            sys.stdout.write(json_items(map(asdict, predictions), first=done == 0))
        else:
            sys.stdout.writelines(map(line_of, predictions))
        sys.stdout.flush()  # each chunk's answers as soon as they are known
        done += len(chunk)
    if args.json:
        sys.stdout.write("\n]\n")
    if unknown:
        log.warning(
            "review(s) %s have no word the vocabulary knows: their scores are guesses",
            ", ".join(map(str, unknown[:UNKNOWN_LISTED]))
            + (" ..." if len(unknown) > UNKNOWN_LISTED else ""),
        )


def entry_point() -> None:
    """The `imdb-predict` console script."""
    from imdb_rnn.numerics import pin_kernels_or_restart

    cli.quiet_tensorflow()  # before a restart, which keeps the environment it sets
    pin_kernels_or_restart()  # the same kernels, hence the same numbers, as the pipeline's
    cli.run(main, "imdb-predict", log_level="WARNING", dies_with_parent=False)
