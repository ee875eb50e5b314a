"""The recurrent sentiment classifier: building, training, reading back and predicting.

Every architecture in the seed notebooks is one setting of TrainParams: SimpleRNN, LSTM or GRU,
optionally bidirectional and stacked, over an embedding initialised from the embed stage's matrix,
pooled to one vector (last state, global max or global mean), then an optional ReLU layer and one
sigmoid unit, the probability that the review is positive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import keras
import numpy as np

from imdb_rnn import artifacts, batching
from imdb_rnn.params import TrainParams

log = logging.getLogger(__name__)


@keras.saving.register_keras_serializable(package="imdb_rnn")
class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """Maximum over time of each feature, over real (unmasked) steps only.

    Keras' GlobalMaxPooling1D ignores the padding mask, and a bidirectional layer's backward half
    outputs zeros at padded steps, so the same review would score differently with more padding.
    A review with no real step at all pools to zeros.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):  # inputs: (batch, steps, features); mask: (batch, steps)
        if mask is None:
            return keras.ops.max(inputs, axis=1)
        real_steps = keras.ops.expand_dims(keras.ops.cast(mask, "bool"), -1)
        pooled = keras.ops.max(keras.ops.where(real_steps, inputs, float("-inf")), axis=1)
        return keras.ops.where(keras.ops.any(real_steps, axis=1), pooled, 0.0)  # (batch, features)

    def compute_mask(self, inputs, mask=None):
        return None  # one vector per review: nothing left to mask

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


RECURRENT_LAYERS = {
    "simple_rnn": keras.layers.SimpleRNN,
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
}
OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "rmsprop": keras.optimizers.RMSprop,
}


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and the backend; optionally make TensorFlow's ops deterministic.

    Op determinism makes reruns identical to the last digit at some cost in speed (TensorFlow then
    picks deterministic kernels, e.g. for the embedding gradient's scatter-add).
    """
    keras.utils.set_random_seed(seed)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def uses_cudnn_kernels(params: TrainParams) -> bool:
    """Whether Keras can run the recurrent layers on cuDNN when a GPU is present.

    Keras 3 falls back to the generic (much slower) kernel for SimpleRNN, for any recurrent
    dropout, and for masks that are not right-padded (tokenize.padding: post keeps them so).
    """
    return params.model in ("lstm", "gru") and params.recurrent_dropout == 0


def build_classifier(params: TrainParams, embedding_matrix: np.ndarray) -> keras.Model:
    """The Keras model, uncompiled. ``embedding_matrix`` is (vocabulary ids, dimension).

    The model takes batches of any length (steps=None), so that length-bucketed batches can be
    cut to their longest review; the tokenize stage's max_length still caps every review.
    """
    vocabulary_size, dimension = embedding_matrix.shape
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    # mask_zero tells the recurrent layers to skip padding (id 0) rather than read it as a word.
    embedded = keras.layers.Embedding(
        vocabulary_size,
        dimension,
        weights=[embedding_matrix],
        trainable=params.embedding_trainable,
        mask_zero=params.mask_padding,
        name="embedding",
    )(token_ids)  # (batch, steps, dimension)
    features = embedded
    if params.spatial_dropout:
        features = keras.layers.SpatialDropout1D(params.spatial_dropout)(features)

    recurrent_layer = RECURRENT_LAYERS[params.model]
    for index in range(params.num_layers):
        is_last = index == params.num_layers - 1
        layer = recurrent_layer(
            params.units,
            dropout=params.dropout,
            recurrent_dropout=params.recurrent_dropout,
            # the last layer returns only its final state when that is the pooling
            return_sequences=not (is_last and params.pooling == "last"),
            name=f"{params.model}_{index + 1}",
        )
        if params.bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"bidirectional_{index + 1}")
        # (batch, steps, units * directions), or (batch, units * directions) if pooled "last"
        features = layer(features)
        if not is_last and params.between_layer_dropout:
            features = keras.layers.Dropout(params.between_layer_dropout)(features)

    # Both poolings honour the padding mask (see MaskedGlobalMaxPooling1D for why Keras' own
    # GlobalMaxPooling1D is not used).
    if params.pooling == "max":
        features = MaskedGlobalMaxPooling1D(name="global_max_pooling")(features)
    elif params.pooling == "mean":
        features = keras.layers.GlobalAveragePooling1D(name="global_mean_pooling")(features)
    if params.head_dropout:
        features = keras.layers.Dropout(params.head_dropout)(features)
    if params.dense_units:
        features = keras.layers.Dense(params.dense_units, activation="relu")(features)
    probability = keras.layers.Dense(1, activation="sigmoid", name="positive_probability")(features)
    return keras.Model(token_ids, probability, name=f"{params.model}_classifier")


def compile_classifier(model: keras.Model, params: TrainParams) -> keras.Model:
    optimizer_class = OPTIMIZERS[params.optimizer]
    optimizer = optimizer_class(
        learning_rate=params.learning_rate, weight_decay=params.weight_decay
    )
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    return model


def training_callbacks(params: TrainParams) -> list[keras.callbacks.Callback]:
    """Early stopping and the reduce-on-plateau schedule, each off when its patience is 0."""
    callbacks: list[keras.callbacks.Callback] = []
    stopping = params.early_stopping
    if stopping.patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=stopping.monitor,
                patience=stopping.patience,
                restore_best_weights=stopping.restore_best_weights,
                verbose=1,
            )
        )
    schedule = params.reduce_lr
    if schedule.patience:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=schedule.monitor,
                patience=schedule.patience,
                factor=schedule.factor,
                min_lr=schedule.min_learning_rate,
                verbose=1,
            )
        )
    return callbacks


def batch_dataset(
    batches: Callable[[], Iterable[tuple[np.ndarray, ...]]],
    batch_count: int,
    example: tuple[np.ndarray, ...],
):
    """A tf.data pipeline over NumPy batches whose number of steps varies from batch to batch.

    ``batches`` is called once per pass (each epoch, or each predict call) and yields tuples
    shaped like ``example``: (ids,) or (ids, labels). Keras' own PyDataset cannot be used, as it
    fixes each dimension from the first two batches it sees.
    """
    import tensorflow as tf

    signature = tuple(
        tf.TensorSpec((None,) * array.ndim, tf.as_dtype(array.dtype)) for array in example
    )
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    # The count lets Keras size its progress bar; prefetch overlaps slicing with training.
    return dataset.apply(tf.data.experimental.assert_cardinality(batch_count)).prefetch(2)


def bucketed_training_data(
    ids: np.ndarray, labels: np.ndarray, batch_size: int, padding: str, seed: int
):
    """Training batches for model.fit: length-bucketed, reshuffled every epoch (see batching)."""
    epochs = batching.training_batches(ids, labels, batch_size, padding, seed)
    batch_count = -(-len(ids) // batch_size)
    return batch_dataset(lambda: next(epochs), batch_count, (ids, labels))


def length_sorted_data(
    batch_size: int, padding: str, ids: np.ndarray, *row_aligned: np.ndarray
) -> tuple[object, list[np.ndarray]]:
    """Batches sorted by length and cut to their longest review, the same on every pass.

    Feeds validation to model.fit (ids, labels) and prediction (ids alone). Returns the tf.data
    pipeline and each batch's row indices, which put predictions back in input order.
    """
    rows = batching.length_sorted_batches(batching.review_lengths(ids), batch_size)

    def batches():
        for r in rows:
            yield (batching.trim_padding(ids[r], padding), *(array[r] for array in row_aligned))

    return batch_dataset(batches, len(rows), (ids, *row_aligned)), rows


def predict_probabilities(
    model: keras.Model, ids: np.ndarray, batch_size: int, padding: str
) -> np.ndarray:
    """P(positive) for each row of a padded id array, in its order.

    A model that masks padding is fed length-sorted batches cut to their longest review (same
    probabilities, less work); one that reads padding as input gets the rows as they are.
    """
    if not model.get_layer("embedding").mask_zero:
        return model.predict(ids, batch_size=batch_size, verbose=0)[:, 0]
    dataset, rows = length_sorted_data(batch_size, padding, ids)
    sorted_probabilities = model.predict(dataset, verbose=0)
    probabilities = np.empty(len(ids), dtype=sorted_probabilities.dtype)
    probabilities[np.concatenate(rows)] = sorted_probabilities[:, 0]
    return probabilities


def read_classifier(path: Path) -> keras.Model:
    """A classifier the train stage saved (artifacts.write_model), in Keras' safe mode: no
    arbitrary code runs. Its config names MaskedGlobalMaxPooling1D, which this module registers.
    """
    return keras.saving.load_model(artifacts.existing(path), compile=False, safe_mode=True)


def fit_classifier(
    model: keras.Model,
    params: TrainParams,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    padding: str,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
) -> tuple[dict[str, list[float]], int]:
    """Train as the train stage does; return the per-epoch history and the 0-based saved epoch.

    ``train`` and ``validation`` are (padded ids, labels); ``padding`` is the tokenize stage's
    side, needed to cut length-bucketed batches. The benchmark calls this too, so that it times
    exactly the stage's training path.
    """
    if params.bucket_by_length:
        inputs = {
            "x": bucketed_training_data(*train, params.batch_size, padding, params.seed),
            "validation_data": length_sorted_data(params.batch_size, padding, *validation)[0],
            "shuffle": False,  # the batches come shuffled, in a new order every epoch
        }
    else:  # Keras' own shuffling over full-length rows, as in the seed notebooks
        inputs = {
            "x": train[0],
            "y": train[1],
            "validation_data": validation,
            "batch_size": params.batch_size,
        }
    callbacks = training_callbacks(params)
    history = model.fit(
        **inputs, epochs=params.epochs, callbacks=[*callbacks, *extra_callbacks], verbose=verbose
    )
    return history.history, saved_epoch(callbacks, len(history.history["loss"]))


def saved_epoch(callbacks: list[keras.callbacks.Callback], epochs_run: int) -> int:
    """The 0-based epoch whose weights the model ends training with.

    EarlyStopping with restore_best_weights rolls the model back to its best epoch at the end of
    training (whether or not it stopped early); otherwise the model holds the last epoch's weights.
    """
    for callback in callbacks:
        if (
            isinstance(callback, keras.callbacks.EarlyStopping)
            and callback.restore_best_weights
            and callback.best_weights is not None
        ):
            return callback.best_epoch
    return epochs_run - 1
