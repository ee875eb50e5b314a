"""Length-bucketed batches: reviews of similar length go together, each batch cut to its longest.

A recurrent layer steps through every column of its input, and a masked padding step costs as much
as a real one. IMDB reviews are padded to ``tokenize.max_length`` (400) but the median review has
176 tokens, so more than half of a plain epoch would be spent stepping through padding. Grouping
reviews of similar length and cutting each batch's padding columns computes the same model
(padding is masked, so no output depends on it) in about half the time on a CPU.

Training batches are still random: every epoch shuffles the reviews, sorts them by length only
within pools of ``BATCHES_PER_POOL`` batches, cuts the pools into batches and shuffles the batches.
The order is a pure function of the seed and the epoch number, so reruns are identical.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from imdb_rnn.text import PADDING_ID

# Large enough that a pool holds many reviews of every length (so batches are nearly uniform in
# length), small enough that each epoch still mixes short and long batches throughout.
BATCHES_PER_POOL = 50


def review_lengths(ids: np.ndarray) -> np.ndarray:
    """Real (non-padding) tokens of each row of a padded (reviews, max_length) id array."""
    return np.count_nonzero(ids != PADDING_ID, axis=1)


def bucketed_batches(
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


def length_sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Row indices in batches of increasing length, for prediction (no randomness needed)."""
    order = np.argsort(lengths, kind="stable")
    return [order[first : first + batch_size] for first in range(0, len(order), batch_size)]


def trim_padding(ids: np.ndarray, padding: str) -> np.ndarray:
    """Drop the padding columns no row of this batch needs (at least one column is kept)."""
    width = max(int(review_lengths(ids).max(initial=0)), 1)
    return ids[:, :width] if padding == "post" else ids[:, ids.shape[1] - width :]


def training_batches(
    ids: np.ndarray, labels: np.ndarray, batch_size: int, padding: str, seed: int
) -> Iterator[Iterator[tuple[np.ndarray, np.ndarray]]]:
    """One iterator of (trimmed ids, labels) batches per epoch, each epoch in a new order."""
    lengths = review_lengths(ids)
    for epoch in itertools.count():
        rng = np.random.default_rng([seed, epoch])
        yield (
            (trim_padding(ids[rows], padding), labels[rows])
            for rows in bucketed_batches(lengths, batch_size, rng)
        )
