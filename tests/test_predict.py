"""imdb-predict on a tiny model: inputs from arguments, a file and stdin, and its errors."""

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

from imdb_rnn import artifacts, predict
from imdb_rnn.model import build_classifier, compile_classifier, seed_everything
from imdb_rnn.params import TrainParams
from imdb_rnn.text import build_vocabulary, encode_reviews, tokenize
from tests.conftest import REPO_ROOT, make_reviews

PREDICT = [str(Path(sys.executable).parent / "imdb-predict")]  # the installed console script


@pytest.fixture(scope="module")
def trained_files(tmp_path_factory) -> dict[str, Path]:
    """A vocabulary, an encoding and a briefly trained model, as the pipeline would leave them."""
    directory = tmp_path_factory.mktemp("trained")
    reviews = make_reviews(200)
    vocabulary = build_vocabulary((tokenize(text) for text in reviews["text"]), 40, 1)
    encoding = {"max_length": 20, "padding": "post", "truncating": "pre"}
    defaults = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["train"]
    params = TrainParams.model_validate(copy.deepcopy(defaults) | {"units": 4, "epochs": 1})
    seed_everything(0, deterministic=False)
    matrix = np.random.default_rng(0).normal(0, 0.1, (len(vocabulary), 8)).astype(np.float32)
    model = compile_classifier(build_classifier(params, matrix), params)
    ids = encode_reviews(reviews["text"], vocabulary, **encoding)
    model.fit(ids, reviews["label"].to_numpy(), epochs=15, batch_size=32, verbose=0)
    files = {
        "model": directory / "model.keras",
        "vocabulary": directory / "vocabulary.json",
        "encoding": directory / "encoding.json",
    }
    artifacts.write_model(model, files["model"])
    artifacts.write_vocabulary(vocabulary, files["vocabulary"])
    artifacts.write_json(encoding, files["encoding"])
    return files


def file_options(files: dict[str, Path]) -> list[str]:
    return [option for name, path in files.items() for option in (f"--{name}", str(path))]


def run_predict(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PREDICT, *args], input=stdin, capture_output=True, timeout=120, env=os.environ.copy()
    )


def test_arguments_give_one_label_and_probability_per_review(trained_files, capsys):
    predict.main(
        [*file_options(trained_files), "A great, wonderful film!", "Awful, boring, the worst."]
    )
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["positive", "negative"]
    assert all(0 <= float(line.split("\t")[1]) <= 1 for line in lines)


def test_file_input_skips_blank_lines(trained_files, tmp_path, capsys):
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("Brilliant and moving.\n\n   \nDull waste of time.\n", encoding="utf-8")
    predict.main([*file_options(trained_files), "--file", str(reviews), "--json"])
    predictions = json.loads(capsys.readouterr().out)
    assert [p["review"] for p in predictions] == ["Brilliant and moving.", "Dull waste of time."]
    assert set(predictions[0]) == {"label", "positive_probability", "review"}


def test_console_script_reads_stdin_and_prints_json(trained_files):
    result = run_predict(*file_options(trained_files), "--json", stdin=b"Superb!\nTerrible.\n")
    assert result.returncode == 0, result.stderr.decode()
    predictions = json.loads(result.stdout)
    assert len(predictions) == 2
    assert [p["label"] for p in predictions] == ["positive", "negative"]


def error_of(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr.decode()
    return lines[0]


def test_empty_input_is_a_one_line_error(trained_files):
    line = error_of(run_predict(*file_options(trained_files), stdin=b"\n  \n"))
    assert line.startswith("imdb-predict: error: no reviews to classify")


def test_non_utf8_input_is_a_one_line_error(trained_files, tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Un film très réussi".encode("latin-1"))
    line = error_of(run_predict(*file_options(trained_files), "--file", str(latin1)))
    assert "is not valid UTF-8 (byte 0xe8 at offset 10)" in line and "iconv" in line


def test_missing_model_is_a_one_line_error(trained_files, tmp_path):
    files = trained_files | {"model": tmp_path / "missing.keras"}
    line = error_of(run_predict(*file_options(files), "Great film."))
    assert "missing.keras does not exist" in line
