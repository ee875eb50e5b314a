"""imdb-predict on a tiny pipeline's files: inputs from arguments, a file and stdin, and errors."""

from __future__ import annotations

import json
import subprocess

import pytest

from imdb_rnn import predict
from tests.predictor_builder import run_predict

pytestmark = pytest.mark.slow  # trains Keras models or starts processes


def error_of(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode in (1, 2) and len(lines) == 1, result.stderr.decode()
    return lines[0]


@pytest.mark.parametrize("split", [[1, 2], [3], [1, 1, 1]])
def test_json_items_in_chunks_are_the_bytes_of_one_array(split):
    items = [
        {"review": 'tab\tquote" line\nbreak \u2028 \x85 ünï 🎬', "p": 0.5, "n": 0},
        {"review": "", "p": 1.0, "n": 3},
        {"review": "x", "p": 0.25, "n": None},
    ]
    pieces, start = [], 0
    for size in split:
        pieces.append(predict.json_items(items[start : start + size], first=start == 0))
        start += size
    expected = json.dumps(items, ensure_ascii=False, allow_nan=False, indent=2)
    assert "".join(pieces) + "\n]" == expected


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
