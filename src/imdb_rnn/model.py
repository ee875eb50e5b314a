"""The recurrent sentiment classifier: building, compiling and the training callbacks.

Every architecture in the seed notebooks is one setting of TrainParams: SimpleRNN, LSTM or GRU,
optionally bidirectional and stacked, over an embedding initialised from the embed stage's matrix,
pooled to one vector (last state, global max or global mean), then an optional ReLU layer and one
sigmoid unit, the probability that the review is positive.
"""

from __future__ import annotations

import logging

import keras
import numpy as np

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


def build_classifier(
    params: TrainParams, embedding_matrix: np.ndarray, max_length: int
) -> keras.Model:
    """The Keras model, uncompiled. ``embedding_matrix`` is (vocabulary ids, dimension)."""
    vocabulary_size, dimension = embedding_matrix.shape
    token_ids = keras.Input(shape=(max_length,), dtype="int32", name="token_ids")
    # mask_zero tells the recurrent layers to skip padding (id 0) rather than read it as a word.
    embedded = keras.layers.Embedding(
        vocabulary_size,
        dimension,
        weights=[embedding_matrix],
        trainable=params.embedding_trainable,
        mask_zero=params.mask_padding,
        name="embedding",
    )(token_ids)  # (batch, max_length, dimension)
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
        # (batch, max_length, units * directions), or (batch, units * directions) if pooled "last"
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
