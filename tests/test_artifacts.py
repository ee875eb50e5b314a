from __future__ import annotations

import numpy as np
import pytest

from imdb_rnn import artifacts
from imdb_rnn.errors import DataError
from imdb_rnn.text import build_vocabulary


def test_failed_write_leaves_neither_the_target_nor_a_temporary_file(tmp_path):
    target = tmp_path / "out" / "report.json"
    with pytest.raises(RuntimeError), artifacts.atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("interrupted")
    assert list((tmp_path / "out").iterdir()) == []


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "report.json"
    artifacts.write_json({"old": 1}, target)
    with pytest.raises(TypeError):
        artifacts.write_json({"bad": object()}, target)
    assert artifacts.read_json(target) == {"old": 1}
    assert [path.name for path in tmp_path.iterdir()] == ["report.json"]


def test_arrays_round_trip_with_identical_bytes(tmp_path):
    ids = np.arange(12, dtype=np.int32).reshape(3, 4)
    labels = np.array([0, 1, 1], dtype=np.int8)
    artifacts.write_arrays(tmp_path / "a.npz", ids=ids, labels=labels)
    artifacts.write_arrays(tmp_path / "b.npz", ids=ids, labels=labels)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = artifacts.read_arrays(tmp_path / "a.npz")
    np.testing.assert_array_equal(loaded["ids"], ids)
    assert loaded["labels"].dtype == np.int8


def test_reviews_round_trip_with_identical_bytes(tmp_path, toy_reviews):
    artifacts.write_reviews(toy_reviews, tmp_path / "a.parquet")
    artifacts.write_reviews(toy_reviews, tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert artifacts.read_reviews(tmp_path / "a.parquet").equals(toy_reviews)


def test_vocabulary_round_trips_through_plain_json(tmp_path):
    vocabulary = build_vocabulary([["b", "a", "a"]], 10, 1)
    artifacts.write_vocabulary(vocabulary, tmp_path / "vocabulary.json")
    assert artifacts.read_vocabulary(tmp_path / "vocabulary.json") == vocabulary
    assert artifacts.read_json(tmp_path / "vocabulary.json")["tokens"] == [
        "<pad>",
        "<oov>",
        "a",
        "b",
    ]


def test_reading_a_missing_or_foreign_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist; run the stage that writes it"):
        artifacts.read_vocabulary(tmp_path / "vocabulary.json")
    artifacts.write_json({"words": []}, tmp_path / "other.json")
    with pytest.raises(DataError, match="is not a vocabulary"):
        artifacts.read_vocabulary(tmp_path / "other.json")


def test_token_corpus_round_trip(tmp_path):
    corpus = [["a", "b"], [], ["café", "!"]]
    artifacts.write_token_corpus(corpus, tmp_path / "tokens.txt")
    assert artifacts.read_token_corpus(tmp_path / "tokens.txt") == corpus


def test_the_same_weights_saved_by_two_model_objects_give_the_same_bytes(tmp_path):
    """Keras writes the save time and memory addresses into the archive; write_model does not."""
    import time

    import keras

    def build() -> keras.Model:  # a bidirectional layer: its config shares objects by address
        inputs = keras.Input((None,), dtype="int32")
        embedded = keras.layers.Embedding(10, 3, mask_zero=True)(inputs)
        outputs = keras.layers.Bidirectional(keras.layers.GRU(2))(embedded)
        return keras.Model(inputs, keras.layers.Dense(1)(outputs))

    first = build()
    keras.backend.clear_session()  # restart Keras' per-process name counters, as a new run does
    second = build()
    second.set_weights(first.get_weights())
    artifacts.write_model(first, tmp_path / "first.keras")
    time.sleep(1.1)  # metadata.json's date_saved has one-second resolution
    artifacts.write_model(second, tmp_path / "second.keras")
    assert (tmp_path / "first.keras").read_bytes() == (tmp_path / "second.keras").read_bytes()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["first.keras", "second.keras"]
    from imdb_rnn.model import read_classifier

    loaded = read_classifier(tmp_path / "first.keras")
    ids = np.array([[3, 4, 0]])
    np.testing.assert_allclose(loaded.predict(ids, verbose=0), first.predict(ids, verbose=0))
