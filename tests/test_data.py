from __future__ import annotations

import copy
import itertools

import numpy as np
import pandas as pd
import pytest

from imdb_rnn.data import (
    ReviewCleaner,
    cap_reviews,
    make_splits,
    split_official,
    split_random,
    summarize_splits,
    word_counts,
)
from imdb_rnn.errors import DataError
from imdb_rnn.params import IngestParams
from tests.conftest import make_reviews


def clean_reviews(frame: pd.DataFrame, origin: str) -> tuple[pd.DataFrame, int]:
    """One frame cleaned and checked whole, as ingest cleans each source split chunk by chunk."""
    cleaner = ReviewCleaner(origin)
    clean = cleaner.clean(frame)
    cleaner.finish()
    return clean, cleaner.dropped_empty


def test_clean_reviews_drops_empty_and_whitespace_reviews(toy_reviews):
    frame = pd.concat(
        [toy_reviews, pd.DataFrame({"text": ["   ", "", None], "label": [1, 0, 1]})],
        ignore_index=True,
    )
    clean, dropped = clean_reviews(frame, "toy")
    assert dropped == 3
    assert clean["text"].tolist() == toy_reviews["text"].tolist()
    assert clean["label"].dtype == "int8"
    assert list(clean.columns) == ["text", "label"]


def test_missing_column_is_named(toy_reviews):
    with pytest.raises(DataError, match="missing column\\(s\\) label; found text, sentiment"):
        clean_reviews(toy_reviews.rename(columns={"label": "sentiment"}), "toy")


@pytest.mark.parametrize("bad_label", [-1, 2, "pos"])
def test_labels_outside_zero_and_one_are_rejected(toy_reviews, bad_label):
    frame = toy_reviews.astype({"label": object})
    frame.loc[0, "label"] = bad_label
    with pytest.raises(DataError, match="1 label\\(s\\) outside \\{0, 1\\}"):
        clean_reviews(frame, "toy")


def test_empty_inputs_are_errors(toy_reviews):
    with pytest.raises(DataError, match="no reviews"):
        clean_reviews(toy_reviews.iloc[:0], "toy")
    with pytest.raises(DataError, match="every review is empty"):
        clean_reviews(pd.DataFrame({"text": [" "], "label": [1]}), "toy")


def rows_and_labels(*label_counts: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Positions for source splits of the given sizes, end to end, and all their labels."""
    labels = np.concatenate(
        [make_reviews(n, seed=seed + i)["label"] for i, n in enumerate(label_counts)]
    )
    starts = np.cumsum([0, *label_counts])
    return (*(np.arange(a, b) for a, b in itertools.pairwise(starts)), labels.astype(np.int8))


def test_official_split_keeps_test_untouched_and_stratifies_validation():
    train, test, labels = rows_and_labels(200, 50)
    splits = split_official(train, test, labels, validation_fraction=0.1, seed=0)
    assert len(splits.train) == 180 and len(splits.validation) == 20
    assert labels[splits.validation].mean() == 0.5
    assert splits.test.tolist() == test.tolist()
    assert sorted(np.concatenate([splits.train, splits.validation])) == train.tolist()


def test_official_split_is_reproducible_and_seed_dependent():
    train, test, labels = rows_and_labels(200, 50)
    first = split_official(train, test, labels, 0.1, seed=0).validation
    assert first.tolist() == split_official(train, test, labels, 0.1, seed=0).validation.tolist()
    assert first.tolist() != split_official(train, test, labels, 0.1, seed=1).validation.tolist()


def test_splitting_positions_draws_what_splitting_the_frame_did():
    """The splits of the reference run were drawn by train_test_split on the DataFrame; drawing
    them from positions must pick the same reviews in the same order, or every result changes."""
    from sklearn.model_selection import train_test_split

    frame = make_reviews(300, seed=4)
    labels = frame["label"].to_numpy(np.int8)
    _, validation = train_test_split(frame, test_size=0.1, random_state=42, stratify=frame["label"])
    split = split_official(np.arange(300), np.arange(0), labels, 0.1, seed=42)
    assert frame["text"].to_numpy()[split.validation].tolist() == validation["text"].tolist()


def test_validation_in_runs_takes_whole_runs_of_each_label_in_the_source_order():
    train, test, labels = rows_and_labels(400, 50)
    splits = split_official(train, test, labels, 0.1, seed=0, validation_block_size=5)
    assert len(splits.validation) == 40 and labels[splits.validation].mean() == 0.5
    assert sorted(np.concatenate([splits.train, splits.validation])) == train.tolist()
    assert splits.test.tolist() == test.tolist()
    for label in (0, 1):
        # Cut one label's rows, in source order, into runs of 5: each is taken whole or not at all.
        same_label = train[labels[train] == label]
        taken = np.isin(same_label, splits.validation).reshape(-1, 5)
        assert taken.all(axis=1).sum() == 4 and not (taken.any(axis=1) & ~taken.all(axis=1)).any()


def test_validation_in_runs_is_shuffled_reproducible_and_seed_dependent():
    train, test, labels = rows_and_labels(400, 50)
    first = split_official(train, test, labels, 0.1, seed=0, validation_block_size=5)
    again = split_official(train, test, labels, 0.1, seed=0, validation_block_size=5)
    other = split_official(train, test, labels, 0.1, seed=1, validation_block_size=5)
    assert first.validation.tolist() == again.validation.tolist()
    assert first.train.tolist() == again.train.tolist()
    assert sorted(first.validation) != sorted(other.validation)
    # Written in source order, training would hold every review of one label before the other.
    assert first.train.tolist() != sorted(first.train)


def test_a_last_run_is_cut_to_the_fraction():
    train, test, labels = rows_and_labels(200, 50)
    splits = split_official(train, test, labels, 0.15, seed=0, validation_block_size=20)
    assert len(splits.validation) == 30 and labels[splits.validation].sum() == 15


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"protocol": "random"}, "validation_block_size needs protocol: official"),
        ({"source": "keras"}, "Keras' IMDB is shuffled; set validation_block_size: null"),
        ({"validation_block_size": 0}, "greater than or equal to 1"),
    ],
)
def test_validation_in_runs_is_refused_where_it_cannot_keep_movies_apart(
    default_params, overrides, expected
):
    values = copy.deepcopy(default_params["ingest"]) | {"validation_block_size": 250} | overrides
    with pytest.raises(ValueError, match=expected):
        IngestParams.model_validate(values)


def test_make_splits_passes_the_run_length_on(default_params):
    params = _ingest_params(default_params, validation_fraction=0.25, validation_block_size=5)
    _, _, labels = rows_and_labels(40, 20)
    sources = {"train": labels[:40], "test": labels[40:]}
    splits = make_splits(sources, params, "hub")
    assert len(splits.validation) == 10
    random_share = _ingest_params(default_params, validation_fraction=0.25)
    assert sorted(splits.validation) != sorted(make_splits(sources, random_share, "hub").validation)


def test_random_split_pools_and_resplits():
    (pooled, labels) = rows_and_labels(500)
    splits = split_random(pooled, labels, test_fraction=0.2, validation_fraction=0.25, seed=0)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (300, 100, 100)
    assert sorted(np.concatenate([rows for _, rows in splits.items()])) == pooled.tolist()


def test_split_too_small_to_stratify_is_a_clear_error():
    train, test, labels = rows_and_labels(4, 4)
    with pytest.raises(DataError, match="cannot carve a stratified validation set"):
        split_official(train, test, labels, validation_fraction=0.1, seed=0)


def test_a_split_that_would_leave_training_too_small_is_a_clear_error():
    # 95 % of 20 reviews leaves one for training (scikit-learn's traceback: "train set will be
    # empty" or too small to stratify); each side needs a review of each label.
    train, test, labels = rows_and_labels(20, 4)
    with pytest.raises(DataError, match="cannot carve a stratified validation set"):
        split_official(train, test, labels, validation_fraction=0.95, seed=0)


@pytest.mark.parametrize(
    ("label_counts", "max_reviews"),
    [((500, 501), 1000), ((10, 1), 5)],  # one review left out; a label seen once
    ids=["one-left-out", "lone-label"],
)
def test_cap_reviews_samples_where_scikit_learn_cannot_stratify(label_counts, max_reviews):
    labels = np.repeat(np.array([0, 1], np.int8), label_counts)
    capped = cap_reviews(np.arange(len(labels)), labels, max_reviews, seed=0)
    assert len(capped) == max_reviews == len(set(capped.tolist()))


def test_cap_reviews_keeps_label_balance():
    rows, labels = rows_and_labels(100)
    capped = cap_reviews(rows, labels, 10, seed=0)
    assert len(capped) == 10 and labels[capped].sum() == 5
    assert len(cap_reviews(rows[:6], labels, 10, seed=0)) == 6


def _ingest_params(default_params, **overrides) -> IngestParams:
    values = copy.deepcopy(default_params["ingest"]) | overrides
    return IngestParams.model_validate(values)


def test_make_splits_official_needs_train_and_test(default_params):
    params = _ingest_params(default_params)
    with pytest.raises(DataError, match=r"has no official train/test splits.*protocol to random"):
        make_splits({"pooled": rows_and_labels(100)[1]}, params, "file.csv")


def test_make_splits_official_counts_positions_through_train_then_test(default_params):
    params = _ingest_params(default_params, validation_fraction=0.25)
    _, _, labels = rows_and_labels(40, 20)
    splits = make_splits({"train": labels[:40], "test": labels[40:]}, params, "hub")
    assert splits.test.tolist() == list(range(40, 60))
    assert sorted(np.concatenate([splits.train, splits.validation])) == list(range(40))


def test_make_splits_random_with_cap(default_params):
    params = _ingest_params(default_params, protocol="random", max_reviews_per_split=10)
    splits = make_splits({"pooled": rows_and_labels(100)[1]}, params, "file.csv")
    assert [len(rows) for _, rows in splits.items()] == [10, 8, 10]  # validation: 10 % of 80


def test_bad_labels_are_counted_across_chunks_and_reported_once(toy_reviews):
    cleaner = ReviewCleaner("big.csv")
    for bad in (-1, "pos", -1):
        frame = toy_reviews.astype({"label": object})
        frame.loc[0, "label"] = bad
        assert len(cleaner.clean(frame)) == len(toy_reviews) - 1
    with pytest.raises(
        DataError, match=r"big.csv: 3 label\(s\) outside \{0, 1\}, e.g. \['-1', 'pos'\]"
    ):
        cleaner.finish()


def test_summary_has_rows_balance_and_lengths():
    labels = {
        "train": np.array([0, 1, 1]),
        "validation": np.array([0, 1]),
        "test": np.array([1, 0]),
    }
    lengths = {
        name: word_counts(pd.Series(["a b", "c"] * 2)[: len(part)]) for name, part in labels.items()
    }
    summary = summarize_splits(labels, lengths, {"train": 0, "test": 2})
    assert summary["train"]["rows"] == 3 and summary["validation"]["rows"] == 2
    assert summary["test"]["positive_share"] == 0.5
    assert summary["train"]["mean_words"] == 1.7
    assert summary["dropped_empty_reviews"] == {"train": 0, "test": 2}
    assert set(summary["test"]) == {
        "rows",
        "positive_share",
        "mean_words",
        "median_words",
        "p95_words",
    }
