"""Labelled reviews: validation chunk by chunk, splitting protocols and summary statistics.

Reviews are pandas DataFrames with exactly two columns, ``text`` (str) and ``label`` (0 = negative,
1 = positive), cleaned a chunk at a time. Splitting needs no text: the protocols work on the labels
alone and return, per split, the *positions* of its reviews in the cleaned source (all source
splits end to end), so that ingest can gather each split's text from disk a chunk at a time
whatever the corpus size. Reading and writing are the stages' business.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from imdb_rnn.errors import DataError
from imdb_rnn.params import IngestParams

COLUMNS = ("text", "label")
SPLIT_NAMES = ("train", "validation", "test")


class ReviewCleaner:
    """Cleans one source split a chunk at a time: checks the columns, drops empty reviews, and
    counts labels outside {0, 1} so that ``finish`` can report them all in one error.

    ``origin`` names the input in error messages (e.g. "huggingface stanfordnlp/imdb, split train").
    """

    def __init__(self, origin: str):
        self.origin = origin
        self.rows = 0
        self.kept = 0
        self.dropped_empty = 0
        self.bad_labels = 0
        self.bad_label_examples: list[str] = []

    def clean(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [column for column in COLUMNS if column not in frame.columns]
        if missing:
            raise DataError(
                f"{self.origin}: missing column(s) {', '.join(missing)};"
                f" found {', '.join(map(str, frame.columns))}. Rename the columns to 'text' and"
                " 'label'"
            )
        self.rows += len(frame)
        labels = pd.to_numeric(frame["label"], errors="coerce")
        bad = ~labels.isin([0, 1])
        if bad.any():
            self.bad_labels += int(bad.sum())
            for example in frame["label"][bad].astype(str).unique():
                if len(self.bad_label_examples) < 3 and example not in self.bad_label_examples:
                    self.bad_label_examples.append(example)
        texts = frame["text"].astype("string").fillna("")
        keep = (texts.str.strip() != "") & ~bad
        self.dropped_empty += int((~keep & ~bad).sum())
        self.kept += int(keep.sum())
        return pd.DataFrame(
            {"text": texts[keep].astype(str).to_numpy(), "label": labels[keep].to_numpy("int8")}
        )

    def finish(self) -> None:
        """Raise the error the whole split earned, if any."""
        if self.bad_labels:
            raise DataError(
                f"{self.origin}: {self.bad_labels} label(s) outside {{0, 1}}, e.g."
                f" {self.bad_label_examples}; use 0 for negative and 1 for positive, and drop"
                " unlabelled rows (label -1)"
            )
        if self.rows == 0:
            raise DataError(f"{self.origin}: no reviews; check the source and its split files")
        if self.kept == 0:
            raise DataError(f"{self.origin}: every review is empty or whitespace")


@dataclass(frozen=True)
class Splits:
    """The three splits every downstream stage reads, as positions of their reviews in the
    cleaned source, in the order they are written."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def items(self) -> list[tuple[str, np.ndarray]]:
        return [(name, getattr(self, name)) for name in SPLIT_NAMES]


def _check_stratifiable(rows: np.ndarray, labels: np.ndarray, fraction: float, what: str) -> None:
    """scikit-learn's conditions for a stratified split, refused in one line: every label twice,
    and both parts (the split-off one rounded up, as scikit-learn sizes it) as large as the
    number of labels."""
    values, counts = np.unique(labels[rows], return_counts=True)
    part_size = math.ceil(len(rows) * fraction)
    if len(counts) < 2 or counts.min() < 2 or min(part_size, len(rows) - part_size) < len(counts):
        balance = {int(value): int(count) for value, count in zip(values, counts, strict=True)}
        raise DataError(
            f"cannot carve a stratified {what} set ({fraction:.0%}) out of {len(rows)} reviews"
            f" with label counts {balance}; supply more reviews of both labels"
        )


def _stratified_split(
    rows: np.ndarray, labels: np.ndarray, fraction: float, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Split off ``fraction`` of ``rows`` with the label balance kept; (rest, split-off part).

    ``labels`` are those of every position, so ``labels[rows]`` are the rows' labels. The result
    is the one train_test_split gives for a frame of these rows: it depends only on the labels.
    """
    _check_stratifiable(rows, labels, fraction, what)
    rest, part = train_test_split(
        rows, test_size=fraction, random_state=seed, stratify=labels[rows]
    )
    return rest, part


def _split_in_runs(
    rows: np.ndarray, labels: np.ndarray, fraction: float, run_length: int, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Split off ``fraction`` of each label's ``rows`` as whole runs of ``run_length`` rows that
    are consecutive among that label's rows in the source's order; (rest, split-off part).

    The runs are drawn at random and the last one drawn is cut to size. Both parts come back
    shuffled, as a stratified split returns them, so nothing downstream sees the labels sorted.
    """
    _check_stratifiable(rows, labels, fraction, what)
    rng = np.random.default_rng(seed)
    ordered = np.sort(rows)
    parts = []
    for label in np.unique(labels[ordered]):
        same_label = ordered[labels[ordered] == label]
        runs = [same_label[at : at + run_length] for at in range(0, len(same_label), run_length)]
        drawn = np.concatenate([runs[index] for index in rng.permutation(len(runs))])
        parts.append(drawn[: round(len(same_label) * fraction)])
    part = np.concatenate(parts)
    rest = ordered[~np.isin(ordered, part)]
    return rng.permutation(rest), rng.permutation(part)


def split_official(
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    labels: np.ndarray,
    validation_fraction: float,
    seed: int,
    validation_block_size: int | None = None,
) -> Splits:
    """Keep the official test split untouched; carve validation out of train (stratified).

    The official test reviews are of other movies than the training ones, and a random
    validation share is not: about 20 % of its reviews have a training review of (likely) the same
    movie, against 2 % of test reviews (docs/results.md), which makes validation the easier. With
    ``validation_block_size`` validation is drawn in runs of the source's order instead, which
    keeps most of a movie's reviews on one side.
    """
    if validation_block_size is None:
        train, validation = _stratified_split(
            train_rows, labels, validation_fraction, seed, "validation"
        )
    else:
        train, validation = _split_in_runs(
            train_rows, labels, validation_fraction, validation_block_size, seed, "validation"
        )
    return Splits(train=train, validation=validation, test=test_rows)


def split_random(
    rows: np.ndarray,
    labels: np.ndarray,
    test_fraction: float,
    validation_fraction: float,
    seed: int,
) -> Splits:
    """Re-split pooled reviews: ``test_fraction`` to test, then ``validation_fraction`` of the rest.

    This is the protocol of the seed notebook that reports 0.91 on an 80/20 re-split of all 50,000
    reviews; it is easier than the official split, so its numbers are not comparable with it.
    """
    rest, test = _stratified_split(rows, labels, test_fraction, seed, "test")
    train, validation = _stratified_split(rest, labels, validation_fraction, seed, "validation")
    return Splits(train=train, validation=validation, test=test)


def cap_reviews(rows: np.ndarray, labels: np.ndarray, max_reviews: int, seed: int) -> np.ndarray:
    """A stratified sample of at most ``max_reviews`` of ``rows``, for quick runs on a subset."""
    if len(rows) <= max_reviews:
        return rows
    counts = np.unique(labels[rows], return_counts=True)[1]
    left_out = len(rows) - max_reviews
    # Where scikit-learn cannot stratify (a label seen once, or fewer reviews left out than there
    # are labels), a plain sample: the balance then moves by at most a review or two.
    if len(counts) < 2 or counts.min() < 2 or min(max_reviews, left_out) < len(counts):
        return pd.Series(rows).sample(n=max_reviews, random_state=seed).to_numpy()
    sample, _ = train_test_split(
        rows, train_size=max_reviews, random_state=seed, stratify=labels[rows]
    )
    return sample


def word_counts(texts: Iterable[str]) -> np.ndarray:
    """Review length in whitespace-separated words, as the seeds measure it (``str.split``).
    Counted one review at a time: pandas' ``.str.split().str.len()`` gives the same counts, but
    first keeps every review's list of words, which took 3 times as long."""
    return np.fromiter((len(text.split()) for text in texts), dtype=np.int64)


def length_stats(lengths: np.ndarray) -> dict[str, float | None]:
    """Mean, median and 95th percentile of review lengths in words; null for no reviews (NumPy
    would give NaN, which is not JSON)."""
    if len(lengths) == 0:
        return {"mean_words": None, "median_words": None, "p95_words": None}
    return {
        "mean_words": round(float(np.mean(lengths)), 1),
        "median_words": round(float(np.median(lengths)), 1),
        "p95_words": round(float(np.percentile(lengths, 95)), 1),
    }


def summarize_splits(
    labels: Mapping[str, np.ndarray],
    lengths: Mapping[str, np.ndarray],
    dropped_empty: Mapping[str, int],
) -> dict:
    """The content of reports/data.json: rows, label balance and lengths (in words) per split."""
    summary: dict[str, dict] = {}
    for name in SPLIT_NAMES:
        summary[name] = {
            "rows": len(labels[name]),
            "positive_share": round(float(np.mean(labels[name])), 4),
            **length_stats(lengths[name]),
        }
    summary["dropped_empty_reviews"] = dict(dropped_empty)
    return summary


def make_splits(
    source_labels: Mapping[str, np.ndarray], params: IngestParams, origin: str
) -> Splits:
    """Apply the split protocol to the cleaned source's labels.

    ``source_labels`` maps the source's splits ("train", "test", or "pooled" for a single file)
    to their labels, in the order the cleaned source holds them; the result's positions count
    through all of them end to end.
    """
    labels = np.concatenate(list(source_labels.values()))
    starts = np.cumsum([0] + [len(part) for part in source_labels.values()])
    rows = {
        name: np.arange(start, start + len(part), dtype=np.int64)
        for (name, part), start in zip(source_labels.items(), starts[:-1], strict=True)
    }
    if params.protocol == "official":
        if set(rows) != {"train", "test"}:
            raise DataError(
                f"{origin} has no official train/test splits (it has {sorted(rows)});"
                " set ingest.protocol to random"
            )
        splits = split_official(
            rows["train"],
            rows["test"],
            labels,
            params.validation_fraction,
            params.seed,
            params.validation_block_size,
        )
    else:
        splits = split_random(
            np.arange(len(labels), dtype=np.int64),
            labels,
            params.test_fraction,
            params.validation_fraction,
            params.seed,
        )
    if params.max_reviews_per_split is not None:
        splits = Splits(
            *(
                cap_reviews(part, labels, params.max_reviews_per_split, params.seed)
                for _, part in splits.items()
            )
        )
    for name, part in splits.items():
        # One label only: accuracy is meaningless, ROC-AUC undefined, the linear member cannot fit.
        if len(np.unique(labels[part])) < 2:
            raise DataError(
                f"the {name} split has reviews of one label only ({len(part)} reviews, label"
                f" {int(labels[part][0])}); it needs both, e.g. raise"
                " ingest.max_reviews_per_split to at least 2 or supply reviews of both labels"
            )
    return splits
