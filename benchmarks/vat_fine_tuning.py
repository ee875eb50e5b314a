"""The recurrent member fine-tuned with virtual adversarial training on the unlabelled reviews.

Not part of the test suite, and not a stage: an experiment of issue 20, kept so that its row of
docs/results.md can be rerun. Virtual adversarial training (Miyato, Dai & Goodfellow 2017, the
last step of the 0.9409 anchor) asks the classifier to give an unlabelled review the same
probability after the small change of its word embeddings that moves that probability most: a
consistency loss that needs no labels, so the 49,208 unlabelled reviews teach the recurrent
member directly rather than through a teacher's labels.

Starts from the reference run's recurrent member (`models/model.keras`), so that the question is
only whether the consistency loss helps, not how to train from scratch. Each step takes one
length-bucketed batch of labelled training reviews (cross-entropy) and one of unlabelled reviews:

1. the clean log-odds of the unlabelled batch (no dropout, held fixed);
2. one power iteration: a random direction, scaled to `--xi` of the perturbation's size (step 3),
   and the gradient of the Bernoulli KL divergence between clean and perturbed probabilities;
3. the adversarial perturbation: that gradient, scaled to `--eps` of the review's embedding norm
   (Miyato et al. normalise the embeddings and use a fixed 5.0, about 2 % of a 400-word review's
   norm at 256 dimensions; a fraction keeps that meaning over Word2Vec's unnormalised vectors);
4. loss = cross-entropy + `--alpha` x KL(clean || adversarial), dropout on; Adam on every weight,
   an embedding's duplicate rows summed first (benchmarks/region_cnn.py says why).

Validation loss is measured `--evals-per-epoch` times an epoch and the weights of the lowest kept
(the start's included), then scored alone and stacked as the combine stage stacks; test accuracy
is reported beside, never used to choose. `--alpha 0` is the control: the same fine-tuning
without the consistency loss.

    python benchmarks/vat_fine_tuning.py --out benchmarks/vat_fine_tuning.json
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from imdb_rnn.numerics import pin_kernels

pin_kernels()  # before NumPy and TensorFlow load, as every stage does

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from lm_pretraining import (  # noqa: E402
    append_result,
    existing_members,
    read_inputs,
    replacing_the_rnn,
)
from region_cnn import (  # noqa: E402
    IdSequences,
    accuracy,
    as_ids,
    stacked_scores,
    summed_rows,
)

from imdb_rnn.batching import bucketed_rows, review_lengths  # noqa: E402
from imdb_rnn.model import predict_probabilities  # noqa: E402
from imdb_rnn.model_file import read_classifier  # noqa: E402
from imdb_rnn.predictions import SCORED_SPLITS  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
BATCH_SIZE = 64  # params.yaml's train.batch_size, for both batches of a step
log = logging.getLogger("vat_fine_tuning")


def bernoulli_kl(clean: tf.Tensor, perturbed: tf.Tensor) -> tf.Tensor:
    """KL(p || q) of two Bernoulli distributions given by their log-odds, per review."""
    p = tf.sigmoid(clean)
    return p * (tf.math.log_sigmoid(clean) - tf.math.log_sigmoid(perturbed)) + (1 - p) * (
        tf.math.log_sigmoid(-clean) - tf.math.log_sigmoid(-perturbed)
    )


def unit_per_review(direction: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Each review's (steps, dimension) direction, zero on padding, scaled to length 1."""
    direction = direction * tf.cast(mask, direction.dtype)[..., None]
    norm = tf.sqrt(tf.reduce_sum(direction * direction, axis=[1, 2], keepdims=True))
    return direction / (norm + 1e-12)


class Perturbable:
    """The classifier's layers called one by one, so that its embeddings can be perturbed."""

    def __init__(self, model: keras.Model):
        self.embedding = model.get_layer("embedding")
        # embedding, spatial dropout, bidirectional GRU, masked max pooling, dropout, output
        self.spatial_dropout, self.recurrent, self.pooling, self.dropout = model.layers[2:6]
        self.output = model.get_layer("positive_probability")

    def log_odds(self, ids: tf.Tensor, perturbation, training: bool) -> tf.Tensor:
        mask = tf.not_equal(ids, 0)
        embedded = self.spatial_dropout(self.embedding(ids) + perturbation, training=training)
        states = self.recurrent(embedded, mask=mask, training=training)
        pooled = self.dropout(self.pooling(states, mask=mask), training=training)
        return tf.squeeze(tf.matmul(pooled, self.output.kernel) + self.output.bias, -1)


def training_step(model: keras.Model, args: argparse.Namespace):
    """One step on a labelled and an unlabelled batch; returns (cross-entropy, VAT loss)."""
    layers, variables = Perturbable(model), model.trainable_variables
    optimizer = keras.optimizers.Adam(args.learning_rate)

    @tf.function(input_signature=[IdSequences, tf.TensorSpec([None], tf.float32), IdSequences])
    def step(ids, labels, unlabelled):
        mask = tf.not_equal(unlabelled, 0)
        clean = tf.stop_gradient(layers.log_odds(unlabelled, 0.0, False))
        embedded = tf.stop_gradient(layers.embedding(unlabelled))
        norm = tf.sqrt(tf.reduce_sum(embedded * embedded, axis=[1, 2], keepdims=True))
        radius = args.eps * norm
        direction = unit_per_review(tf.random.normal(tf.shape(embedded)), mask)
        with tf.GradientTape() as power_iteration:
            power_iteration.watch(direction)
            nearby = layers.log_odds(unlabelled, args.xi * radius * direction, False)
            divergence = tf.reduce_mean(bernoulli_kl(clean, nearby))
        steepest = tf.stop_gradient(power_iteration.gradient(divergence, direction))
        adversarial = radius * unit_per_review(steepest, mask)
        with tf.GradientTape() as tape:
            cross_entropy = tf.reduce_mean(
                tf.nn.sigmoid_cross_entropy_with_logits(labels, layers.log_odds(ids, 0.0, True))
            )
            vat = tf.constant(0.0)
            if args.alpha:
                perturbed = layers.log_odds(unlabelled, adversarial, True)
                vat = tf.reduce_mean(bernoulli_kl(clean, perturbed))
            loss = cross_entropy + args.alpha * vat
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip([summed_rows(g) for g in gradients], variables, strict=True))
        return cross_entropy, vat

    return step


def validation_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    clipped = np.clip(probabilities, 1e-7, 1 - 1e-7)
    return float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to append the row to")
    parser.add_argument("--alpha", type=float, default=1.0, help="weight of the VAT loss")
    parser.add_argument("--eps", type=float, default=0.02, help="of the review's embedding norm")
    parser.add_argument("--xi", type=float, default=1e-3, help="power iteration's, of --eps's")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--epochs", type=float, default=2.0, help="over the labelled reviews")
    parser.add_argument("--evals-per-epoch", type=int, default=4)
    parser.add_argument("--reviews", type=int, help="only the first N of each split (a smoke run)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    first = slice(args.reviews)
    inputs = read_inputs(first)
    labels = inputs.labels
    keras.utils.set_random_seed(42)
    model = read_classifier(REPOSITORY / "models/model.keras")
    step = training_step(model, args)

    def probabilities(splits) -> dict[str, np.ndarray]:
        padding = inputs.encoding.padding
        return {s: predict_probabilities(model, inputs.ids[s], 512, padding) for s in splits}

    started = time.monotonic()
    start = probabilities(SCORED_SPLITS)
    best = {
        "epochs": 0.0,
        "validation_loss": validation_loss(start["validation"], labels["validation"]),
    }
    curve = [{**best, **{s: accuracy(start[s], labels[s]) for s in SCORED_SPLITS}}]
    log.info("start: %s", curve[0])
    best_weights = [weight.numpy() for weight in model.weights]

    train_ids, train_labels = inputs.ids["train"], labels["train"].astype(np.float32)
    unlabelled_lengths = review_lengths(inputs.unlabelled_ids)
    unlabelled_order = np.random.default_rng(7)
    unlabelled_batches, next_unlabelled = [], 0
    done, epoch, total_steps = 0, 0, 1
    while done < total_steps:
        batches = bucketed_rows(
            review_lengths(train_ids), BATCH_SIZE, np.random.default_rng([7, epoch])
        )
        steps_per_epoch = len(batches)
        total_steps = round(args.epochs * steps_per_epoch)
        evaluate_every = steps_per_epoch // args.evals_per_epoch
        for batch in batches:
            if next_unlabelled >= len(unlabelled_batches):
                unlabelled_batches = bucketed_rows(unlabelled_lengths, BATCH_SIZE, unlabelled_order)
                next_unlabelled = 0
            unlabelled = inputs.unlabelled_ids[unlabelled_batches[next_unlabelled]]
            cross_entropy, vat = step(
                as_ids(train_ids[batch]), tf.constant(train_labels[batch]), as_ids(unlabelled)
            )
            next_unlabelled, done = next_unlabelled + 1, done + 1
            if done % 50 == 0:
                log.info("step %d/%d: cross-entropy %.4f, VAT %.4f", done, total_steps,
                         float(cross_entropy), float(vat))  # fmt: skip
            if done % evaluate_every == 0 or done == total_steps:
                validation = probabilities(["validation"])["validation"]
                point = {
                    "epochs": round(done / steps_per_epoch, 2),
                    "validation_loss": validation_loss(validation, labels["validation"]),
                    "validation": accuracy(validation, labels["validation"]),
                    "seconds": round(time.monotonic() - started),
                }
                curve.append(point)
                log.info("%s", point)
                if point["validation_loss"] < best["validation_loss"]:
                    best = {key: point[key] for key in ("epochs", "validation_loss")}
                    best_weights = [weight.numpy() for weight in model.weights]
            if done == total_steps:
                break
        epoch += 1

    for weight, value in zip(model.weights, best_weights, strict=True):
        weight.assign(value)
    final = probabilities(SCORED_SPLITS)
    members = existing_members(first) | {"vat_rnn": final}
    row = {
        "settings": {key: str(value) for key, value in vars(args).items() if key != "out"},
        "best": best | {split: accuracy(final[split], labels[split]) for split in SCORED_SPLITS},
        "stacked": stacked_scores(members, labels, replacing_the_rnn("vat_rnn")),
        "curve": [
            {k: round(v, 4) if isinstance(v, float) else v for k, v in p.items()} for p in curve
        ],
    }
    append_result(args.out, row, started, inputs, log)


if __name__ == "__main__":
    main()
