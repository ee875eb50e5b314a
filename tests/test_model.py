"""Every architecture variant builds on a tiny vocabulary and takes a training step."""

from __future__ import annotations

import copy
import warnings

import keras
import numpy as np
import pytest

from imdb_rnn.batching import TrainingFeed
from imdb_rnn.encoding import Encoding
from imdb_rnn.errors import TrainingDivergedError
from imdb_rnn.model import (
    build_classifier,
    compile_classifier,
    fit_classifier,
    predict_probabilities,
    saved_epoch,
    seed_everything,
    training_callbacks,
    uses_cudnn_kernels,
)
from imdb_rnn.model_file import read_classifier, training_record, write_model
from imdb_rnn.params import TrainParams
from imdb_rnn.vocabulary import build_vocabulary

pytestmark = pytest.mark.slow  # trains Keras models or starts processes

VOCABULARY_SIZE, DIMENSION = 20, 4


def train_params(default_params, **overrides) -> TrainParams:
    values = copy.deepcopy(default_params["train"]) | {"units": 3, "batch_size": 4} | overrides
    return TrainParams.model_validate(values)


@pytest.fixture
def matrix() -> np.ndarray:
    rng = np.random.default_rng(0)
    embedding_matrix = rng.normal(size=(VOCABULARY_SIZE, DIMENSION)).astype(np.float32)
    embedding_matrix[0] = 0
    return embedding_matrix


@pytest.fixture
def batch() -> tuple[np.ndarray, np.ndarray]:
    ids = np.array(
        [[5, 6, 7, 0, 0, 0], [8, 9, 10, 11, 12, 13], [2, 0, 0, 0, 0, 0], [3, 4, 0, 0, 0, 0]]
    )
    return ids.astype(np.int32), np.array([1, 0, 1, 0], dtype=np.int8)


# Each cell and direction once, every pooling twice, then the seeds' special features.
VARIANTS = [
    {"model": "simple_rnn", "bidirectional": False, "pooling": "last"},
    {"model": "simple_rnn", "bidirectional": True, "pooling": "mean"},
    {"model": "lstm", "bidirectional": False, "pooling": "max"},
    {"model": "lstm", "bidirectional": True, "pooling": "last"},
    {"model": "gru", "bidirectional": False, "pooling": "mean"},
    {"model": "gru", "bidirectional": True, "pooling": "max"},
    {"model": "simple_rnn", "num_layers": 2, "between_layer_dropout": 0.5, "head_dropout": 0.5},
    {"model": "lstm", "num_layers": 2, "bidirectional": True, "pooling": "max", "dense_units": 5},
    {
        "model": "gru",
        "dropout": 0.2,
        "recurrent_dropout": 0.1,
        "mask_padding": False,
        "bucket_by_length": False,
    },
    {"model": "lstm", "embedding_trainable": False, "optimizer": "adamw", "weight_decay": 0.01},
    {"model": "simple_rnn", "optimizer": "rmsprop", "spatial_dropout": 0.0, "head_dropout": 0.0},
]


@pytest.mark.parametrize(
    "overrides", VARIANTS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items())
)
def test_every_variant_builds_and_takes_a_training_step(default_params, matrix, batch, overrides):
    params = train_params(default_params, **overrides)
    model = compile_classifier(build_classifier(params, matrix), params)
    ids, labels = batch
    before = [weight.copy() for weight in model.get_weights()]
    history = model.fit(ids, labels, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    probabilities = model.predict(ids, verbose=0)
    assert probabilities.shape == (4, 1) and np.all((probabilities > 0) & (probabilities < 1))
    changed = [
        not np.array_equal(old, new) for old, new in zip(before, model.get_weights(), strict=True)
    ]
    assert any(changed)
    recurrent = [
        layer
        for layer in model.layers
        if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))
    ]
    assert len(recurrent) == params.num_layers


def test_embedding_starts_from_the_matrix_and_can_be_frozen(default_params, matrix, batch):
    params = train_params(default_params, embedding_trainable=False)
    model = compile_classifier(build_classifier(params, matrix), params)
    np.testing.assert_array_equal(model.get_layer("embedding").get_weights()[0], matrix)
    model.fit(*batch, batch_size=4, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.get_layer("embedding").get_weights()[0], matrix)


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_masked_padding_does_not_change_the_prediction(default_params, matrix, pooling):
    """A review padded to 6 ids scores as the same review unpadded, with the same weights."""
    padded, unpadded = np.array([[5, 6, 0, 0, 0, 0]]), np.array([[5, 6]])
    seed_everything(0, deterministic=False)
    predictions = {}
    for mask_padding in (True, False):
        params = train_params(
            default_params,
            model="gru",
            bidirectional=True,
            pooling=pooling,
            mask_padding=mask_padding,
            bucket_by_length=mask_padding,
        )
        model = build_classifier(params, matrix)
        predictions[mask_padding] = (
            model.predict(padded, verbose=0),
            model.predict(unpadded, verbose=0),
        )
    np.testing.assert_allclose(*predictions[True], rtol=1e-5)
    assert not np.allclose(*predictions[False], rtol=1e-5)


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_a_review_without_a_known_word_gets_a_finite_probability(default_params, matrix, pooling):
    """Tokenizing "..." or an emoji leaves no id: the row is all padding."""
    params = train_params(default_params, pooling=pooling, mask_padding=True)
    probability = build_classifier(params, matrix).predict(np.zeros((2, 6), np.int32), verbose=0)
    assert np.isfinite(probability).all()


def test_same_seed_gives_the_same_training_result(default_params, matrix, batch):
    params = train_params(default_params)
    losses = []
    for _ in range(2):
        seed_everything(params.seed, deterministic=True)
        model = compile_classifier(build_classifier(params, matrix), params)
        losses.append(model.fit(*batch, batch_size=2, epochs=2, verbose=0).history["loss"])
    assert losses[0] == losses[1]


def test_callbacks_follow_their_patience(default_params):
    default = train_params(default_params)
    kinds = {type(callback).__name__ for callback in training_callbacks(default)}
    assert kinds == {"EarlyStopping", "ReduceLROnPlateau"}
    off = train_params(
        default_params,
        early_stopping=default_params["train"]["early_stopping"] | {"patience": 0},
        reduce_lr=default_params["train"]["reduce_lr"] | {"patience": 0},
    )
    assert training_callbacks(off) == []


def test_cudnn_eligibility(default_params):
    assert uses_cudnn_kernels(train_params(default_params, model="lstm"))
    assert not uses_cudnn_kernels(train_params(default_params, model="lstm", recurrent_dropout=0.1))
    assert not uses_cudnn_kernels(train_params(default_params, model="simple_rnn"))


def test_saved_model_loads_in_safe_mode_with_identical_predictions(
    default_params, matrix, batch, tmp_path
):
    params = train_params(default_params, pooling="max")  # the custom layer must load too
    model = compile_classifier(build_classifier(params, matrix), params)
    record = training_record(
        build_vocabulary([["a"]], 5, 1), Encoding(max_length=6, padding="post", truncating="pre")
    )
    write_model(model, tmp_path / "model.keras", record)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. a layer that cannot be rebuilt from its config
        loaded = read_classifier(tmp_path / "model.keras")
    assert isinstance(loaded, keras.Model)
    np.testing.assert_allclose(
        loaded.predict(batch[0], verbose=0), model.predict(batch[0], verbose=0)
    )


def test_saved_epoch_follows_early_stopping_restoration(default_params):
    restoring = keras.callbacks.EarlyStopping(restore_best_weights=True)
    restoring.best_weights, restoring.best_epoch = [np.zeros(1)], 2
    assert saved_epoch([restoring], epochs_done=5) == 2
    keeping_last = keras.callbacks.EarlyStopping(restore_best_weights=False)
    keeping_last.best_weights, keeping_last.best_epoch = [np.zeros(1)], 2
    assert saved_epoch([keeping_last], epochs_done=5) == 4
    assert saved_epoch([], epochs_done=5) == 4


@pytest.mark.parametrize("mask_padding", [True, False])
def test_predictions_come_back_in_input_order(default_params, matrix, mask_padding):
    """Length-sorted, trimmed prediction gives each review the probability plain predict does."""
    params = train_params(default_params, mask_padding=mask_padding, bucket_by_length=False)
    model = build_classifier(params, matrix)
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 12, size=37)
    ids = np.zeros((37, 12), dtype=np.int32)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(2, VOCABULARY_SIZE, size=length)
    expected = model.predict(ids, verbose=0)[:, 0]
    np.testing.assert_allclose(
        predict_probabilities(model, ids, batch_size=5, padding="post"), expected, rtol=1e-5
    )


def test_bucketed_training_is_reproducible_and_reshuffles_each_epoch(default_params, matrix):
    params = train_params(default_params, bucket_by_length=True)
    rng = np.random.default_rng(2)
    ids = np.zeros((40, 10), dtype=np.int32)
    for row, length in enumerate(rng.integers(1, 11, size=40)):
        ids[row, :length] = rng.integers(2, VOCABULARY_SIZE, size=length)
    labels = rng.integers(0, 2, size=40).astype(np.int8)

    def widths_per_epoch():
        feed = TrainingFeed(ids, labels, 4, "post", seed=7, bucket_by_length=True)
        widths = []
        for epoch in range(2):
            feed.epoch = epoch
            widths.append([int(batch[0].shape[1]) for batch in feed.dataset()])
        return widths

    first, second = widths_per_epoch()
    assert len(first) == 10 and max(first) <= 10 and min(first) < 10  # padding was cut
    assert first != second  # a new order each epoch ...
    assert widths_per_epoch() == [first, second]  # ... and the same orders on a rerun

    losses = []
    for _ in range(2):
        seed_everything(params.seed, deterministic=True)
        model = compile_classifier(build_classifier(params, matrix), params)
        history = keras.callbacks.History()
        fit_classifier(
            model, params, (ids, labels), (ids, labels), "post", callbacks=[history], verbose=0
        )
        losses.append(history.history["loss"])
    assert losses[0] == losses[1] and all(np.isfinite(losses[0]))


@pytest.mark.parametrize("bucket_by_length", [True, False])
def test_fit_classifier_trains_either_way_and_reports_the_saved_epoch(
    default_params, matrix, bucket_by_length
):
    params = train_params(
        default_params, bucket_by_length=bucket_by_length, epochs=3, mask_padding=True
    )
    rng = np.random.default_rng(3)
    ids = np.zeros((24, 8), dtype=np.int32)
    for row, length in enumerate(rng.integers(1, 9, size=24)):
        ids[row, :length] = rng.integers(2, VOCABULARY_SIZE, size=length)
    labels = rng.integers(0, 2, size=24).astype(np.int8)
    seed_everything(params.seed, deterministic=True)
    model = compile_classifier(build_classifier(params, matrix), params)
    schedule = training_callbacks(params)
    history = keras.callbacks.History()
    fit_classifier(
        model,
        params,
        (ids[:16], labels[:16]),
        (ids[16:], labels[16:]),
        "post",
        callbacks=[*schedule, history],
        verbose=0,
    )
    epochs = history.history
    assert len(epochs["loss"]) <= 3 and set(epochs) >= {"loss", "val_loss", "val_accuracy"}
    assert 0 <= saved_epoch(schedule, len(epochs["loss"])) < len(epochs["loss"])


def test_a_loss_that_becomes_nan_stops_training_with_a_clear_error(default_params, matrix, batch):
    params = train_params(default_params, epochs=3)
    broken = matrix.copy()
    broken[2:] = np.nan  # any cause of a non-finite loss will do
    model = compile_classifier(build_classifier(params, broken), params)
    with pytest.raises(
        TrainingDivergedError,
        match=r"the loss became nan in epoch 1; nothing was saved.*learning_rate",
    ):
        fit_classifier(model, params, batch, batch, "post", callbacks=[], verbose=0)


def test_an_empty_epoch_range_only_ends_training(default_params, matrix, batch):
    """What a resumed run does when early stopping had already ended it: restore, nothing more."""
    params = train_params(default_params, epochs=2)
    model = compile_classifier(build_classifier(params, matrix), params)
    ended = []

    class Ending(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            ended.append(f"epoch {epoch}")

        def on_train_end(self, logs=None):
            ended.append("end")

    fit_classifier(
        model, params, batch, batch, "post", callbacks=[Ending()], initial_epoch=2,
        final_epoch=2, verbose=0,
    )  # fmt: skip
    assert ended == ["end"]


# TensorFlow ops whose CPU kernels (Eigen's fast-math reciprocal and reciprocal square root) start
# from the processor's approximate-reciprocal instructions, which Intel, AMD and emulators round
# differently: one of them in a training step makes the model's bits depend on the CPU.
CPU_DEPENDENT_OPS = {"Reciprocal", "ReciprocalGrad", "Inv", "InvGrad", "Rsqrt", "RsqrtGrad"}


def op_types(function, *args) -> set[str]:
    """Every op type in a traced function's graph, the bodies of its loops included."""
    import tensorflow as tf

    graph = tf.function(function).get_concrete_function(*args).graph.as_graph_def()
    types = {node.op for node in graph.node}
    for body in graph.library.function:
        types |= {node.op for node in body.node_def}
    return types


# The defaults, then each optimizer (their updates are where a square root or reciprocal lives).
@pytest.mark.parametrize(
    "overrides",
    [{}, *(variant for variant in VARIANTS if "optimizer" in variant)],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_no_training_or_prediction_op_rounds_differently_on_another_cpu(
    default_params, matrix, batch, overrides
):
    import tensorflow as tf

    params = train_params(default_params, **overrides)
    model = compile_classifier(build_classifier(params, matrix), params)
    ids, labels = (tf.constant(array) for array in batch)

    def training_step(ids, labels):
        with tf.GradientTape() as tape:
            probabilities = model(ids, training=True)
            loss = model.compute_loss(x=ids, y=labels, y_pred=probabilities)
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply(gradients, model.trainable_variables)

    training_ops = op_types(training_step, ids, labels)
    assert "MatMul" in training_ops  # the graph was really traced, loop bodies included
    assert not training_ops & CPU_DEPENDENT_OPS
    assert not op_types(lambda ids: model(ids, training=False), ids) & CPU_DEPENDENT_OPS
