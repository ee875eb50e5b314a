"""The recurrent sentiment classifier: building, training and predicting (its file: model_file).

Every architecture in the seed notebooks is one setting of TrainParams: SimpleRNN, LSTM or GRU,
optionally bidirectional and stacked, over an embedding initialised from the embed stage's matrix,
pooled to one vector (last state, global max or global mean), then an optional ReLU layer and one
sigmoid unit, the probability that the review is positive.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import keras
import numpy as np

from imdb_rnn.batching import TrainingFeed, dataset_of, sorted_feed
from imdb_rnn.cli import ProgressLog
from imdb_rnn.errors import TrainingDivergedError
from imdb_rnn.params import TrainParams

log = logging.getLogger(__name__)


class _MaskedPooling1D(keras.layers.Layer):
    """(batch, steps, features) to (batch, features), over the real (unmasked) steps only."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return None  # one vector per review: nothing left to mask

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="imdb_rnn")
class MaskedGlobalMaxPooling1D(_MaskedPooling1D):
    """Maximum over time of each feature, over real (unmasked) steps only.

    Keras' GlobalMaxPooling1D ignores the padding mask, and a bidirectional layer's backward half
    outputs zeros at padded steps, so the same review would score differently with more padding.
    A review with no real step at all pools to zeros.
    """

    def call(self, inputs, mask=None):  # inputs: (batch, steps, features); mask: (batch, steps)
        if mask is None:
            return keras.ops.max(inputs, axis=1)
        real_steps = keras.ops.expand_dims(keras.ops.cast(mask, "bool"), -1)
        pooled = keras.ops.max(keras.ops.where(real_steps, inputs, float("-inf")), axis=1)
        return keras.ops.where(keras.ops.any(real_steps, axis=1), pooled, 0.0)  # (batch, features)


@keras.saving.register_keras_serializable(package="imdb_rnn")
class MaskedGlobalAveragePooling1D(_MaskedPooling1D):
    """Mean over time of each feature, over real (unmasked) steps only.

    Keras' GlobalAveragePooling1D divides by the number of real steps, which is zero for a review
    with no known word after tokenizing ("...", an emoji): its probability was NaN. Such a review
    pools to zeros here, as with MaskedGlobalMaxPooling1D; every other review gets the same sum and
    division as Keras' layer computes.
    """

    def call(self, inputs, mask=None):  # inputs: (batch, steps, features); mask: (batch, steps)
        if mask is None:
            return keras.ops.mean(inputs, axis=1)
        real_steps = keras.ops.expand_dims(keras.ops.cast(mask, inputs.dtype), -1)
        total = keras.ops.sum(inputs * real_steps, axis=1)
        return total / keras.ops.maximum(keras.ops.sum(real_steps, axis=1), 1.0)


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

    Keras 3 falls back to the generic (much slower) kernel for SimpleRNN and for any recurrent
    dropout; and, deciding per batch, for masks that are not right-padded (tokenize.padding:
    post keeps them so; that section is not the train stage's, so it is not checked here).
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

    # Both poolings honour the padding mask, and give an empty review zeros (their docstrings say
    # why Keras' own GlobalMaxPooling1D and GlobalAveragePooling1D are not used).
    if params.pooling == "max":
        features = MaskedGlobalMaxPooling1D(name="global_max_pooling")(features)
    elif params.pooling == "mean":
        features = MaskedGlobalAveragePooling1D(name="global_mean_pooling")(features)
    if params.head_dropout:
        features = keras.layers.Dropout(params.head_dropout)(features)
    if params.dense_units:
        features = keras.layers.Dense(params.dense_units, activation="relu")(features)
    probability = keras.layers.Dense(1, activation="sigmoid", name="positive_probability")(features)
    return keras.Model(token_ids, probability, name=f"{params.model}_classifier")


@keras.saving.register_keras_serializable(package="imdb_rnn")
def binary_crossentropy(labels, probabilities):
    """Keras' binary cross-entropy, on the logits behind a sigmoid output, with its gradient
    written out instead of derived by TensorFlow.

    TensorFlow derives the gradient of log1p through its Reciprocal op, whose CPU kernel (Eigen's
    fast-math reciprocal) starts from the processor's approximate-reciprocal instruction, and
    Intel, AMD and an emulator each approximate it differently in the last bits: the same
    training then gave other weights on each. The loss's exact gradient with respect to the logits,
    sigmoid(logit) - label, needs no reciprocal, and is what the derived one approximates anyway.
    The loss values are Keras' own (tf.nn.sigmoid_cross_entropy_with_logits).
    """
    import tensorflow as tf

    logits = _sigmoid_logits(probabilities)
    if logits is None:
        # Not the model's output: a distribution strategy first traces the loss on a placeholder.
        return keras.losses.binary_crossentropy(labels, probabilities)
    labels = tf.cast(labels, logits.dtype)

    @tf.custom_gradient
    def cross_entropy(logits):  # (batch, 1)
        def gradient(upstream):
            return upstream * (tf.math.sigmoid(logits) - labels)

        return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits), gradient

    return tf.reduce_mean(cross_entropy(logits), axis=-1)  # (batch,), as Keras' loss returns


def _sigmoid_logits(probabilities):
    """The input of the sigmoid that made ``probabilities``, found as Keras' own loss finds it:
    Keras' sigmoid tags its output with it, and in a graph it is the Sigmoid op's input; None if
    ``probabilities`` comes from no sigmoid."""
    logits = getattr(probabilities, "_keras_logits", None)
    tensor = probabilities
    # A distribution strategy hands the loss an Identity of the model's output.
    while logits is None and getattr(getattr(tensor, "op", None), "type", None) == "Identity":
        tensor = tensor.op.inputs[0]
    if logits is None:
        logits = getattr(tensor, "_keras_logits", None)
    if logits is None and getattr(getattr(tensor, "op", None), "type", None) == "Sigmoid":
        logits = tensor.op.inputs[0]
    return logits


def compile_classifier(model: keras.Model, params: TrainParams) -> keras.Model:
    optimizer_class = OPTIMIZERS[params.optimizer]
    optimizer = optimizer_class(
        learning_rate=params.learning_rate, weight_decay=params.weight_decay
    )
    model.compile(optimizer=optimizer, loss=binary_crossentropy, metrics=["accuracy"])
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


class EpochTracker(keras.callbacks.Callback):
    """Tells the training feed which epoch Keras is about to run, before it asks for batches."""

    def __init__(self, feed: TrainingFeed):
        super().__init__()
        self.feed = feed

    def on_epoch_begin(self, epoch, logs=None):
        self.feed.epoch = epoch


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """End training with a clear error when an epoch's loss is NaN or infinite.

    Keras' TerminateOnNaN only stops early, and the stage would then save (and DVC record) a
    broken model. This runs before the logger and the checkpoint (fit_classifier puts it first),
    so raising here leaves every output unwritten. Checked once per epoch, not per batch: one
    non-finite batch makes the epoch's mean loss non-finite too, and a per-batch check would make
    Keras copy every batch's logs from the device.
    """

    def __init__(self, learning_rate: float):
        super().__init__()
        self.learning_rate = learning_rate

    def on_epoch_end(self, epoch, logs=None):
        for name in ("loss", "val_loss"):
            value = (logs or {}).get(name)
            if value is not None and not math.isfinite(float(value)):
                raise TrainingDivergedError(
                    f"the {name.replace('val_', 'validation ')} became {float(value)} in epoch"
                    f" {epoch + 1}; nothing was saved. Lower train.learning_rate (now"
                    f" {self.learning_rate}) or check the inputs"
                )


def predict_probabilities(
    model: keras.Model, ids: np.ndarray, batch_size: int, padding: str
) -> np.ndarray:
    """P(positive) for each row of a padded id array, in its order.

    A model that masks padding is fed length-sorted batches cut to their longest review (same
    probabilities, less work); one that reads padding as input gets the rows as they are.
    """
    progress = _PredictionProgress(-(-len(ids) // batch_size))
    if not model.get_layer("embedding").mask_zero:
        return model.predict(ids, batch_size=batch_size, verbose=0, callbacks=[progress])[:, 0]
    feed = sorted_feed(ids, None, batch_size, padding)
    sorted_probabilities = model.predict(feed.dataset, verbose=0, callbacks=[progress])
    probabilities = np.empty(len(ids), dtype=sorted_probabilities.dtype)
    probabilities[np.concatenate(feed.rows)] = sorted_probabilities[:, 0]
    return probabilities


class _PredictionProgress(keras.callbacks.Callback):
    """A log line every ten seconds or so while predicting many reviews."""

    def __init__(self, batches: int):
        super().__init__()
        self.progress = ProgressLog("predicted batches", batches)

    def on_predict_batch_end(self, batch, logs=None):
        self.progress.update(batch + 1)


def fit_classifier(
    model: keras.Model,
    params: TrainParams,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    padding: str,
    callbacks: Sequence[keras.callbacks.Callback],
    initial_epoch: int = 0,
    final_epoch: int | None = None,
    verbose: int | str = "auto",
) -> None:
    """Train as the train stage does, from ``initial_epoch`` (0, or where a resumed run left off)
    up to ``final_epoch`` (params.epochs unless given; equal to ``initial_epoch``, it runs no
    epoch, only what the callbacks do when training ends, such as restoring the best weights).

    ``train`` and ``validation`` are (padded ids, labels); ``padding`` is the tokenize stage's
    side, needed to cut length-bucketed batches. ``callbacks`` are training_callbacks(params)
    plus the caller's (logging, checkpoints), which run after the built-in guards. The benchmark
    calls this too, so that it times exactly the stage's training path.
    """
    feed = TrainingFeed(*train, params.batch_size, padding, params.seed, params.bucket_by_length)
    if params.mask_padding:
        validation_data = sorted_feed(*validation, params.batch_size, padding).dataset
    else:  # the model reads padding as input: score full-length rows, as the notebooks do
        validation_data = dataset_of(
            lambda: _row_batches(*validation, params.batch_size),
            -(-len(validation[0]) // params.batch_size),
            (validation[0][:1], validation[1][:1]),
        )
    model.fit(
        feed.dataset(),
        validation_data=validation_data,
        initial_epoch=initial_epoch,
        epochs=params.epochs if final_epoch is None else final_epoch,
        shuffle=False,  # the feed shuffles, in a new order every epoch
        callbacks=[
            EpochTracker(feed),
            StopOnNonFiniteLoss(params.learning_rate),
            *callbacks,
        ],
        verbose=verbose,
    )


def _row_batches(ids: np.ndarray, labels: np.ndarray, batch_size: int):
    for start in range(0, len(ids), batch_size):
        yield ids[start : start + batch_size], labels[start : start + batch_size]


def saved_epoch(callbacks: list[keras.callbacks.Callback], epochs_done: int) -> int:
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
    return epochs_done - 1
