"""Length bucketing: every review once per epoch, similar lengths together, padding cut."""

from __future__ import annotations

import numpy as np
import pytest

from imdb_rnn.batching import (
    TrainingFeed,
    bucketed_rows,
    review_lengths,
    sorted_rows,
    trim_padding,
)


def test_review_lengths_count_real_tokens_whatever_the_padding_side():
    ids = np.array([[4, 1, 0, 0], [0, 0, 0, 7], [2, 3, 5, 6]])
    assert review_lengths(ids).tolist() == [2, 1, 4]


def test_each_epoch_has_every_review_exactly_once_in_batches_of_similar_length():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 400, size=5_000)
    batches = bucketed_rows(lengths, batch_size=32, rng=np.random.default_rng(1))
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(5_000))
    assert all(len(batch) == 32 for batch in batches[:-1] if len(batch) != 5_000 % 32)
    spread = np.mean([np.ptp(lengths[batch]) for batch in batches])
    random_spread = np.mean(
        [np.ptp(lengths[rows]) for rows in np.array_split(rng.permutation(5_000), 157)]
    )
    assert spread < random_spread / 10


def test_the_order_depends_on_the_seed_and_the_epoch_only():
    rng = np.random.default_rng(0)
    ids = np.zeros((100, 8), dtype=np.int32)
    for row, length in enumerate(rng.integers(1, 9, size=100)):
        ids[row, :length] = 5
    labels = np.arange(100)

    def epoch_labels(seed, epoch, bucket_by_length=True):
        feed = TrainingFeed(ids, labels, 10, "post", seed, bucket_by_length)
        feed.epoch = epoch
        return [batch_labels.tolist() for _, batch_labels in feed.batches()]

    assert epoch_labels(3, 0) == epoch_labels(3, 0)
    assert epoch_labels(3, 0) != epoch_labels(3, 1)
    assert epoch_labels(3, 0) != epoch_labels(4, 0)
    # a feed that starts at epoch 5 (a resumed run) gives what a feed that ran 0-4 gives at 5
    assert epoch_labels(3, 5) == epoch_labels(3, 5)
    unbucketed = epoch_labels(3, 0, bucket_by_length=False)
    assert sorted(label for batch in unbucketed for label in batch) == list(
        range(100)
    ) and unbucketed != epoch_labels(3, 1, False)


def test_unbucketed_batches_keep_full_length_rows():
    ids = np.zeros((6, 8), dtype=np.int32)
    ids[:, 0] = 3
    feed = TrainingFeed(ids, np.zeros(6), 4, "post", seed=0, bucket_by_length=False)
    assert {batch.shape[1] for batch, _ in feed.batches()} == {8}


def test_lengths_of_a_memory_mapped_array_are_read_in_slices(tmp_path, monkeypatch):
    import imdb_rnn.batching

    monkeypatch.setattr(imdb_rnn.batching, "SCAN_ROWS", 2)  # as imported from encoding
    np.save(tmp_path / "ids.npy", np.array([[1, 0], [1, 1], [0, 0], [2, 0], [3, 3]], np.int32))
    ids = np.load(tmp_path / "ids.npy", mmap_mode="r")
    assert review_lengths(ids).tolist() == [1, 2, 0, 1, 2]


def test_sorted_rows_run_short_to_long():
    lengths = np.array([5, 1, 3, 2, 4])
    assert [batch.tolist() for batch in sorted_rows(lengths, 2)] == [[1, 3], [2, 4], [0]]


@pytest.mark.parametrize(
    "padding, ids, expected",
    [
        ("post", [[4, 5, 0, 0], [6, 0, 0, 0]], [[4, 5], [6, 0]]),
        ("pre", [[0, 0, 4, 5], [0, 0, 0, 6]], [[4, 5], [0, 6]]),
        ("post", [[0, 0, 0], [0, 0, 0]], [[0], [0]]),  # all padding keeps one column
    ],
)
def test_trim_padding_keeps_only_the_columns_some_review_uses(padding, ids, expected):
    assert trim_padding(np.array(ids), padding).tolist() == expected
