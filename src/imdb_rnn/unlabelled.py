"""Unlabelled reviews: which of them ingest keeps, a chunk at a time, and their summary.

Unsupervised learners (word vectors, language models) may read every review without a label,
but must never read a text they are later scored on. So, in the source's order, ingest drops

* empty or whitespace-only reviews, as in the labelled splits;
* exact copies of a validation or test review, compared with the texts as the split files hold
  them (IMDB's split `unsupervised` holds about 270 copies of test reviews); a copy of a training
  review stays, since the labelled training split is read by every learner anyway;
* repeats of an unlabelled review kept earlier (the first copy is kept).

Texts are compared by their digests, held sorted in NumPy arrays: 16 bytes per scored review and
per kept unlabelled review (under 2 MB for IMDB), never the texts themselves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import pandas as pd

from imdb_rnn.data import length_stats
from imdb_rnn.errors import DataError

# 16-byte BLAKE2b digests: two different texts share one with probability about 2^-128.
DIGEST_BYTES = 16
DIGEST = f"S{DIGEST_BYTES}"
# What happens to each unlabelled review; the first that applies, in this order of precedence:
# EMPTY, then COPY_OF_SCORED, then REPEAT.
KEPT, EMPTY, COPY_OF_SCORED, REPEAT = range(4)


def text_digests(texts: Iterable[str]) -> np.ndarray:
    """The digest of each text's UTF-8 bytes, as an array of dtype ``DIGEST``."""
    digests = [
        hashlib.blake2b(text.encode("utf-8"), digest_size=DIGEST_BYTES).digest() for text in texts
    ]
    return np.array(digests, dtype=DIGEST)


def _contains(sorted_digests: np.ndarray, digests: np.ndarray) -> np.ndarray:
    """Whether each of ``digests`` is among ``sorted_digests`` (sorted)."""
    if len(sorted_digests) == 0:
        return np.zeros(len(digests), dtype=bool)
    positions = np.minimum(np.searchsorted(sorted_digests, digests), len(sorted_digests) - 1)
    return sorted_digests[positions] == digests


class UnlabelledSelector:
    """Chooses, one chunk at a time, the unlabelled reviews to keep, and counts those dropped.

    ``scored_digests`` are those of the validation and test reviews as written (``text_digests``);
    at most ``limit`` reviews are kept (None: all), the first ones. ``origin`` names the input in
    error messages.
    """

    def __init__(self, origin: str, scored_digests: np.ndarray, limit: int | None):
        self.origin = origin
        self.limit = limit
        self.scored = np.unique(scored_digests)
        self.kept_digests = np.empty(0, dtype=DIGEST)  # sorted
        self.counts = np.zeros(4, dtype=np.int64)  # reviews read, by fate

    @property
    def kept(self) -> int:
        return int(self.counts[KEPT])

    @property
    def full(self) -> bool:
        """Whether the cap is reached: the caller reads no further."""
        return self.limit is not None and self.kept >= self.limit

    def select(self, texts: pd.Series) -> pd.Series:
        """The texts of ``texts`` to keep, in order, cleaned as the labelled splits' texts are."""
        # As ReviewCleaner does, so that a copy of a scored review has the very same text.
        texts = texts.astype("string").fillna("")
        digests = text_digests(texts)
        fates = self._fates(digests, (texts.str.strip() == "").to_numpy(dtype=bool))
        kept_rows = np.flatnonzero(fates == KEPT)
        if self.limit is not None and len(kept_rows) > self.limit - self.kept:
            # A review's fate depends only on those before it, so the reviews after the last one
            # the cap admits are left unread, as in a source that ended there.
            end = kept_rows[self.limit - self.kept - 1] + 1
            texts, digests, fates = texts.iloc[:end], digests[:end], fates[:end]
        self.counts += np.bincount(fates, minlength=len(self.counts))
        keep = fates == KEPT
        new = np.sort(digests[keep])  # distinct, and none kept before
        self.kept_digests = np.insert(
            self.kept_digests, np.searchsorted(self.kept_digests, new), new
        )
        return texts[keep].astype(str)

    def _fates(self, digests: np.ndarray, empty: np.ndarray) -> np.ndarray:
        first_in_chunk = np.zeros(len(digests), dtype=bool)
        first_in_chunk[np.unique(digests, return_index=True)[1]] = True
        fates = np.full(len(digests), KEPT, dtype=np.int64)
        fates[~first_in_chunk | _contains(self.kept_digests, digests)] = REPEAT
        fates[_contains(self.scored, digests)] = COPY_OF_SCORED
        fates[empty] = EMPTY
        return fates

    def finish(self) -> None:
        """Raise the error the whole input earned, if any: a source of unlabelled reviews that
        has none is a wrong file, not an empty output to discover downstream."""
        if self.counts.sum() == 0:
            raise DataError(
                f"{self.origin}: no unlabelled reviews; check the file, or set"
                " ingest.unlabelled: false"
            )
        if self.counts[EMPTY] == self.counts.sum():
            raise DataError(f"{self.origin}: every unlabelled review is empty or whitespace")


def summarize_unlabelled(selector: UnlabelledSelector | None, lengths: np.ndarray) -> dict:
    """The `unlabelled` entry of reports/data.json; ``selector`` is None when ingest.unlabelled
    is false, and ``lengths`` are those of the reviews kept, in words."""
    counts = selector.counts if selector is not None else np.zeros(4, dtype=np.int64)
    return {
        "enabled": selector is not None,
        "rows": int(counts[KEPT]),
        "dropped_copies_of_validation_or_test": int(counts[COPY_OF_SCORED]),
        "dropped_repeats": int(counts[REPEAT]),
        "dropped_empty": int(counts[EMPTY]),
        **length_stats(lengths),
    }
