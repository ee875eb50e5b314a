"""Labelled reviews in memory: validation, splitting protocols and summary statistics.

Every function here takes and returns pandas DataFrames with exactly two columns, ``text`` (str) and
``label`` (0 = negative, 1 = positive); reading and writing them is the stages' business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from imdb_rnn.errors import DataError
from imdb_rnn.params import IngestParams

COLUMNS = ("text", "label")
SPLIT_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class Splits:
    """The three splits every downstream stage reads."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame

    def items(self) -> list[tuple[str, pd.DataFrame]]:
        return [(name, getattr(self, name)) for name in SPLIT_NAMES]


def clean_reviews(frame: pd.DataFrame, origin: str) -> tuple[pd.DataFrame, int]:
    """Check columns and labels and drop empty reviews; return the clean frame and the drop count.

    ``origin`` names the input in error messages (e.g. "huggingface stanfordnlp/imdb, split train").
    """
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise DataError(
            f"{origin}: missing column(s) {', '.join(missing)};"
            f" found {', '.join(map(str, frame.columns))}. Rename the columns to 'text' and 'label'"
        )
    if frame.empty:
        raise DataError(f"{origin}: no reviews; check the source and its split files")
    labels = pd.to_numeric(frame["label"], errors="coerce")
    bad_labels = ~labels.isin([0, 1])
    if bad_labels.any():
        examples = frame["label"][bad_labels].astype(str).unique()[:3].tolist()
        raise DataError(
            f"{origin}: {int(bad_labels.sum())} label(s) outside {{0, 1}}, e.g. {examples};"
            " use 0 for negative and 1 for positive, and drop unlabelled rows (label -1)"
        )
    texts = frame["text"].astype("string").fillna("")
    empty = texts.str.strip() == ""
    clean = pd.DataFrame(
        {"text": texts[~empty].astype(str).to_numpy(), "label": labels[~empty].to_numpy("int8")}
    )
    if clean.empty:
        raise DataError(f"{origin}: every review is empty or whitespace")
    return clean, int(empty.sum())


def _stratified_split(
    frame: pd.DataFrame, fraction: float, seed: int, what: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off ``fraction`` of the rows with the label balance kept; (rest, split-off part)."""
    counts = frame["label"].value_counts()
    if len(counts) < 2 or counts.min() < 2 or round(len(frame) * fraction) < 2:
        raise DataError(
            f"cannot carve a stratified {what} set ({fraction:.0%}) out of {len(frame)} reviews"
            f" with label counts {counts.to_dict()}; supply more reviews of both labels"
        )
    rest, part = train_test_split(
        frame, test_size=fraction, random_state=seed, stratify=frame["label"]
    )
    return rest.reset_index(drop=True), part.reset_index(drop=True)


def split_official(
    train: pd.DataFrame, test: pd.DataFrame, validation_fraction: float, seed: int
) -> Splits:
    """Keep the official test split untouched; carve validation out of train (stratified)."""
    train, validation = _stratified_split(train, validation_fraction, seed, "validation")
    return Splits(train=train, validation=validation, test=test.reset_index(drop=True))


def split_random(
    pooled: pd.DataFrame, test_fraction: float, validation_fraction: float, seed: int
) -> Splits:
    """Re-split pooled reviews: ``test_fraction`` to test, then ``validation_fraction`` of the rest.

    This is the protocol of the seed notebook that reports 0.91 on an 80/20 re-split of all 50,000
    reviews; it is easier than the official split, so its numbers are not comparable with it.
    """
    rest, test = _stratified_split(pooled, test_fraction, seed, "test")
    train, validation = _stratified_split(rest, validation_fraction, seed, "validation")
    return Splits(train=train, validation=validation, test=test)


def cap_reviews(frame: pd.DataFrame, max_reviews: int, seed: int) -> pd.DataFrame:
    """A stratified sample of at most ``max_reviews`` rows, for quick runs on a subset."""
    if len(frame) <= max_reviews:
        return frame
    if frame["label"].nunique() < 2 or max_reviews < 2:
        return frame.sample(n=max_reviews, random_state=seed).reset_index(drop=True)
    sample, _ = train_test_split(
        frame, train_size=max_reviews, random_state=seed, stratify=frame["label"]
    )
    return sample.reset_index(drop=True)


def _length_stats(texts: pd.Series) -> dict[str, float]:
    """Review length in whitespace-separated words, as the seeds measure it."""
    lengths = texts.str.split().str.len().to_numpy()
    return {
        "mean_words": round(float(np.mean(lengths)), 1),
        "median_words": round(float(np.median(lengths)), 1),
        "p95_words": round(float(np.percentile(lengths, 95)), 1),
    }


def summarize_splits(splits: Splits, dropped_empty: Mapping[str, int]) -> dict:
    """The content of reports/data.json: rows, label balance and lengths per split."""
    summary: dict[str, dict] = {}
    for name, frame in splits.items():
        summary[name] = {
            "rows": len(frame),
            "positive_share": round(float(frame["label"].mean()), 4),
            **_length_stats(frame["text"]),
        }
    summary["dropped_empty_reviews"] = dict(dropped_empty)
    return summary


def make_splits(
    raw: Mapping[str, pd.DataFrame], params: IngestParams, origin: str
) -> tuple[Splits, dict[str, int]]:
    """Clean the source's splits and apply the split protocol; also return empty reviews dropped.

    ``raw`` maps split names ("train", "test", or "pooled" for a single file) to frames.
    """
    cleaned, dropped = {}, {}
    for name, frame in raw.items():
        cleaned[name], dropped[name] = clean_reviews(frame, f"{origin}, split {name}")
    if params.protocol == "official":
        if set(cleaned) != {"train", "test"}:
            raise DataError(
                f"{origin} has no official train/test splits (it has {sorted(cleaned)});"
                " set ingest.protocol to random"
            )
        splits = split_official(
            cleaned["train"], cleaned["test"], params.validation_fraction, params.seed
        )
    else:
        pooled = pd.concat(list(cleaned.values()), ignore_index=True)
        splits = split_random(pooled, params.test_fraction, params.validation_fraction, params.seed)
    if params.max_reviews_per_split is not None:
        splits = Splits(
            *(
                cap_reviews(frame, params.max_reviews_per_split, params.seed)
                for _, frame in splits.items()
            )
        )
    for name, frame in splits.items():
        # One label only: accuracy is meaningless, ROC-AUC undefined, the linear member cannot fit.
        if frame["label"].nunique() < 2:
            raise DataError(
                f"the {name} split has reviews of one label only ({len(frame)} reviews, label"
                f" {int(frame['label'].iloc[0])}); it needs both, e.g. raise"
                " ingest.max_reviews_per_split to at least 2 or supply reviews of both labels"
            )
    return splits, dropped
