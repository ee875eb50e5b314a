from __future__ import annotations

import numpy as np
import pytest

from imdb_rnn.text import (
    OOV_ID,
    PADDING_ID,
    Vocabulary,
    build_vocabulary,
    describe_encoding,
    encode,
    encode_reviews,
    normalize,
    pad_and_truncate,
    tokenize,
)


def test_normalize_removes_html_breaks_and_lowercases():
    assert normalize("Great.<br /><br />REALLY great") == "great.  really great"


def test_tokenize_keeps_contractions_and_sentiment_punctuation():
    assert tokenize("I didn\u2019t like it... Isn't it AWFUL?!") == [
        "i",
        "didn't",
        "like",
        "it",
        "isn't",
        "it",
        "awful",
        "?",
        "!",
    ]


def test_tokenize_drops_other_punctuation_and_keeps_accents_and_numbers():
    assert tokenize("Café-au-lait (2001), rated 7/10; _meh_") == [
        "café",
        "au",
        "lait",
        "2001",
        "rated",
        "7",
        "10",
        "meh",
    ]


def test_vocabulary_orders_by_frequency_then_alphabetically_and_reserves_ids():
    vocabulary = build_vocabulary(
        [["b", "a", "c"], ["a", "b", "d"]], vocab_size=10, min_frequency=1
    )
    assert vocabulary.tokens == ("<pad>", "<oov>", "a", "b", "c", "d")
    assert vocabulary.counts == (0, 0, 2, 2, 1, 1)
    assert vocabulary.ids["a"] == 2


def test_vocabulary_applies_cap_and_min_frequency():
    token_lists = [["x"] * 5 + ["y"] * 3 + ["z"]]
    assert build_vocabulary(token_lists, vocab_size=3, min_frequency=1).tokens[2:] == ("x",)
    assert build_vocabulary(token_lists, vocab_size=10, min_frequency=2).tokens[2:] == ("x", "y")


def test_vocabulary_never_gives_reserved_tokens_a_second_id():
    vocabulary = build_vocabulary([["<pad>", "<oov>", "word"]], vocab_size=10, min_frequency=1)
    assert vocabulary.tokens == ("<pad>", "<oov>", "word")


def test_vocabulary_rejects_a_token_list_without_reserved_ids():
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary(tokens=("a",), counts=(1,))


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
    padded = pad_and_truncate([[1, 2, 3, 4, 5], [7]], 3, padding, truncating)
    assert padded.dtype == np.int32
    np.testing.assert_array_equal(padded, expected)


def test_empty_review_becomes_all_padding():
    np.testing.assert_array_equal(pad_and_truncate([[]], 2, "post", "pre"), [[PADDING_ID] * 2])


def test_encode_reviews_is_the_whole_text_to_ids_path(toy_reviews):
    vocabulary = build_vocabulary(
        (tokenize(text) for text in toy_reviews["text"]), vocab_size=100, min_frequency=1
    )
    padded = encode_reviews(["A WONDERFUL film!", "zzz"], vocabulary, 4, "post", "pre")
    ids = vocabulary.ids
    assert padded.tolist() == [
        [ids["a"], ids["wonderful"], ids["film"], ids["!"]],
        [OOV_ID, PADDING_ID, PADDING_ID, PADDING_ID],
    ]


def test_describe_encoding_reports_oov_rate_and_truncation():
    report = describe_encoding([[2, OOV_ID, 3, 4], [OOV_ID]], max_length=3)
    assert report == {"mean_tokens": 2.5, "oov_rate": 0.4, "truncated_share": 0.5}
