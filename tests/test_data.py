from __future__ import annotations

import copy

import pandas as pd
import pytest

from imdb_rnn.data import (
    cap_reviews,
    clean_reviews,
    make_splits,
    split_official,
    split_random,
    summarize_splits,
)
from imdb_rnn.errors import DataError
from imdb_rnn.params import IngestParams
from tests.conftest import make_reviews


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


def test_official_split_keeps_test_untouched_and_stratifies_validation():
    train, test = make_reviews(200, seed=1), make_reviews(50, seed=2)
    splits = split_official(train, test, validation_fraction=0.1, seed=0)
    assert len(splits.train) == 180 and len(splits.validation) == 20
    assert splits.validation["label"].mean() == 0.5
    pd.testing.assert_frame_equal(splits.test, test)
    carved = pd.concat([splits.train, splits.validation])
    assert sorted(carved["text"]) == sorted(train["text"])


def test_official_split_is_reproducible_and_seed_dependent():
    train, test = make_reviews(200, seed=1), make_reviews(50, seed=2)
    first = split_official(train, test, 0.1, seed=0).validation
    pd.testing.assert_frame_equal(first, split_official(train, test, 0.1, seed=0).validation)
    assert not first.equals(split_official(train, test, 0.1, seed=1).validation)


def test_random_split_pools_and_resplits():
    pooled = make_reviews(500)
    splits = split_random(pooled, test_fraction=0.2, validation_fraction=0.25, seed=0)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (300, 100, 100)
    assert sorted(pd.concat([frame for _, frame in splits.items()])["text"]) == sorted(
        pooled["text"]
    )


def test_split_too_small_to_stratify_is_a_clear_error():
    with pytest.raises(DataError, match="cannot carve a stratified validation set"):
        split_official(make_reviews(4), make_reviews(4), validation_fraction=0.1, seed=0)


def test_cap_reviews_keeps_label_balance():
    capped = cap_reviews(make_reviews(100), 10, seed=0)
    assert len(capped) == 10 and capped["label"].sum() == 5
    assert len(cap_reviews(make_reviews(6), 10, seed=0)) == 6


def _ingest_params(default_params, **overrides) -> IngestParams:
    values = copy.deepcopy(default_params["ingest"]) | overrides
    return IngestParams.model_validate(values)


def test_make_splits_official_needs_train_and_test(default_params):
    params = _ingest_params(default_params)
    with pytest.raises(DataError, match=r"has no official train/test splits.*protocol to random"):
        make_splits({"pooled": make_reviews(100)}, params, "file.csv")


def test_make_splits_random_with_cap_and_dropped_counts(default_params):
    params = _ingest_params(default_params, protocol="random", max_reviews_per_split=10)
    pooled = pd.concat([make_reviews(100), pd.DataFrame({"text": [""], "label": [0]})])
    splits, dropped = make_splits({"pooled": pooled}, params, "file.csv")
    assert [len(frame) for _, frame in splits.items()] == [10, 8, 10]
    assert dropped == {"pooled": 1}


def test_summary_has_rows_balance_and_lengths():
    splits = split_official(make_reviews(40), make_reviews(20), 0.25, seed=0)
    summary = summarize_splits(splits, {"train": 0, "test": 2})
    assert summary["train"]["rows"] == 30 and summary["validation"]["rows"] == 10
    assert summary["test"]["positive_share"] == 0.5
    assert set(summary["test"]) == {
        "rows",
        "positive_share",
        "mean_words",
        "median_words",
        "p95_words",
    }
    assert summary["dropped_empty_reviews"] == {"train": 0, "test": 2}
