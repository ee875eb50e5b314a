"""A predictor laid out as the pipeline leaves it, built in seconds, and the installed
imdb-predict run on it: shared by the prediction and hostile-input tests."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from imdb_rnn.encoding import Encoding, encode, pad_and_truncate, write_encoding
from imdb_rnn.linear import fit_linear, write_linear
from imdb_rnn.model import build_classifier, compile_classifier, seed_everything
from imdb_rnn.model_file import training_record, write_model
from imdb_rnn.params import LinearParams, TrainParams
from imdb_rnn.predictor_file import PredictorManifest, file_ref, write_manifest
from imdb_rnn.text import tokenize
from imdb_rnn.vocabulary import build_vocabulary, write_vocabulary
from tests.conftest import REPO_ROOT, make_reviews

PREDICT = [str(Path(sys.executable).parent / "imdb-predict")]  # the installed console script


def build_predictor(directory: Path) -> Path:
    """A vocabulary, an encoding, a briefly trained model of each member and the manifest, laid
    out as the pipeline leaves them."""
    reviews = make_reviews(200)
    defaults = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    vocabulary = build_vocabulary((tokenize(text) for text in reviews["text"]), 40, 1)
    encoding = Encoding(max_length=20, padding="post", truncating="pre")
    params = TrainParams.model_validate(copy.deepcopy(defaults["train"]) | {"units": 4})
    seed_everything(0, deterministic=False)
    matrix = np.random.default_rng(0).normal(0, 0.1, (len(vocabulary), 8)).astype(np.float32)
    model = compile_classifier(build_classifier(params, matrix), params)
    ids = pad_and_truncate(encode((tokenize(t) for t in reviews["text"]), vocabulary), encoding)
    model.fit(ids, reviews["label"].to_numpy(), epochs=15, batch_size=32, verbose=0)
    linear = fit_linear(
        reviews["text"],
        reviews["label"].to_numpy(),
        LinearParams.model_validate(defaults["linear"]),
    )
    files = {
        "rnn_model": directory / "models" / "model.keras",
        "vocabulary": directory / "data" / "vocabulary.json",
        "encoding": directory / "data" / "encoding.json",
        "linear_model": directory / "models" / "linear.npz",
    }
    write_model(model, files["rnn_model"], training_record(vocabulary, encoding))
    write_vocabulary(vocabulary, files["vocabulary"])
    write_encoding(encoding, files["encoding"])
    write_linear(linear, files["linear_model"])
    manifest = directory / "models" / "predictor.json"
    write_manifest(
        PredictorManifest(
            threshold=0.5,
            batch_size=16,
            weights={"rnn": 0.5, "linear": 0.5},
            intercept=0.0,
            **{name: file_ref(path, manifest) for name, path in files.items()},
        ),
        manifest,
    )
    return manifest


def run_predict(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PREDICT, *args], input=stdin, capture_output=True, timeout=120, env=os.environ.copy()
    )
