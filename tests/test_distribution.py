"""train.distribution: mirrored: a replica per device, gradients all-reduced every step.

A machine's CPU is split into two logical devices, so the data-parallel path (replicas, all-reduce,
length-bucketed batches split between replicas, resume into mirrored variables) runs for real
without a GPU. It must learn the toy sentiment as well as one device does.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

SCRIPT = """
import copy, json, sys
import numpy as np, tensorflow as tf, yaml, keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from imdb_rnn import resume
from imdb_rnn.encoding import Encoding, encode, pad_and_truncate
from imdb_rnn.distribution import distribution_strategy
from imdb_rnn.model import (
    build_classifier, compile_classifier, fit_classifier, seed_everything, training_callbacks,
)
from imdb_rnn.params import TrainParams
from imdb_rnn.text import tokenize
from imdb_rnn.vocabulary import build_vocabulary
from tests.conftest import make_reviews

devices = json.loads(sys.argv[1])
reviews = make_reviews(800, seed=1)
tokens = [tokenize(text) for text in reviews["text"]]
vocabulary = build_vocabulary(tokens, 60, 1)
encoding = Encoding(max_length=32, padding="post", truncating="pre")
ids = pad_and_truncate(encode(tokens, vocabulary), encoding)
labels = reviews["label"].to_numpy("int8")
values = yaml.safe_load(open("params.yaml"))["train"] | {"units": 8, "epochs": 3, "batch_size": 32}
values["distribution"] = "mirrored" if devices else "none"
params = TrainParams.model_validate(values)
matrix = np.random.default_rng(0).normal(0, 0.1, (len(vocabulary), 16)).astype(np.float32)
strategy = distribution_strategy(params.distribution, devices or None)
seed_everything(params.seed, deterministic=False)
with strategy.scope() if strategy else __import__("contextlib").nullcontext():
    model = compile_classifier(build_classifier(params, matrix), params)
checkpoint = resume.Checkpoint(__import__("pathlib").Path(sys.argv[2]), "test", [], None)
fit_classifier(model, params, (ids[:640], labels[:640]), (ids[640:], labels[640:]), "post",
               callbacks=[checkpoint], verbose=0)
state = resume.read_state(checkpoint.path)
with strategy.scope() if strategy else __import__("contextlib").nullcontext():
    restored = compile_classifier(build_classifier(params, matrix), params)
    resume.restore_variables(restored, state)
same = all(np.array_equal(a, b) for a, b in zip(model.get_weights(), restored.get_weights()))
print(json.dumps({
    "replicas": strategy.num_replicas_in_sync if strategy else 1,
    "val_accuracy": checkpoint.history[-1]["val_accuracy"],
    "restored_identically": same,
}))
"""


def train(tmp_path, devices: list[str]) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(devices), str(tmp_path / f"{len(devices)}.npz")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_two_replicas_learn_as_well_as_one_device(tmp_path):
    one = train(tmp_path, [])
    two = train(tmp_path, ["/cpu:0", "/cpu:1"])
    assert one["replicas"] == 1 and two["replicas"] == 2
    assert one["val_accuracy"] > 0.8 and two["val_accuracy"] > 0.8
    assert abs(one["val_accuracy"] - two["val_accuracy"]) <= 0.1
    assert two["restored_identically"], "a resumed run starts from the saved state"
