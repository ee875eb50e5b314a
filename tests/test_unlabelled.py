from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from imdb_rnn.data import word_counts
from imdb_rnn.errors import DataError
from imdb_rnn.unlabelled import UnlabelledSelector, summarize_unlabelled, text_digests

SCORED = ["A validation review.", "A test review.<br /><br />It was fine."]


def select_all(selector: UnlabelledSelector, *chunks: list) -> list[str]:
    kept = [selector.select(pd.Series(chunk, dtype=object)) for chunk in chunks]
    return [text for texts in kept for text in texts]


def test_copies_of_scored_reviews_repeats_and_empty_reviews_are_dropped_and_counted():
    selector = UnlabelledSelector("unsup.parquet", text_digests(SCORED), limit=None)
    kept = select_all(
        selector,
        ["Good.", SCORED[1], "Good.", "   ", "Bad.", SCORED[0]],  # a repeat in the same chunk
        ["Bad.", "A training review.", SCORED[1], None, "Ugly.", "Good."],  # ... and across chunks
    )
    assert kept == ["Good.", "Bad.", "A training review.", "Ugly."]  # the first copy, in order
    summary = summarize_unlabelled(selector, word_counts(kept))
    assert summary == {
        "enabled": True,
        "rows": 4,
        "dropped_copies_of_validation_or_test": 3,
        "dropped_repeats": 3,
        "dropped_empty": 2,
        "mean_words": 1.5,
        "median_words": 1.0,
        "p95_words": 2.7,
    }


def test_only_exact_copies_are_dropped():
    """Texts as the split files hold them: a copy with other spacing or case is another text."""
    selector = UnlabelledSelector("unsup.parquet", text_digests(SCORED), limit=None)
    near = [" " + SCORED[0], SCORED[0].lower(), SCORED[1].replace("<br />", "")]
    assert select_all(selector, near) == near


def test_the_cap_keeps_the_first_reviews_and_counts_only_those_read():
    selector = UnlabelledSelector("unsup.parquet", text_digests(SCORED), limit=3)
    kept = select_all(selector, ["a", SCORED[0], "a", "b"], ["", "c", "d", SCORED[1], "e"])
    assert kept == ["a", "b", "c"] and selector.full
    assert summarize_unlabelled(selector, word_counts(kept))["dropped_empty"] == 1
    assert selector.counts.tolist() == [3, 1, 1, 1]  # "d" and what follows were not read


def test_a_source_without_reviews_is_an_error():
    selector = UnlabelledSelector("unsup.csv", text_digests(SCORED), limit=None)
    select_all(selector, [])
    with pytest.raises(DataError, match=r"^unsup.csv: no unlabelled reviews; check the file, or"):
        selector.finish()
    select_all(selector, [" ", "\n"])
    with pytest.raises(DataError, match=r"^unsup.csv: every unlabelled review is empty"):
        selector.finish()


def test_no_unlabelled_reviews_give_a_report_without_nan():
    """NumPy's mean of no lengths is NaN, which reports/data.json cannot hold."""
    disabled = summarize_unlabelled(None, np.empty(0, dtype=np.int64))
    assert disabled["enabled"] is False and disabled["rows"] == 0
    assert disabled["mean_words"] is None and disabled["p95_words"] is None
    json.dumps(disabled, allow_nan=False)
    every_one_a_copy = UnlabelledSelector("unsup.parquet", text_digests(SCORED), limit=None)
    assert select_all(every_one_a_copy, SCORED) == []
    every_one_a_copy.finish()  # nothing kept is not an error: the report says why
    summary = summarize_unlabelled(every_one_a_copy, np.empty(0, dtype=np.int64))
    assert summary["rows"] == 0 and summary["median_words"] is None


def test_text_digests_tell_texts_apart_by_their_bytes():
    digests = text_digests(["café", "cafe\u0301", "café", ""])
    assert digests.dtype == np.dtype("S16") and len(set(digests.tolist())) == 3
    assert digests[0] == digests[2]
