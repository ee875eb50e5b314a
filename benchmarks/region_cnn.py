"""A semi-supervised region CNN (after Johnson & Zhang 2015) as a third member, measured.

Not part of the test suite, and not a stage: an experiment of issue 20, kept so that its rows of
docs/results.md can be rerun. Reads a full `dvc repro`'s outputs: the tokenized splits with their
vocabulary and encoding, the unlabelled reviews of data/raw/ (encoded here with the same
vocabulary), and both members' probabilities.

Two steps:

1. **Region embedding from unlabelled text** ("tv-embedding"): the bag of words in a window of
   `--tv-region` words, summed through a `--tv-dim` embedding, learns to predict the words of the
   two adjacent windows (negative sampling from the unigram^0.75 distribution, frequent targets
   subsampled as word2vec does), on the training plus unlabelled reviews.
2. **Supervised CNN**: at every position, a one-hot bag-of-words region of `--region` words
   (an embedding summed over the window) plus a learned projection of the frozen region embedding
   of the same position; ReLU, max over the review, dropout 0.5, a logistic output. Adam; the
   weights of the epoch with the lowest validation loss are kept.

The member is scored alone and stacked on validation with the existing members, as the combine
stage stacks; test accuracy is reported beside it, never used to choose.

Two things learned on the way, both easy to get wrong:
* Keras 3's Adam applies an embedding's IndexedSlices gradient occurrence by occurrence, so its
  second moment sums the squares of a row's gradients instead of squaring their sum: a word that
  occurs n times in a batch with agreeing gradients takes about sqrt(n) times the intended step.
  Here that made the negative-sampling loss rise; `summed_rows` adds duplicate rows first.
* A ReLU on the region embedding during step 1 dies within a few dozen steps (the negatives push
  every region vector to zero), so the embedding is linear there; the supervised layer has the ReLU.

    python benchmarks/region_cnn.py --out benchmarks/region_cnn.json [--learning-rate 0.003 ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from imdb_rnn.numerics import pin_kernels

pin_kernels()  # before NumPy and TensorFlow load, as every stage does

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

from imdb_rnn.batching import (  # noqa: E402
    bucketed_rows,
    review_lengths,
    shuffled_rows,
    trim_padding,
)
from imdb_rnn.combination import fit_combiner  # noqa: E402
from imdb_rnn.encoding import encode, pad_and_truncate, read_encoding  # noqa: E402
from imdb_rnn.environment import cpu_description  # noqa: E402
from imdb_rnn.evaluation import compute_metrics  # noqa: E402
from imdb_rnn.predictions import SCORED_SPLITS, read_predictions  # noqa: E402
from imdb_rnn.text import tokenize  # noqa: E402
from imdb_rnn.vocabulary import PADDING_ID, read_vocabulary  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
TOKENIZED = REPOSITORY / "data/tokenized"
FIRST_WORD_ID = 2  # ids 0 and 1 are padding and out-of-vocabulary: never a prediction target
THRESHOLD = 0.5
NEGATIVES_PER_TARGET = 5.0  # word2vec's weight of the noise words against one real neighbour
log = logging.getLogger("region_cnn")

IdSequences = tf.TensorSpec([None, None], tf.int32)  # (batch, length), length varies per batch


def summed_rows(gradient):
    """Add an IndexedSlices gradient's duplicate rows, so Adam sees one gradient per row."""
    if not isinstance(gradient, tf.IndexedSlices):
        return gradient
    rows, position = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])
    return tf.IndexedSlices(values, rows, gradient.dense_shape)


def region_sums(vectors: tf.Tensor, ids: tf.Tensor, width: int) -> tf.Tensor:
    """Sum each position's vector with its neighbours' in a centred window; padding adds nothing."""
    present = tf.cast(ids != PADDING_ID, vectors.dtype)[..., None]
    return tf.nn.avg_pool1d(vectors * present, width, 1, "SAME") * width  # (batch, length, dim)


def as_ids(batch: np.ndarray) -> tf.Tensor:
    """A batch without the padding columns all its reviews have, as the step functions take it."""
    return tf.constant(trim_padding(batch, "post"), tf.int32)  # params.yaml pads at the end


def train_region_embedding(
    token_ids: np.ndarray, word_counts: np.ndarray, args: argparse.Namespace
) -> tuple[np.ndarray, np.ndarray]:
    """Step 1: the region embedding (vectors, bias) that predicts each window's neighbours."""
    vocabulary_size, width = len(word_counts), args.tv_region
    vectors = tf.Variable(tf.random.normal([vocabulary_size, args.tv_dim], stddev=0.1, seed=1))
    bias = tf.Variable(tf.zeros([args.tv_dim]))
    output_vectors = tf.Variable(tf.zeros([vocabulary_size, args.tv_dim]))
    output_bias = tf.Variable(tf.zeros([vocabulary_size]))
    variables = [vectors, bias, output_vectors, output_bias]
    frequency = word_counts / word_counts.sum()
    rare = 1e-4 / np.maximum(frequency, 1e-12)  # word2vec's subsampling threshold
    keep_probability = tf.constant(np.minimum(1.0, np.sqrt(rare) + rare), tf.float32)
    noise = word_counts**0.75
    noise_logits = tf.constant(np.log(np.maximum(noise / noise.sum(), 1e-30)), tf.float32)
    # Offsets of the words of the window before and of the window after a centred window.
    half = width // 2
    offsets = list(range(-half - width, -half)) + list(range(width - half, 2 * width - half))
    optimizer = keras.optimizers.Adam(args.tv_learning_rate)

    @tf.function(input_signature=[IdSequences])
    def step(ids):
        with tf.GradientTape() as tape:
            regions = region_sums(tf.nn.embedding_lookup(vectors, ids), ids, width) + bias
            length = tf.shape(ids)[1]
            padded = tf.pad(ids, [[0, 0], [2 * width, 2 * width]])
            targets = tf.stack(
                [padded[:, 2 * width + o : 2 * width + o + length] for o in offsets], -1
            )  # (batch, length, 2 * width)
            present = tf.cast(ids != PADDING_ID, tf.float32)[..., None]
            kept = tf.random.uniform(tf.shape(targets)) < tf.gather(keep_probability, targets)
            real = tf.cast((targets >= FIRST_WORD_ID) & kept, tf.float32) * present
            real_scores = tf.einsum(
                "bld,bltd->blt", regions, tf.gather(output_vectors, targets)
            ) + tf.gather(output_bias, targets)
            real_loss = tf.reduce_sum(tf.nn.softplus(-real_scores) * real) / tf.maximum(
                tf.reduce_sum(real), 1.0
            )
            noise_ids = tf.random.categorical(noise_logits[None], args.negatives)[0]
            noise_scores = tf.einsum(
                "bld,kd->blk", regions, tf.gather(output_vectors, noise_ids)
            ) + tf.gather(output_bias, noise_ids)
            noise_loss = tf.reduce_sum(tf.nn.softplus(noise_scores) * present) / tf.maximum(
                tf.reduce_sum(present) * args.negatives, 1.0
            )
            loss = real_loss + NEGATIVES_PER_TARGET * noise_loss
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip([summed_rows(g) for g in gradients], variables, strict=True))
        return loss

    rng, lengths = np.random.default_rng(args.seed), review_lengths(token_ids)
    for epoch in range(args.tv_epochs):
        losses = [
            float(step(as_ids(token_ids[batch])))
            for batch in bucketed_rows(lengths, args.tv_batch_size, rng)
        ]
        log.info("region embedding epoch %d: mean loss %.4f", epoch + 1, np.mean(losses))
    return vectors.numpy(), bias.numpy()


class RegionCNN(keras.Model):
    """Step 2: one-hot bag-of-words regions plus the frozen region embedding, max-pooled."""

    def __init__(self, vocabulary_size: int, region_embedding, args: argparse.Namespace):
        super().__init__()
        self.region, self.tv_region = args.region, args.tv_region
        self.one_hot_regions = keras.layers.Embedding(
            vocabulary_size,
            args.filters,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.01),
        )
        self.region_bias = self.add_weight(shape=(args.filters,), initializer="zeros")
        self.tv_vectors = tf.constant(region_embedding[0])
        self.tv_bias = tf.constant(region_embedding[1])
        self.tv_projection = keras.layers.Dense(args.filters, use_bias=False)
        self.dropout = keras.layers.Dropout(0.5)
        self.output_layer = keras.layers.Dense(
            1, activation="sigmoid", kernel_regularizer=keras.regularizers.l2(1e-4)
        )

    def call(self, ids, training=False):
        one_hot = region_sums(self.one_hot_regions(ids), ids, self.region)
        unsupervised = region_sums(
            tf.nn.embedding_lookup(self.tv_vectors, ids), ids, self.tv_region
        )
        features = tf.nn.relu(
            one_hot + self.region_bias + self.tv_projection(unsupervised + self.tv_bias)
        )
        features *= tf.cast(ids != PADDING_ID, tf.float32)[
            ..., None
        ]  # ReLU >= 0: padding never wins
        return self.output_layer(self.dropout(tf.reduce_max(features, 1), training=training))[:, 0]


def train_region_cnn(ids: dict, labels: dict, region_embedding, args) -> tuple[dict, list]:
    """Fit on training, keep the epoch of lowest validation loss; its probabilities per split."""
    keras.utils.set_random_seed(args.seed)
    model = RegionCNN(len(region_embedding[0]), region_embedding, args)
    optimizer = keras.optimizers.Adam(args.learning_rate)
    cross_entropy = keras.losses.BinaryCrossentropy()

    @tf.function(input_signature=[IdSequences, tf.TensorSpec([None], tf.float32)])
    def train_step(batch_ids, batch_labels):
        with tf.GradientTape() as tape:
            loss = cross_entropy(batch_labels, model(batch_ids, training=True)) + tf.add_n(
                model.losses
            )
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(
            zip([summed_rows(g) for g in gradients], model.trainable_variables, strict=True)
        )
        return loss

    predict_step = tf.function(lambda batch: model(batch), input_signature=[IdSequences])

    def probabilities(split_ids: np.ndarray) -> np.ndarray:
        batches = np.array_split(np.arange(len(split_ids)), max(len(split_ids) // 256, 1))
        return np.concatenate([predict_step(as_ids(split_ids[b])).numpy() for b in batches])

    rng = np.random.default_rng(args.seed)
    best_loss, best_weights, history = np.inf, None, []
    for epoch in range(args.epochs):
        for batch in shuffled_rows(len(ids["train"]), args.batch_size, rng):
            train_step(as_ids(ids["train"][batch]), tf.constant(labels["train"][batch], tf.float32))
        validation = probabilities(ids["validation"])
        loss = float(cross_entropy(labels["validation"].astype(np.float32), validation))
        history.append(
            {
                "epoch": epoch + 1,
                "validation_loss": loss,
                "validation_accuracy": accuracy(validation, labels["validation"]),
            }
        )
        log.info("epoch %s", json.dumps(history[-1]))
        if loss < best_loss:
            best_loss, best_weights = loss, model.get_weights()
    model.set_weights(best_weights)
    return {split: probabilities(ids[split]) for split in SCORED_SPLITS}, history


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """As the pipeline's metrics count it (the default threshold, 0.5)."""
    return compute_metrics(labels, probabilities, THRESHOLD)["accuracy"]


STACKED_SETS = (("linear", "region_cnn"), ("rnn", "region_cnn"), ("rnn", "linear", "region_cnn"))


def stacked_scores(members: dict, labels: dict, name_sets=STACKED_SETS) -> dict:
    """Each set of members stacked on validation (as the combine stage does); accuracy per split."""
    scores = {}
    for names in name_sets:
        combiner = fit_combiner(
            {name: members[name]["validation"] for name in names},
            labels["validation"],
            "stacking",
            1.0,
        )
        scores[" + ".join(names)] = {
            split: accuracy(
                combiner.probabilities({n: members[n][split] for n in names}), labels[split]
            )
            for split in SCORED_SPLITS
        }
    return scores


def append_row(path: Path, row: dict, logger: logging.Logger) -> None:
    """Log a run's row and add it to the JSON list of rows in ``path`` (created if missing)."""
    logger.info("%s", json.dumps(row))
    rows = json.loads(path.read_text()) if path.exists() else []
    path.write_text(json.dumps([*rows, row], indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to append the row to")
    parser.add_argument("--tv-dim", type=int, default=100)
    parser.add_argument("--tv-region", type=int, default=5)
    parser.add_argument("--tv-epochs", type=int, default=1)
    parser.add_argument("--tv-learning-rate", type=float, default=0.01)
    parser.add_argument("--tv-batch-size", type=int, default=128)
    parser.add_argument("--negatives", type=int, default=128, help="noise words per batch")
    parser.add_argument("--filters", type=int, default=500)
    parser.add_argument("--region", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--reviews", type=int, help="only the first N of each split (a smoke run)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    started = time.monotonic()

    vocabulary = read_vocabulary(TOKENIZED / "vocabulary.json")
    keras.utils.set_random_seed(args.seed)
    first = slice(args.reviews)
    ids = {s: np.load(TOKENIZED / f"{s}_ids.npy")[first] for s in ("train", *SCORED_SPLITS)}
    labels = {split: np.load(TOKENIZED / f"{split}_labels.npy")[first] for split in ids}
    texts = pd.read_parquet(REPOSITORY / "data/raw/unlabelled.parquet", columns=["text"])["text"]
    texts = texts[first]
    unlabelled_ids = pad_and_truncate(
        encode((tokenize(text) for text in texts), vocabulary),
        read_encoding(TOKENIZED / "encoding.json"),
    )
    word_counts = np.asarray(vocabulary.counts, dtype=np.float64)  # 0 for padding and OOV

    region_embedding = train_region_embedding(
        np.concatenate([ids["train"], unlabelled_ids]), word_counts, args
    )
    embedding_seconds = time.monotonic() - started
    region_cnn, history = train_region_cnn(ids, labels, region_embedding, args)
    members = {
        name: {
            split: probabilities[first]
            for split, probabilities in read_predictions(
                REPOSITORY / f"data/predictions/{name}.npz"
            ).items()
        }
        for name in ("rnn", "linear")
    } | {"region_cnn": region_cnn}
    row = {
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "region_cnn": {
            split: accuracy(region_cnn[split], labels[split]) for split in SCORED_SPLITS
        },
        "stacked": stacked_scores(members, labels),
        "history": history,
        "region_embedding_seconds": round(embedding_seconds),
        "seconds": round(time.monotonic() - started),
        "unlabelled_reviews": len(unlabelled_ids),
        "cpu": cpu_description(),
    }
    append_row(args.out, row, log)


if __name__ == "__main__":
    main()
