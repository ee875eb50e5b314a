"""imdb-predict on a tiny pipeline's files: inputs from arguments, a file and stdin, and errors."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from imdb_rnn import predict
from imdb_rnn.encoding import Encoding, encode, pad_and_truncate, write_encoding
from imdb_rnn.linear import fit_linear, write_linear
from imdb_rnn.model import build_classifier, compile_classifier, seed_everything
from imdb_rnn.model_file import training_record, write_model
from imdb_rnn.params import LinearParams, TrainParams
from imdb_rnn.predictor_file import PredictorManifest, file_ref, write_manifest
from imdb_rnn.text import tokenize
from imdb_rnn.vocabulary import build_vocabulary, write_vocabulary
from tests.conftest import REPO_ROOT, make_reviews

pytestmark = pytest.mark.slow  # trains Keras models or starts processes

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


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return build_predictor(tmp_path_factory.mktemp("project"))


def run_predict(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PREDICT, *args], input=stdin, capture_output=True, timeout=120, env=os.environ.copy()
    )


def error_of(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode in (1, 2) and len(lines) == 1, result.stderr.decode()
    return lines[0]


def test_arguments_give_one_label_and_probability_per_review(manifest, capsys):
    predict.main(["--predictor", str(manifest), "A great, wonderful film!", "Awful, the worst."])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["positive", "negative"]
    assert all(0 <= float(line.split("\t")[1]) <= 1 for line in lines)


def test_file_input_skips_blank_lines(manifest, tmp_path, capsys):
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("Brilliant and moving.\n\n   \nDull waste of time.\n", encoding="utf-8")
    predict.main(["--predictor", str(manifest), "--file", str(reviews), "--json"])
    predictions = json.loads(capsys.readouterr().out)
    assert [p["review"] for p in predictions] == ["Brilliant and moving.", "Dull waste of time."]
    assert set(predictions[0]) == {"label", "positive_probability", "known_words", "review"}


def test_each_member_alone_and_the_combination(manifest, capsys):
    scores = {}
    for member in ("rnn", "linear", "combined"):
        predict.main(["--predictor", str(manifest), "--json", "--member", member, "Superb fun!"])
        scores[member] = json.loads(capsys.readouterr().out)[0]["positive_probability"]
    # equal weights in log-odds: the combination lies between the two members
    assert min(scores["rnn"], scores["linear"]) <= scores["combined"]
    assert scores["combined"] <= max(scores["rnn"], scores["linear"])


def test_console_script_reads_stdin_and_prints_json(manifest):
    result = run_predict("--predictor", str(manifest), "--json", stdin=b"Superb!\r\nTerrible.\n")
    assert result.returncode == 0, result.stderr.decode()
    predictions = json.loads(result.stdout)
    assert [p["label"] for p in predictions] == ["positive", "negative"]
    assert [p["review"] for p in predictions] == ["Superb!", "Terrible."]


def test_empty_input_is_a_one_line_error(manifest):
    line = error_of(run_predict("--predictor", str(manifest), stdin=b"\n  \n"))
    assert line.startswith("imdb-predict: error: no reviews to classify")


def test_non_utf8_input_is_a_one_line_error(manifest, tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Un film très réussi".encode("latin-1"))
    line = error_of(run_predict("--predictor", str(manifest), "--file", str(latin1)))
    assert "is not valid UTF-8 (byte 0xe8 at offset 10)" in line and "iconv" in line


def test_missing_predictor_is_a_one_line_error(tmp_path):
    line = error_of(run_predict("--predictor", str(tmp_path / "missing.json"), "Great film."))
    assert "missing.json does not exist; run the stage that writes it" in line
