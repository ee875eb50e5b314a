"""train.distribution: the TensorFlow strategy that places the model's replicas.

``mirrored`` puts a replica on each GPU of one machine (MirroredStrategy). ``multi_worker`` runs
one worker process per machine named in the ``TF_CONFIG`` environment variable
(MultiWorkerMirroredStrategy), all-reducing the gradients over the network each step, so every
worker holds the same weights.

Keras 3's ``model.fit`` does not run under MultiWorkerMirroredStrategy as released
(keras-team/keras#20585, tensorflow/tensorflow#72388): two spots of Keras' TensorFlow trainer
assume one machine, and fail in the first step. ``patch_keras_fit`` replaces exactly those two,
for the Keras version they were read from; the rest of ``fit`` (callbacks, validation, DVCLive,
resume) is Keras' own.

1. Before the first step, ``fit`` builds the metrics from one batch, which it first "reduces"
   across replicas as a whole (x, y) tuple: the collective reduce takes single tensors only. Only
   the batch's shapes matter, so the patch builds from this worker's own share of the batch.
2. After every step, ``fit`` averages the logs over the replicas along axis 0, and the logs (loss,
   accuracy) are scalars, which have no axis 0. The patch averages scalars over the replicas.
"""

from __future__ import annotations

import logging
import os

import keras
import tensorflow as tf
from keras.src import tree
from keras.src.backend.tensorflow import trainer as tensorflow_trainer

from imdb_rnn.cluster import read_cluster
from imdb_rnn.errors import ParamsError

log = logging.getLogger(__name__)

# The Keras releases whose trainer these patches were read from and tested with.
PATCHED_KERAS = ("3.15.",)


def distribution_strategy(name: str, devices: list[str] | None = None):
    """None for one device (``none``); a MirroredStrategy over ``devices`` (default: every GPU of
    this machine); or a MultiWorkerMirroredStrategy over the cluster in ``TF_CONFIG``."""
    if name == "none":
        return None
    if name == "multi_worker":
        return multi_worker_strategy()
    return tf.distribute.MirroredStrategy(devices)


def multi_worker_strategy() -> tf.distribute.MultiWorkerMirroredStrategy:
    """The strategy of the cluster ``TF_CONFIG`` describes. Must be created before TensorFlow runs
    any op: it configures the runtime's collective communication. It returns only once every
    worker has registered: create it in imdb_rnn.cluster.cluster_formed."""
    if not keras.__version__.startswith(PATCHED_KERAS):
        raise ParamsError(
            f"train.distribution: multi_worker is tested with Keras {PATCHED_KERAS[0]}x and this"
            f" is Keras {keras.__version__}; install the pinned versions (constraints.txt)"
        )
    read_cluster(os.environ.get("TF_CONFIG"))
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    patch_keras_fit()
    resolver = strategy.cluster_resolver
    log.info(
        "worker %d of %d (%d replicas in all)",
        resolver.task_id + 1,
        len(resolver.cluster_spec().as_dict().get("worker", [])) or 1,
        strategy.num_replicas_in_sync,
    )
    return strategy


def is_multi_worker(strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _local_value(strategy, value):
    """This worker's first replica's copy of a per-replica value (or the value itself)."""
    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


_keras_reduce_per_replica = tensorflow_trainer.reduce_per_replica
_keras_maybe_symbolic_build = tensorflow_trainer.TensorFlowTrainer._maybe_symbolic_build


def _reduce_per_replica(values, strategy, reduction):
    if reduction in ("auto", "mean") and is_multi_worker(strategy):

        def mean(value):
            axis = None if _local_value(strategy, value).shape.rank == 0 else 0
            return strategy.reduce("MEAN", value, axis=axis)

        return tree.map_structure(mean, values)
    return _keras_reduce_per_replica(values, strategy, reduction)


def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    strategy = self._distribute_strategy
    if iterator is not None and is_multi_worker(strategy):
        for _, _, batches in iterator:
            data_batch = tree.map_structure(lambda v: _local_value(strategy, v), next(batches))
            break
        iterator = None
    return _keras_maybe_symbolic_build(self, iterator=iterator, data_batch=data_batch)


def patch_keras_fit() -> None:
    """Idempotent; changes nothing for the other strategies, which the patched functions hand
    to Keras' own code."""
    tensorflow_trainer.reduce_per_replica = _reduce_per_replica
    tensorflow_trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build


def all_workers_agree(strategy, value: int) -> bool:
    """Whether every worker passed the same ``value``, decided identically on all of them: the
    replicas' values are all equal exactly when the mean of their squares is the square of their
    mean (both exact for small integers)."""
    if not is_multi_worker(strategy):
        return True
    number = float(value)
    mean = strategy.reduce("MEAN", strategy.run(lambda: tf.constant(number)), axis=None)
    squares = strategy.reduce("MEAN", strategy.run(lambda: tf.constant(number**2)), axis=None)
    return float(squares) == float(mean) ** 2
