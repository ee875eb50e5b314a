"""The recurrent member pretrained as a language model on the unlabelled reviews, measured.

Not part of the test suite, and not a stage: an experiment of issue 20 (after Dai & Le 2015 and
ULMFiT's language-model fine-tuning on IMDB text alone), kept so that its rows of docs/results.md
can be rerun. Reads a full `dvc repro`'s outputs: the tokenized splits with their vocabulary and
encoding, the Word2Vec matrix, the unlabelled reviews of data/raw/ (encoded here with the same
vocabulary), and the members' probabilities.

Two steps, on the very model the train stage builds from params.yaml's `train` section:

1. **Language model.** The classifier's embedding and bidirectional recurrent layer read the
   training plus unlabelled reviews; at every position the forward direction's state predicts the
   next word and the backward direction's state the previous one, each through its own output
   layer with a sampled softmax (`--sampled` noise words drawn from the unigram^0.75
   distribution; padding and out-of-vocabulary ids are never targets). Adam, length-bucketed
   batches. The pretrained layers are saved after every epoch under `--checkpoints`, and a rerun
   with more `--lm-epochs` continues from the last one.
2. **Fine-tuning.** The classifier (its head new) is then trained exactly as the train stage
   trains it (same params, callbacks and batches), and scored alone and stacked on validation
   with the linear member, as the combine stage stacks; test accuracy is reported beside,
   never used to choose. The control is the reference run's own recurrent member: the same
   training from the Word2Vec initialisation alone. With `--head-epochs N`, the new head is
   first trained alone for N epochs over the frozen pretrained layers (ULMFiT's first step of
   gradual unfreezing): a head that starts random sends large gradients into the layers the
   language model trained, which the first fine-tuning epochs could otherwise undo.

Keras 3's Adam applies an embedding's IndexedSlices gradient occurrence by occurrence (see
benchmarks/region_cnn.py); the language model's gradients are summed per row first.

    python benchmarks/lm_pretraining.py --out benchmarks/lm_pretraining.json --lm-epochs 1
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from imdb_rnn.numerics import pin_kernels

pin_kernels()  # before NumPy and TensorFlow load, as every stage does

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402
from region_cnn import (  # noqa: E402
    FIRST_WORD_ID,
    IdSequences,
    accuracy,
    append_row,
    as_ids,
    stacked_scores,
    summed_rows,
)

from imdb_rnn.batching import bucketed_rows, review_lengths  # noqa: E402
from imdb_rnn.encoding import Encoding, encode, pad_and_truncate, read_encoding  # noqa: E402
from imdb_rnn.environment import cpu_description  # noqa: E402
from imdb_rnn.model import (  # noqa: E402
    build_classifier,
    compile_classifier,
    fit_classifier,
    predict_probabilities,
    seed_everything,
    training_callbacks,
)
from imdb_rnn.params import TrainParams, load_section  # noqa: E402
from imdb_rnn.predictions import SCORED_SPLITS, read_predictions  # noqa: E402
from imdb_rnn.text import tokenize  # noqa: E402
from imdb_rnn.vocabulary import PADDING_ID, Vocabulary, read_vocabulary  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
TOKENIZED = REPOSITORY / "data/tokenized"
PRETRAINED_LAYERS = ("embedding", "bidirectional_1")
log = logging.getLogger("lm_pretraining")


class LanguageModelHead(keras.layers.Layer):
    """One direction's output layer: a sampled softmax over the vocabulary when training."""

    def __init__(self, vocabulary_size: int, units: int, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.kernel = self.add_weight(
            shape=(vocabulary_size, units), initializer="glorot_uniform", name="kernel"
        )
        self.bias = self.add_weight(shape=(vocabulary_size,), initializer="zeros", name="bias")

    def sampled_loss(self, states, targets, sampled_values):
        """Mean sampled-softmax cross-entropy of (positions, units) states against their words."""
        return tf.reduce_mean(
            tf.nn.sampled_softmax_loss(
                self.kernel,
                self.bias,
                tf.cast(targets[:, None], tf.int64),
                states,
                num_sampled=int(sampled_values[0].shape[0]),
                num_classes=self.vocabulary_size,
                sampled_values=sampled_values,
            )
        )


def pretrain(
    classifier: keras.Model, token_ids: np.ndarray, word_counts: np.ndarray, args
) -> list[dict]:
    """Step 1, in place on the classifier's embedding and recurrent layer; the loss per epoch."""
    embedding = classifier.get_layer("embedding")
    recurrent = classifier.get_layer("bidirectional_1")
    units = recurrent.forward_layer.units
    vocabulary_size = len(word_counts)
    forward_head = LanguageModelHead(vocabulary_size, units, name="next_word")
    backward_head = LanguageModelHead(vocabulary_size, units, name="previous_word")
    dropout = keras.layers.SpatialDropout1D(args.lm_dropout)
    variables = [
        *embedding.trainable_variables,
        *recurrent.trainable_variables,
        *forward_head.trainable_variables,
        *backward_head.trainable_variables,
    ]
    optimizer = keras.optimizers.Adam(args.lm_learning_rate, clipnorm=1.0)
    unigrams = [float(count) for count in word_counts]

    def sampled(targets):
        return tf.random.fixed_unigram_candidate_sampler(
            tf.cast(targets[:, None], tf.int64),
            num_true=1,
            num_sampled=args.sampled,
            unique=True,
            range_max=vocabulary_size,
            distortion=0.75,
            unigrams=unigrams,
        )

    @tf.function(input_signature=[IdSequences])
    def step(ids):
        with tf.GradientTape() as tape:
            mask = embedding.compute_mask(ids)
            states = recurrent(
                dropout(embedding(ids), training=True), mask=mask, training=True
            )  # (batch, length, 2 * units): forward states, then backward ones
            forward_states, backward_states = states[:, :-1, :units], states[:, 1:, units:]
            earlier, later = ids[:, :-1], ids[:, 1:]
            losses = []
            # A state predicts the word beside it: only where it read a word itself (not
            # padding), and never padding or out-of-vocabulary.
            for head, own_states, own_words, targets in (
                (forward_head, forward_states, earlier, later),
                (backward_head, backward_states, later, earlier),
            ):
                real = (targets >= FIRST_WORD_ID) & (own_words != PADDING_ID)
                real_targets = tf.boolean_mask(targets, real)
                losses.append(
                    head.sampled_loss(
                        tf.boolean_mask(own_states, real), real_targets, sampled(real_targets)
                    )
                )
            loss = (losses[0] + losses[1]) / 2
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip([summed_rows(g) for g in gradients], variables, strict=True))
        return loss

    checkpoints = args.checkpoints
    checkpoints.mkdir(parents=True, exist_ok=True)
    done = sorted(checkpoints.glob("epoch-*.weights.npz"))
    first_epoch = 0
    if done:  # continue from the last saved epoch (Adam's moments start afresh)
        first_epoch = int(done[-1].name.split("-")[1].split(".")[0])
        load_pretrained(classifier, done[-1], (forward_head, backward_head))
        log.info("continuing the language model after epoch %d", first_epoch)
    lengths, history = review_lengths(token_ids), []
    for epoch in range(first_epoch, args.lm_epochs):
        started, losses = time.monotonic(), []
        batches = bucketed_rows(lengths, args.lm_batch_size, np.random.default_rng([42, epoch]))
        for number, batch in enumerate(batches):
            losses.append(float(step(as_ids(token_ids[batch]))))
            if number % 100 == 0:
                log.info(
                    "epoch %d batch %d/%d: loss %.4f (mean of the last 100 %.4f)",
                    epoch + 1,
                    number,
                    len(batches),
                    losses[-1],
                    np.mean(losses[-100:]),
                )
        history.append(
            {
                "epoch": epoch + 1,
                "loss": float(np.mean(losses)),
                "seconds": round(time.monotonic() - started),
            }
        )
        log.info("language model %s", json.dumps(history[-1]))
        save_pretrained(
            classifier,
            (forward_head, backward_head),
            checkpoints / f"epoch-{epoch + 1:02d}.weights.npz",
        )
    return history


def save_pretrained(classifier: keras.Model, heads: tuple, path: Path) -> None:
    """The pretrained layers and the language model's output layers, one array per weight."""
    layers = [classifier.get_layer(name) for name in PRETRAINED_LAYERS] + list(heads)
    np.savez(
        path,
        **{
            f"{layer.name}/{index}": array
            for layer in layers
            for index, array in enumerate(layer.get_weights())
        },
    )


def load_pretrained(classifier: keras.Model, path: Path, heads: tuple = ()) -> None:
    """What save_pretrained wrote; output layers an older checkpoint lacks start afresh."""
    layers = [classifier.get_layer(name) for name in PRETRAINED_LAYERS] + list(heads)
    with np.load(path) as saved:
        for layer in layers:
            names = [f"{layer.name}/{index}" for index in range(len(layer.get_weights()))]
            if all(name in saved for name in names):
                layer.set_weights([saved[name] for name in names])


def train_head_alone(
    model: keras.Model, params: TrainParams, train: tuple, inputs: Inputs, epochs: int
) -> dict:
    """Fit the classifier's head for ``epochs`` over its frozen pretrained layers, which are
    then unfrozen for the training that follows; the curves of these epochs."""
    pretrained = [model.get_layer(name) for name in PRETRAINED_LAYERS]
    for layer in pretrained:
        layer.trainable = False
    compile_classifier(model, params)
    history = keras.callbacks.History()
    validation = (inputs.ids["validation"], inputs.labels["validation"])
    fit_classifier(
        model,
        params,
        train,
        validation,
        inputs.encoding.padding,
        [history],
        final_epoch=epochs,
        verbose=2,
    )
    for layer in pretrained:
        layer.trainable = True
    return rounded(history)


def rounded(history: keras.callbacks.History) -> dict:
    return {key: [round(float(v), 4) for v in values] for key, values in history.history.items()}


def replacing_the_rnn(new: str) -> tuple:
    """A new recurrent member stacked in the existing one's place, and beside both members."""
    return ((new, "linear"), (new, "rnn", "linear"))


def train_params(learning_rate: float | None) -> TrainParams:
    """params.yaml's train section, the learning rate overridden if given."""
    params = load_section("train", TrainParams, REPOSITORY / "params.yaml")
    if learning_rate is None:
        return params
    return params.model_copy(update={"learning_rate": learning_rate})


@dataclass
class Inputs:
    """What a full `dvc repro` left that the experiments read; the first rows in a smoke run."""

    encoding: Encoding
    vocabulary: Vocabulary
    ids: dict[str, np.ndarray]  # padded ids per split: train, validation, test
    labels: dict[str, np.ndarray]
    unlabelled_texts: list[str]
    unlabelled_ids: np.ndarray  # encoded with the same vocabulary and encoding


def read_inputs(first: slice) -> Inputs:
    encoding = read_encoding(TOKENIZED / "encoding.json")
    vocabulary = read_vocabulary(TOKENIZED / "vocabulary.json")
    ids = {s: np.load(TOKENIZED / f"{s}_ids.npy")[first] for s in ("train", *SCORED_SPLITS)}
    labels = {split: np.load(TOKENIZED / f"{split}_labels.npy")[first] for split in ids}
    texts = pd.read_parquet(REPOSITORY / "data/raw/unlabelled.parquet", columns=["text"])["text"]
    texts = texts[first].tolist()
    unlabelled_ids = pad_and_truncate(
        encode((tokenize(text) for text in texts), vocabulary), encoding
    )
    return Inputs(encoding, vocabulary, ids, labels, texts, unlabelled_ids)


def trained_and_scored(
    model: keras.Model,
    params: TrainParams,
    train: tuple[np.ndarray, np.ndarray],
    inputs: Inputs,
    first: slice,
    name: str,
) -> tuple[dict, dict, dict]:
    """Train a new recurrent member as the train stage trains (on ``train``: ids, labels), then
    score it: its accuracy per split, its stacks in the existing member's place, its curves."""
    compile_classifier(model, params)
    history = keras.callbacks.History()
    padding = inputs.encoding.padding
    fit_classifier(
        model,
        params,
        train,
        (inputs.ids["validation"], inputs.labels["validation"]),
        padding,
        [*training_callbacks(params), history],
        verbose=2,
    )
    probabilities = {
        split: predict_probabilities(model, inputs.ids[split], 512, padding)
        for split in SCORED_SPLITS
    }
    labels = inputs.labels
    members = existing_members(first) | {name: probabilities}
    return (
        {split: accuracy(probabilities[split], labels[split]) for split in SCORED_SPLITS},
        stacked_scores(members, labels, replacing_the_rnn(name)),
        rounded(history),
    )


def append_result(
    path: Path, row: dict, started: float, inputs: Inputs, logger: logging.Logger
) -> None:
    """append_row, with what every run records: its time, its unlabelled reviews and its CPU."""
    facts = {
        "seconds": round(time.monotonic() - started),
        "unlabelled_reviews": len(inputs.unlabelled_ids),
        "cpu": cpu_description(),
    }
    append_row(path, row | facts, logger)


def existing_members(first: slice) -> dict:
    """The reference run's members' probabilities per split (the first rows of a smoke run)."""
    return {
        name: {
            split: probabilities[first]
            for split, probabilities in read_predictions(
                REPOSITORY / f"data/predictions/{name}.npz"
            ).items()
        }
        for name in ("rnn", "linear")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to append the row to")
    parser.add_argument("--checkpoints", type=Path, required=True, help="pretrained layers' folder")
    parser.add_argument("--lm-epochs", type=int, default=1)
    parser.add_argument("--lm-learning-rate", type=float, default=1e-3)
    parser.add_argument("--lm-batch-size", type=int, default=64)
    parser.add_argument("--lm-dropout", type=float, default=0.1)
    parser.add_argument("--sampled", type=int, default=256, help="noise words per direction")
    parser.add_argument("--learning-rate", type=float, help="fine-tuning's (default: params.yaml)")
    parser.add_argument(
        "--head-epochs", type=int, default=0, help="epochs of the new head alone before fine-tuning"
    )
    parser.add_argument("--reviews", type=int, help="only the first N of each split (a smoke run)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    started = time.monotonic()

    params, first = train_params(args.learning_rate), slice(args.reviews)
    inputs = read_inputs(first)
    ids, labels = inputs.ids, inputs.labels
    word_counts = np.asarray(inputs.vocabulary.counts, np.float64)  # 0 for padding and OOV

    seed_everything(params.seed, params.deterministic)
    classifier = build_classifier(params, np.load(REPOSITORY / "data/embedding/matrix.npy"))
    lm_history = pretrain(
        classifier, np.concatenate([ids["train"], inputs.unlabelled_ids]), word_counts, args
    )
    pretraining_seconds = time.monotonic() - started

    train = (ids["train"], labels["train"])
    head_alone = (
        train_head_alone(classifier, params, train, inputs, args.head_epochs)
        if args.head_epochs
        else None
    )
    accuracies, stacked, fine_tuning = trained_and_scored(
        classifier, params, train, inputs, first, "pretrained_rnn"
    )
    row = {
        "settings": {k: str(v) for k, v in vars(args).items() if k != "out"},
        "fine_tuning_learning_rate": params.learning_rate,
        "pretrained_rnn": accuracies,
        "stacked": stacked,
        "language_model": lm_history,
        "head_alone": head_alone,
        "fine_tuning": fine_tuning,
        "pretraining_seconds": round(pretraining_seconds),
    }
    append_result(args.out, row, started, inputs, log)


if __name__ == "__main__":
    main()
