"""Length bucketing: every review once per epoch, similar lengths together, padding cut."""

from __future__ import annotations

import numpy as np
import pytest

from imdb_rnn.batching import (
    bucketed_batches,
    length_sorted_batches,
    review_lengths,
    training_batches,
    trim_padding,
)


def test_review_lengths_count_real_tokens_whatever_the_padding_side():
    ids = np.array([[4, 1, 0, 0], [0, 0, 0, 7], [2, 3, 5, 6]])
    assert review_lengths(ids).tolist() == [2, 1, 4]


def test_each_epoch_has_every_review_exactly_once_in_batches_of_similar_length():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 400, size=5_000)
    batches = bucketed_batches(lengths, batch_size=32, rng=np.random.default_rng(1))
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

    def first_epochs(seed):
        epochs = training_batches(ids, labels, 10, "post", seed)
        return [[batch[1].tolist() for batch in next(epochs)] for _ in range(2)]

    assert first_epochs(3) == first_epochs(3)
    assert first_epochs(3)[0] != first_epochs(3)[1]
    assert first_epochs(3) != first_epochs(4)


def test_length_sorted_batches_run_short_to_long():
    lengths = np.array([5, 1, 3, 2, 4])
    assert [batch.tolist() for batch in length_sorted_batches(lengths, 2)] == [[1, 3], [2, 4], [0]]


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
