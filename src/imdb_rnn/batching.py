"""Batches for training and prediction, and the tf.data feeds that hand them to Keras.

A recurrent layer steps through every column of its input, and a masked padding step costs as much
as a real one. IMDB reviews are padded to ``tokenize.max_length`` (400) but the median review has
176 tokens, so more than half of a plain epoch would be spent stepping through padding. Grouping
reviews of similar length and cutting each batch's padding columns computes the same model
(padding is masked, so no output depends on it) in about half the time on a CPU.

Training batches are still random: every epoch shuffles the reviews, sorts them by length only
within pools of ``BATCHES_PER_POOL`` batches, cuts the pools into batches and shuffles the batches.
Which rows an epoch's batches hold is a pure function of the seed and the epoch number, so a rerun,
or a training resumed at epoch k, sees exactly the batches an uninterrupted run saw.

The feeds read rows by index, so the id arrays may be memory maps of the tokenize stage's .npy
files: only the rows of the current batch are ever read into memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from imdb_rnn.encoding import SCAN_ROWS
from imdb_rnn.vocabulary import PADDING_ID

# Large enough that a pool holds many reviews of every length (so batches are nearly uniform in
# length), small enough that each epoch still mixes short and long batches throughout.
BATCHES_PER_POOL = 50


def review_lengths(ids: np.ndarray) -> np.ndarray:
    """Real (non-padding) tokens of each row of a padded (reviews, max_length) id array."""
    return np.concatenate(
        [
            np.count_nonzero(ids[start : start + SCAN_ROWS] != PADDING_ID, axis=1)
            for start in range(0, len(ids), SCAN_ROWS)
        ]
        or [np.zeros(0, dtype=np.int64)]
    )


def trim_padding(ids: np.ndarray, padding: str) -> np.ndarray:
    """Drop the padding columns no row of this batch needs (at least one column is kept)."""
    width = max(int(review_lengths(ids).max(initial=0)), 1)
    return ids[:, :width] if padding == "post" else ids[:, ids.shape[1] - width :]


def bucketed_rows(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Row indices of one epoch's batches: random pools, sorted by length inside each pool."""
    shuffled = rng.permutation(len(lengths))
    pool_size = batch_size * BATCHES_PER_POOL
    batches = []
    for start in range(0, len(shuffled), pool_size):
        pool = shuffled[start : start + pool_size]
        pool = pool[np.argsort(lengths[pool], kind="stable")]
        batches.extend(
            pool[first : first + batch_size] for first in range(0, len(pool), batch_size)
        )
    return [batches[position] for position in rng.permutation(len(batches))]


def shuffled_rows(count: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Row indices of one epoch's batches in a plain random order, as Keras' own shuffling."""
    order = rng.permutation(count)
    return [order[first : first + batch_size] for first in range(0, count, batch_size)]


def sorted_rows(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Row indices in batches of increasing length, for prediction (no randomness needed)."""
    order = np.argsort(lengths, kind="stable")
    return [order[first : first + batch_size] for first in range(0, len(order), batch_size)]


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The random numbers of one training epoch: a function of the seed and epoch alone."""
    return np.random.default_rng([seed, epoch])


def dataset_of(
    batches: Callable[[], Iterator[tuple[np.ndarray, ...]]],
    batch_count: int,
    example: tuple[np.ndarray, ...],
):
    """A tf.data pipeline over NumPy batches whose number of steps varies from batch to batch.

    ``batches`` is called once per pass (each epoch, or each predict call) and yields tuples
    shaped like ``example``: (ids,) or (ids, labels). Keras' own PyDataset cannot be used, as it
    fixes each dimension from the first two batches it sees.
    """
    import tensorflow as tf  # imported here: NumPy-only callers need not load TensorFlow

    signature = tuple(
        tf.TensorSpec((None,) * array.ndim, tf.as_dtype(array.dtype)) for array in example
    )
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    # The count lets Keras size its progress bar; prefetch overlaps slicing with training.
    return dataset.apply(tf.data.experimental.assert_cardinality(batch_count)).prefetch(2)


@dataclass
class TrainingFeed:
    """Training batches for model.fit, in a new random order every epoch.

    Keras asks for a new pass over ``dataset`` each epoch; which epoch that is, ``epoch`` says
    (model.EpochTracker sets it in on_epoch_begin), so the batches depend on the epoch number and
    not on how many passes this process happened to make: a resumed training gets the same ones.
    """

    ids: np.ndarray  # (reviews, max_length)
    labels: np.ndarray  # (reviews,)
    batch_size: int
    padding: str
    seed: int
    bucket_by_length: bool  # else full-length rows in plain random order
    epoch: int = 0
    lengths: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.lengths = review_lengths(self.ids) if self.bucket_by_length else np.zeros(0)

    @property
    def batch_count(self) -> int:
        return -(-len(self.ids) // self.batch_size)

    def rows(self, epoch: int) -> list[np.ndarray]:
        """Each batch's row indices in ``epoch``."""
        rng = epoch_rng(self.seed, epoch)
        if self.bucket_by_length:
            return bucketed_rows(self.lengths, self.batch_size, rng)
        return shuffled_rows(len(self.ids), self.batch_size, rng)

    def batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for rows in self.rows(self.epoch):
            ids = self.ids[rows]
            if self.bucket_by_length:
                ids = trim_padding(ids, self.padding)
            yield ids, self.labels[rows]

    def dataset(self):
        return dataset_of(self.batches, self.batch_count, (self.ids[:1], self.labels[:1]))


@dataclass(frozen=True)
class SortedFeed:
    """Batches sorted by length and cut to their longest review, the same on every pass: feeds
    validation to model.fit (ids, labels) and prediction (ids alone). ``rows`` holds each batch's
    row indices, which put predictions back in input order."""

    dataset: object  # tf.data.Dataset
    rows: list[np.ndarray]


def sorted_feed(
    ids: np.ndarray, labels: np.ndarray | None, batch_size: int, padding: str
) -> SortedFeed:
    rows = sorted_rows(review_lengths(ids), batch_size)
    aligned = () if labels is None else (labels,)

    def batches():
        for r in rows:
            yield (trim_padding(ids[r], padding), *(array[r] for array in aligned))

    example = (ids[:1], *(array[:1] for array in aligned))
    return SortedFeed(dataset_of(batches, len(rows), example), rows)
