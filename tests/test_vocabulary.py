"""The id conventions, the vocabulary, and the vocabulary file."""

from __future__ import annotations

import json

import pytest

from imdb_rnn import artifacts
from imdb_rnn.errors import DataError
from imdb_rnn.vocabulary import Vocabulary, build_vocabulary, read_vocabulary, write_vocabulary


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


def test_vocabulary_round_trips_through_plain_json(tmp_path):
    vocabulary = build_vocabulary([["b", "a", "a"]], 10, 1)
    write_vocabulary(vocabulary, tmp_path / "vocabulary.json")
    assert read_vocabulary(tmp_path / "vocabulary.json") == vocabulary
    assert artifacts.read_json(tmp_path / "vocabulary.json")["tokens"] == [
        "<pad>",
        "<oov>",
        "a",
        "b",
    ]


def test_the_fingerprint_changes_with_the_id_of_any_word_but_not_with_the_counts():
    vocabulary = Vocabulary(tokens=("<pad>", "<oov>", "a", "b"), counts=(0, 0, 5, 3))
    recounted = Vocabulary(tokens=vocabulary.tokens, counts=(0, 0, 9, 9))
    shuffled = Vocabulary(tokens=("<pad>", "<oov>", "b", "a"), counts=vocabulary.counts)
    assert vocabulary.fingerprint == recounted.fingerprint
    assert vocabulary.fingerprint != shuffled.fingerprint


def test_reading_a_missing_or_foreign_vocabulary_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist; run the stage that writes it"):
        read_vocabulary(tmp_path / "vocabulary.json")
    artifacts.write_json({"words": []}, tmp_path / "other.json")
    with pytest.raises(DataError, match="is not a vocabulary"):
        read_vocabulary(tmp_path / "other.json")
    (tmp_path / "twice.json").write_text(
        json.dumps({"tokens": ["<pad>", "<oov>", "a", "a"], "counts": [0, 0, 1, 1]})
    )
    with pytest.raises(DataError, match="appears twice"):
        read_vocabulary(tmp_path / "twice.json")
