"""The model file: the same weights give the same bytes, and it records what it was trained on."""

from __future__ import annotations

import time
import zipfile

import numpy as np
import pytest

from imdb_rnn.encoding import Encoding
from imdb_rnn.errors import DataError
from imdb_rnn.model_file import (
    check_belongs_together,
    read_classifier,
    read_training_record,
    training_record,
    write_model,
)
from imdb_rnn.vocabulary import Vocabulary

pytestmark = pytest.mark.slow  # trains Keras models or starts processes

VOCABULARY = Vocabulary(tokens=("<pad>", "<oov>", "good", "bad"), counts=(0, 0, 2, 1))
ENCODING = Encoding(max_length=3, padding="post", truncating="pre")


def build():  # a bidirectional layer: its config shares objects by address
    import keras

    inputs = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(10, 3, mask_zero=True, name="embedding")(inputs)
    outputs = keras.layers.Bidirectional(keras.layers.GRU(2))(embedded)
    return keras.Model(inputs, keras.layers.Dense(1)(outputs))


@pytest.fixture
def saved_model(tmp_path):
    path = tmp_path / "model.keras"
    write_model(build(), path, training_record(VOCABULARY, ENCODING))
    return path


def test_the_same_weights_saved_by_two_model_objects_give_the_same_bytes(tmp_path):
    """Keras writes the save time and memory addresses into the archive; write_model does not."""
    import keras

    keras.backend.clear_session()  # layer names count up per process: start both from zero
    first = build()
    keras.backend.clear_session()  # restart Keras' per-process name counters, as a new run does
    second = build()
    second.set_weights(first.get_weights())
    record = training_record(VOCABULARY, ENCODING)
    write_model(first, tmp_path / "first.keras", record)
    time.sleep(1.1)  # metadata.json's date_saved has one-second resolution
    write_model(second, tmp_path / "second.keras", record)
    assert (tmp_path / "first.keras").read_bytes() == (tmp_path / "second.keras").read_bytes()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["first.keras", "second.keras"]
    loaded = read_classifier(tmp_path / "first.keras")
    ids = np.array([[3, 4, 0]])
    np.testing.assert_allclose(loaded.predict(ids, verbose=0), first.predict(ids, verbose=0))


def test_the_record_is_read_without_tensorflow_and_checked(saved_model, tmp_path):
    assert read_training_record(saved_model)["encoding"] == ENCODING.model_dump()
    check_belongs_together(saved_model, VOCABULARY, "v.json", ENCODING, "e.json")
    shuffled = Vocabulary(tokens=("<pad>", "<oov>", "bad", "good"), counts=(0, 0, 2, 1))
    with pytest.raises(DataError, match=r"was trained with another vocabulary than v\.json"):
        check_belongs_together(saved_model, shuffled, "v.json", ENCODING, "e.json")
    longer = Encoding(max_length=4, padding="post", truncating="pre")
    with pytest.raises(DataError, match="was trained with encoding"):
        check_belongs_together(saved_model, VOCABULARY, "v.json", longer, "e.json")


def test_a_truncated_model_file_is_named_not_missing(saved_model):
    saved_model.write_bytes(saved_model.read_bytes()[:1000])
    with pytest.raises(DataError, match="is not a readable Keras model file"):
        read_classifier(saved_model)


def test_a_model_without_the_record_is_refused(saved_model, tmp_path):
    foreign = tmp_path / "foreign.keras"
    with zipfile.ZipFile(saved_model) as source, zipfile.ZipFile(foreign, "w") as target:
        for member in source.infolist():
            content = source.read(member)
            if member.filename == "metadata.json":
                content = b'{"keras_version": "3"}'
            target.writestr(member, content)
    with pytest.raises(DataError, match="does not record the vocabulary and encoding"):
        read_training_record(foreign)
