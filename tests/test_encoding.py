"""Token lists to id matrices, and the encoding file every reader of ids checks."""

from __future__ import annotations

import numpy as np
import pytest

from imdb_rnn import artifacts
from imdb_rnn.encoding import (
    Encoding,
    EncodingStats,
    encode,
    pad_and_truncate,
    read_encoding,
    write_encoding,
)
from imdb_rnn.errors import DataError
from imdb_rnn.vocabulary import OOV_ID, PADDING_ID, build_vocabulary


def test_encode_maps_unknown_words_to_oov():
    vocabulary = build_vocabulary([["good", "good", "film"]], vocab_size=10, min_frequency=1)
    assert encode([["good", "unseen", "film"]], vocabulary) == [[2, OOV_ID, 3]]


@pytest.mark.parametrize(
    ("padding", "truncating", "expected"),
    [
        ("post", "pre", [[3, 4, 5], [7, 0, 0]]),
        ("post", "post", [[1, 2, 3], [7, 0, 0]]),
        ("pre", "pre", [[3, 4, 5], [0, 0, 7]]),
        ("pre", "post", [[1, 2, 3], [0, 0, 7]]),
    ],
)
def test_pad_and_truncate(padding, truncating, expected):
    encoding = Encoding(max_length=3, padding=padding, truncating=truncating)
    padded = pad_and_truncate([[1, 2, 3, 4, 5], [7]], encoding)
    assert padded.dtype == np.int32
    np.testing.assert_array_equal(padded, expected)


def test_empty_review_becomes_all_padding():
    encoding = Encoding(max_length=2, padding="post", truncating="pre")
    np.testing.assert_array_equal(pad_and_truncate([[]], encoding), [[PADDING_ID] * 2])


def test_describe_encoding_reports_oov_rate_and_truncation():
    stats = EncodingStats(max_length=3)
    stats.add([[2, OOV_ID, 3, 4]])
    stats.add([[OOV_ID]])  # chunk by chunk: the same as all at once
    assert stats.report() == {"mean_tokens": 2.5, "oov_rate": 0.4, "truncated_share": 0.5}


def test_encoding_round_trips_and_a_broken_file_is_named(tmp_path):
    encoding = Encoding(max_length=5, padding="post", truncating="pre")
    write_encoding(encoding, tmp_path / "encoding.json")
    assert read_encoding(tmp_path / "encoding.json") == encoding
    artifacts.write_json({"max_length": 5, "padding": "post"}, tmp_path / "missing.json")
    with pytest.raises(
        DataError, match=r"missing\.json is not an encoding.*truncating: Field required"
    ):
        read_encoding(tmp_path / "missing.json")
