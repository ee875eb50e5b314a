"""Hostile and careless input: no silent wrong result, no traceback, no code execution.

Each case is one a careless or hostile user produced on an earlier version (see
docs/hostile-input.md for the table of cases and outcomes). A user error must end in exactly one
line that names the problem and the fix, exit status 1, and no half-written output.
"""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imdb_rnn import cli, predict
from imdb_rnn.errors import DataError, ParamsError, PipelineError
from imdb_rnn.evaluation import compute_metrics
from imdb_rnn.pretrained import load_pretrained_vectors
from imdb_rnn.recipes import main as recipe_main
from tests.conftest import make_reviews
from tests.predictor_builder import PREDICT, build_predictor, run_predict
from tests.stage_runner import (
    EMBED_ARGS,
    INGEST_ARGS,
    TOKENIZE_ARGS,
    run_stage,
    stage_args,
    write_params,
)


@pytest.fixture
def tokenized(tmp_path, tiny_params) -> Path:
    """A scratch directory after ingest and tokenize."""
    write_params(tmp_path, tiny_params)
    for name, args in (("ingest", INGEST_ARGS), ("tokenize", TOKENIZE_ARGS)):
        assert run_stage(tmp_path, name, *args).returncode == 0
    return tmp_path


def one_line_error(result: subprocess.CompletedProcess) -> str:
    stderr = result.stderr if isinstance(result.stderr, str) else result.stderr.decode()
    lines = [line for line in stderr.strip().splitlines() if ": error: " in line]
    assert result.returncode in (1, 2) and len(lines) == 1, stderr
    assert "Traceback" not in stderr, stderr
    return lines[0]


# 1. One review per line means \n (and \r\n), nothing else.
@pytest.mark.parametrize(
    "separator", ["\u0085", "\u2028", "\u2029", "\r", "\f", "\v", "\x1c", "\x1d", "\x1e"]
)
def test_characters_that_splitlines_breaks_at_stay_inside_the_review(separator):
    text = f"First review{separator}still the first.\r\nSecond review.\n"
    assert list(predict.stream_reviews(io.BytesIO(text.encode()), "reviews.txt")) == [
        f"First review{separator}still the first.",
        "Second review.",
    ]


@pytest.mark.slow
def test_a_file_of_reviews_gives_exactly_one_row_per_line(manifest, tmp_path):
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("Great\u2028film.\nAwful\x85waste.\nFun\rride.\n", encoding="utf-8")
    result = run_predict("--predictor", str(manifest), "--json", "--file", str(reviews))
    assert result.returncode == 0, result.stderr.decode()
    assert len(json.loads(result.stdout)) == 3


@pytest.mark.slow
# 2. A vocabulary, encoding or model from another run is refused, naming the files.
def test_a_shuffled_vocabulary_of_the_same_size_is_refused(tmp_path):
    manifest = build_predictor(tmp_path)
    vocabulary_file = tmp_path / "data" / "vocabulary.json"
    vocabulary = json.loads(vocabulary_file.read_text())
    vocabulary["tokens"][2], vocabulary["tokens"][3] = (
        vocabulary["tokens"][3],
        vocabulary["tokens"][2],
    )
    vocabulary_file.write_text(json.dumps(vocabulary))
    line = one_line_error(run_predict("--predictor", str(manifest), "A great film."))
    assert "vocabulary.json changed after the combine stage evaluated it" in line
    # and the model itself refuses it, whatever a manifest says
    from imdb_rnn.encoding import read_encoding
    from imdb_rnn.model_file import check_belongs_together
    from imdb_rnn.vocabulary import read_vocabulary

    encoding_file = tmp_path / "data" / "encoding.json"
    with pytest.raises(DataError, match="was trained with another vocabulary than"):
        check_belongs_together(
            tmp_path / "models" / "model.keras",
            read_vocabulary(vocabulary_file),
            vocabulary_file,
            read_encoding(encoding_file),
            encoding_file,
        )


@pytest.mark.slow
def test_evaluate_refuses_a_vocabulary_the_model_was_not_trained_with(tokenized, tiny_params):
    for name in ("embed", "train"):
        result = run_stage(tokenized, name, *stage_args(name))
        assert result.returncode == 0, result.stderr
    vocabulary_file = tokenized / "data/tokenized/vocabulary.json"
    vocabulary = json.loads(vocabulary_file.read_text())
    vocabulary["tokens"] = vocabulary["tokens"][:2] + vocabulary["tokens"][2:][::-1]
    vocabulary_file.write_text(json.dumps(vocabulary))
    result = run_stage(tokenized, "evaluate", *stage_args("evaluate"))
    line = one_line_error(result)
    assert "models/model.keras was trained with another vocabulary than" in line
    assert not (tokenized / "reports/metrics/rnn.json").exists()


@pytest.mark.slow
# 3. Non-finite values: refused as parameters, stopped in training, never written as JSON.
@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("train", "learning_rate", float("inf")),
        ("linear", "c", float("inf")),
        ("train", "dropout", float("nan")),
        ("ingest", "validation_fraction", float("nan")),
    ],
)
def test_non_finite_parameters_stop_the_stage_in_one_line(
    tmp_path, tiny_params, section, key, value
):
    tiny_params[section][key] = value  # written as YAML's .inf / .nan
    write_params(tmp_path, tiny_params)
    assert (
        ".inf" in (tmp_path / "params.yaml").read_text()
        or ".nan" in (tmp_path / "params.yaml").read_text()
    )
    line = one_line_error(run_stage(tmp_path, section, *stage_args(section)))
    assert f"{section}.{key}" in line and "finite" in line


def test_metrics_of_a_one_label_split_hold_null_not_nan(tmp_path):
    metrics = compute_metrics(np.array([1, 1, 1]), np.array([0.9, 0.2, 0.7]), 0.5)
    assert metrics["roc_auc"] is None
    from imdb_rnn import artifacts

    artifacts.write_json(metrics, tmp_path / "metrics.json")
    assert "NaN" not in (tmp_path / "metrics.json").read_text()


@pytest.mark.slow
def test_predict_json_never_holds_nan(manifest):
    result = run_predict("--predictor", str(manifest), "--json", "zzzz qqqq")
    assert result.returncode == 0 and "NaN" not in result.stdout.decode()


def test_a_review_argument_that_is_not_utf8_is_a_one_line_error():
    # Python turns the argument's byte 0xe9 (latin-1 "é") into a lone surrogate, which printing the
    # review would have failed on with a traceback once the model was loaded.
    arguments = predict.parse_args(["Great film.", "caf\udce9 cr\u00e8me"])
    with pytest.raises(DataError, match=r"review argument 2 is not valid UTF-8 \(byte 0xe9 at"):
        list(predict.read_reviews(arguments))


def test_a_named_pipe_is_read_as_a_file(tmp_path):
    # `imdb-predict --file <(zcat reviews.gz)` names a pipe, which once was "does not exist".
    pipe = tmp_path / "reviews"
    os.mkfifo(pipe)
    writer = subprocess.Popen(["sh", "-c", f"printf 'Great film.\\n' > '{pipe}'"])
    try:
        assert list(predict.read_reviews(predict.parse_args(["--file", str(pipe)]))) == [
            "Great film."
        ]
    finally:
        writer.kill()  # blocked opening the pipe if it was never read
        writer.wait()


# 6. No pickle without an explicit opt-in, and never one that calls anything but vectors.
class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch EXPLOITED",))


def test_gensim_vectors_need_an_explicit_opt_in(tmp_path):
    with pytest.raises(ParamsError, match="allow_pickle: true only for a file you trust"):
        load_pretrained_vectors(str(tmp_path / "v.model"), None, None, "gensim", False)


def test_a_malicious_vectors_pickle_is_refused_unrun(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.model").write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(DataError, match=r"it refers to (posix|os)\.system"):
        load_pretrained_vectors(str(tmp_path / "evil.model"), None, None, "gensim", True)
    assert not (tmp_path / "EXPLOITED").exists()


def test_a_vectors_pickle_that_names_a_companion_pickle_is_refused_unrun(tmp_path, monkeypatch):
    # gensim's load would unpickle evil.model.payload without restriction: refused before it runs.
    from gensim.models import KeyedVectors

    monkeypatch.chdir(tmp_path)
    vectors = KeyedVectors(vector_size=2)
    vectors.add_vectors(["good", "bad"], np.eye(2, dtype=np.float32))
    vectors.save(str(tmp_path / "evil.model"))
    loaded = pickle.loads((tmp_path / "evil.model").read_bytes())
    setattr(loaded, "__scipys", ["payload"])
    (tmp_path / "evil.model").write_bytes(pickle.dumps(loaded))
    (tmp_path / "evil.model.payload").write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(DataError, match="names companion pickles under __scipys"):
        load_pretrained_vectors(str(tmp_path / "evil.model"), None, None, "gensim", True)
    assert not (tmp_path / "EXPLOITED").exists()


def test_the_default_hub_vectors_are_pinned_to_a_commit(default_params):
    revision = default_params["embed"]["pretrained"]["revision"]
    assert revision and len(revision) == 40 and int(revision, 16) >= 0


@pytest.mark.slow
# 7. Unreadable sources.
@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("reviews.csv", "text,label\nUn film très réussi,1\n".encode("latin-1"), "is not UTF-8"),
        ("reviews.csv", b"", "is empty"),
        ("reviews.parquet", b"PAR1\x00\x00garbage", "is not a readable parquet file"),
    ],
)
def test_unreadable_local_sources_are_one_line(tmp_path, tiny_params, name, content, expected):
    (tmp_path / name).write_bytes(content)
    tiny_params["ingest"] |= {
        "source": str(tmp_path / name),
        "protocol": "random",
        "unlabelled": False,
    }
    write_params(tmp_path, tiny_params)
    line = one_line_error(run_stage(tmp_path, "ingest", *INGEST_ARGS))
    assert expected in line and name in line
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_a_truncated_parquet_shard_is_named(tmp_path, tiny_params, tiny_dataset):
    shard = next(tiny_dataset.rglob("train*.parquet"))
    shard.write_bytes(shard.read_bytes()[:200])
    write_params(tmp_path, tiny_params)
    line = one_line_error(run_stage(tmp_path, "ingest", *INGEST_ARGS))
    assert shard.name in line and "truncated" in line


@pytest.mark.slow
def test_a_source_column_of_numbers_is_refused_not_turned_into_reviews(tmp_path, tiny_params):
    source = tmp_path / "train.parquet"
    pd.DataFrame({"text": range(40), "label": [0, 1] * 20}).to_parquet(source)
    tiny_params["ingest"] |= {"source": str(source), "protocol": "random", "unlabelled": False}
    write_params(tmp_path, tiny_params)
    line = one_line_error(run_stage(tmp_path, "ingest", *INGEST_ARGS))
    assert (
        line
        == f"ingest: error: {source}: column 'text' is int64; expected strings (the review text)"
    )
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
# 8. Parameters that validate but used to crash later.
@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("ingest", "seed", -1, "ingest.seed must be greater than or equal to 0"),
        ("embed", "seed", 2**32, "embed.seed must be less than or equal to 4294967295"),
        ("ingest", "max_reviews_per_split", 1, "ingest.max_reviews_per_split must be greater"),
    ],
)
def test_parameters_that_used_to_crash_later_fail_at_once(
    tmp_path, tiny_params, section, key, value, expected
):
    tiny_params[section][key] = value
    write_params(tmp_path, tiny_params)
    stage = section
    assert expected in one_line_error(run_stage(tmp_path, stage, *stage_args(stage)))


@pytest.mark.slow
def test_a_split_of_one_label_is_refused(tmp_path, tiny_params):
    reviews = make_reviews(40)
    reviews.loc[reviews.index[:20], "label"] = 1  # the test split gets positives only
    directory = tmp_path / "source"
    directory.mkdir()
    make_reviews(100, seed=3).to_parquet(directory / "train.parquet")
    reviews[reviews["label"] == 1].to_parquet(directory / "test.parquet")
    tiny_params["ingest"] |= {"source": str(directory), "unlabelled": False}
    write_params(tmp_path, tiny_params)
    line = one_line_error(run_stage(tmp_path, "ingest", *INGEST_ARGS))
    assert "the test split has reviews of one label only" in line


@pytest.mark.slow
def test_an_id_matrix_too_large_for_the_disk_is_refused_before_allocating(tmp_path, tiny_params):
    write_params(tmp_path, tiny_params)
    assert run_stage(tmp_path, "ingest", *INGEST_ARGS).returncode == 0
    tiny_params["tokenize"]["max_length"] = 10**12
    write_params(tmp_path, tiny_params)
    line = one_line_error(run_stage(tmp_path, "tokenize", *TOKENIZE_ARGS))
    assert "would need" in line and "lower tokenize.max_length" in line
    assert not (tmp_path / "data/tokenized").exists() or not any(
        (tmp_path / "data/tokenized").glob("*.npy")
    )


@pytest.mark.slow
# 9. Corrupt intermediate files.
@pytest.mark.parametrize(
    ("stage", "victim", "damage", "expected"),
    [
        ("train", "data/tokenized/train_ids.npy", "truncate", "is corrupt, truncated"),
        ("embed", "data/tokenized/vocabulary.json", "truncate", "is corrupt, truncated"),
        ("train", "data/tokenized/encoding.json", "drop-key", "truncating: Field required"),
        ("embed", "data/tokenized/train_tokens.txt", "directory", "is a directory"),
    ],
)
def test_corrupt_intermediate_files_are_named(tokenized, stage, victim, damage, expected):
    path = tokenized / victim
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: max(len(path.read_bytes()) // 3, 1)])
    elif damage == "drop-key":
        data = json.loads(path.read_text())
        del data["truncating"]
        path.write_text(json.dumps(data))
    else:
        path.unlink()
        path.mkdir()
    if stage == "train":
        assert run_stage(tokenized, "embed", *EMBED_ARGS).returncode == 0
    line = one_line_error(run_stage(tokenized, stage, *stage_args(stage)))
    assert victim in line and expected in line


@pytest.mark.slow
def test_a_truncated_model_is_named_not_missing(manifest, tmp_path):
    project = tmp_path / "copy"
    build_predictor(project)
    model = project / "models" / "model.keras"
    model.write_bytes(model.read_bytes()[:5000])
    line = one_line_error(run_predict("--predictor", str(project / "models/predictor.json"), "x"))
    assert "model.keras changed after the combine stage" in line  # its hash no longer matches
    from imdb_rnn.model_file import read_classifier

    with pytest.raises(DataError, match="is not a readable Keras model file"):
        read_classifier(model)


@pytest.mark.slow
def test_a_model_safe_mode_refuses_is_one_line(tmp_path):
    import keras

    from imdb_rnn.encoding import Encoding
    from imdb_rnn.model_file import read_classifier, training_record, write_model
    from imdb_rnn.vocabulary import build_vocabulary

    inputs = keras.Input((3,))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)  # arbitrary code: refused
    record = training_record(
        build_vocabulary([["a"]], 5, 1), Encoding(max_length=3, padding="post", truncating="pre")
    )
    write_model(keras.Model(inputs, outputs), tmp_path / "lambda.keras", record)
    with pytest.raises(DataError, match="safe mode refuses to run") as caught:
        read_classifier(tmp_path / "lambda.keras")
    assert "\n" not in str(caught.value)


@pytest.mark.slow
# 10. imdb-predict's own options and output.
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--batch-size", "0"], "must be at least 1, got 0"),
        (["--batch-size", "-5"], "must be at least 1, got -5"),
        (["--threshold", "nan"], "must be between 0 and 1"),
        (["--threshold", "1.5"], "must be between 0 and 1"),
    ],
)
def test_bad_predict_options_are_one_line(manifest, options, expected):
    line = one_line_error(run_predict("--predictor", str(manifest), *options, "Good."))
    assert expected in line


@pytest.mark.slow
def test_a_directory_given_as_file_is_named(manifest, tmp_path):
    line = one_line_error(run_predict("--predictor", str(manifest), "--file", str(tmp_path)))
    assert "is a directory" in line


@pytest.mark.slow
def test_tabs_and_escape_sequences_do_not_reach_the_tab_separated_output(manifest):
    result = run_predict("--predictor", str(manifest), "Great\tfilm \x1b[31mred\x1b[0m!")
    fields = result.stdout.decode().rstrip("\n").split("\t")
    assert len(fields) == 3 and "\x1b" not in fields[2]


@pytest.mark.slow
def test_reviews_without_a_known_word_are_flagged(manifest):
    result = run_predict("--predictor", str(manifest), "--json", "🎬🍿", "A great film.")
    predictions = json.loads(result.stdout)
    assert predictions[0]["known_words"] == 0 and predictions[1]["known_words"] > 0
    assert "review(s) 1 have no word the vocabulary knows" in result.stderr.decode()


# 11. imdb-recipe.
@pytest.fixture
def recipe_project(tmp_path, monkeypatch):
    from tests.conftest import REPO_ROOT

    (tmp_path / "recipes").mkdir()
    (tmp_path / "params.yaml").write_text((REPO_ROOT / "params.yaml").read_text())
    good = (REPO_ROOT / "recipes" / "seed-001-lstm.yaml").read_text()
    (tmp_path / "recipes" / "seed-001-lstm.yaml").write_text(good)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_broken_recipe_file_does_not_hide_the_others(recipe_project, capsys):
    (recipe_project / "recipes" / "broken.yaml").write_text("name: broken\nset: {a: 1, a: 2}\n")
    with pytest.raises(ParamsError, match=r"broken\.yaml: line 2, .*key 'a' appears a second"):
        recipe_main(["list"])
    assert "seed-001-lstm" in capsys.readouterr().out


def test_a_bad_value_in_a_recipe_is_blamed_on_the_recipe(recipe_project):
    path = recipe_project / "recipes" / "seed-001-lstm.yaml"
    path.write_text(path.read_text().replace("train.units: 64", 'train.units: "64"'))
    with pytest.raises(ParamsError, match=r"recipes/seed-001-lstm\.yaml: train\.units"):
        recipe_main(["run", "--dry-run", "seed-001-lstm"])


def test_a_set_value_that_is_not_yaml_is_one_line(recipe_project):
    with pytest.raises(ParamsError, match=r"--set 'train\.epochs=\[1': the value is not valid"):
        recipe_main(["run", "--dry-run", "seed-001-lstm", "--set", "train.epochs=[1"])


def test_dvc_missing_from_path_is_one_line_for_the_tools_that_run_it(recipe_project, monkeypatch):
    from imdb_rnn.plots import main as plots_main

    monkeypatch.setenv("PATH", str(recipe_project))  # a PATH without dvc: no venv activated
    with pytest.raises(PipelineError, match="dvc is not on PATH; activate the project's"):
        recipe_main(["run", "seed-001-lstm"])
    with pytest.raises(PipelineError, match="dvc is not on PATH; activate the project's"):
        plots_main([])


# Beyond the list: the machine itself fails.
@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (errno.ENOSPC, "free some disk space"),
        (errno.EROFS, "read-only"),
        (errno.EACCES, "(data/raw/train.parquet); check the permissions of that file and its"),
    ],
)
def test_environment_errors_are_one_line(number, expected, capsys):
    def main():
        raise OSError(number, os.strerror(number), "data/raw/train.parquet")

    with pytest.raises(SystemExit) as stopped:
        cli.run(main, "ingest")
    assert stopped.value.code == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith("ingest: error: ") and expected in line and "train.parquet" in line


def test_every_user_error_type_is_a_pipeline_error():
    from imdb_rnn.errors import ClusterError, SourceUnavailableError, TrainingDivergedError

    for error in (
        DataError,
        ParamsError,
        SourceUnavailableError,
        TrainingDivergedError,
        ClusterError,
    ):
        assert issubclass(error, PipelineError)


@pytest.mark.slow
def test_an_unreadable_review_file_in_the_pipeline_is_named(tokenized):
    victim = tokenized / "data/raw/validation.parquet"
    victim.write_bytes(b"not parquet")
    line = one_line_error(run_stage(tokenized, "linear", *stage_args("linear")))
    assert "validation.parquet is corrupt" in line


def test_reviews_that_read_as_null_stay_text(tmp_path):
    from imdb_rnn.sources import read_local_chunks

    path = tmp_path / "reviews.csv"
    pd.DataFrame({"text": ["NA", "null", "fine"], "label": [0, 1, 1]}).to_csv(path, index=False)
    assert pd.concat(read_local_chunks(path, 2))["text"].tolist() == ["NA", "null", "fine"]


# Found in review: more user errors that used to end in tracebacks.
def test_a_linear_model_with_no_n_gram_left_is_one_line(default_params):
    from imdb_rnn.linear import fit_linear
    from imdb_rnn.params import LinearParams

    params = LinearParams.model_validate(default_params["linear"] | {"min_df": 50})
    with pytest.raises(DataError, match=r"no n-gram occurs in at least linear\.min_df \(50\)"):
        fit_linear(["great film", "awful film"], np.array([1, 0]), params)


def test_word2vec_with_no_frequent_word_is_one_line(default_params):
    from imdb_rnn.embedding import train_word2vec
    from imdb_rnn.params import EmbedParams

    params = EmbedParams.model_validate(default_params["embed"] | {"min_count": 100})
    with pytest.raises(DataError, match=r"no training word occurs embed\.min_count \(100\) times"):
        train_word2vec([["great", "film"], ["awful", "film"]], params)


def test_a_predictor_naming_an_unknown_member_or_nan_is_refused(manifest, tmp_path):
    from imdb_rnn.predictor_file import read_manifest

    data = json.loads(manifest.read_text())
    for broken in (
        {"weights": {"rnn": 0.5, "cnn": 0.5}},
        {"intercept": float("nan")},
    ):
        path = tmp_path / "predictor.json"
        path.write_text(json.dumps(data | broken))
        with pytest.raises(DataError, match="is not a predictor written by the combine stage"):
            read_manifest(path)


def written_manifest(path: Path) -> dict:
    """A manifest as the combine stage writes it (member files not needed to read it back)."""
    from imdb_rnn.predictor_file import FileRef, PredictorManifest, write_manifest

    ref = FileRef(path="x", sha256="ab" * 32)
    write_manifest(
        PredictorManifest(
            threshold=0.5,
            batch_size=16,
            weights={"rnn": 0.5, "linear": 0.25},
            intercept=0.0,
            rnn_model=ref,
            vocabulary=ref,
            encoding=ref,
            linear_model=ref,
        ),
        path,
    )
    return json.loads(path.read_text())


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            lambda m: m["weights"].update(rnn=0.6),
            "was edited after the combine stage wrote it",
            id="one-weight-changed",
        ),
        pytest.param(
            lambda m: m.update(threshold=0.4),
            "was edited after the combine stage wrote it",
            id="threshold-changed",
        ),
        pytest.param(
            lambda m: m["weights"].update(rnn="0.5"),
            "(weights.rnn: Input should be a valid number, got '0.5')",
            id="weight-as-string",
        ),
        pytest.param(
            lambda m: m.update(threshold="0.5"),
            "(threshold: Input should be a valid number, got '0.5')",
            id="threshold-as-string",
        ),
        pytest.param(
            lambda m: m.update(batch_size="16"),
            "(batch_size: Input should be a valid integer, got '16')",
            id="batch-size-as-string",
        ),
        pytest.param(
            lambda m: m["rnn_model"].update(sha256="AB" * 32),
            "(rnn_model.sha256: must be 64 lower-case hexadecimal digits",
            id="upper-case-sha256",
        ),
        pytest.param(lambda m: m.pop("digest"), "has no digest", id="no-digest"),
    ],
)
def test_a_predictor_manifest_that_differs_from_what_combine_wrote_is_refused(
    tmp_path, edit, expected
):
    from imdb_rnn.predictor_file import read_manifest

    path = tmp_path / "predictor.json"
    data = written_manifest(path)
    read_manifest(path)  # as written, it reads back
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(DataError) as refused:
        read_manifest(path)
    assert expected in str(refused.value) and "rerun dvc repro combine" in str(refused.value)


@pytest.mark.slow
def test_imdb_predict_refuses_a_manifest_with_one_weight_changed(manifest):
    data = json.loads(manifest.read_text())
    data["weights"]["rnn"] += 0.1
    edited = manifest.parent / "edited-predictor.json"  # beside it: the member paths still hold
    edited.write_text(json.dumps(data))
    line = one_line_error(run_predict("--predictor", str(edited), "A great film."))
    assert "edited-predictor.json was edited after the combine stage wrote it" in line


@pytest.mark.slow
def test_a_reader_that_closes_the_pipe_stops_predict_quietly(manifest, tmp_path):
    """`imdb-predict --file big.txt | head -1`: exit 141 like `cat`, no BrokenPipeError."""
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("A great film.\n" * 3000)  # 90 kB of output: more than a pipe holds
    with (tmp_path / "stderr").open("wb") as stderr:
        process = subprocess.Popen(
            [*PREDICT, "--predictor", str(manifest), "--file", str(reviews)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=os.environ.copy(),
        )
        first_line = process.stdout.readline()
        process.stdout.close()  # as head does once it has its line
        assert process.wait(timeout=120) == 141  # 128 + SIGPIPE
    assert first_line.endswith(b"\tA great film.\n")
    errors = (tmp_path / "stderr").read_text()
    assert "Traceback" not in errors and "BrokenPipeError" not in errors, errors


@pytest.mark.slow
def test_predict_answers_standard_input_before_it_is_closed(manifest):
    """Input is read and classified a chunk at a time: the answers to the first chunk arrive while
    standard input is still open, so memory never holds the whole input."""
    chunk = 16  # BATCHES_PER_CHUNK batches of one review
    process = subprocess.Popen(
        [*PREDICT, "--predictor", str(manifest), "--batch-size", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    try:
        process.stdin.write(b"A great film.\n" * chunk + b"Awful.\n")
        process.stdin.flush()  # and kept open: more reviews could come
        readable, _, _ = select.select([process.stdout], [], [], 120)
        assert readable, "no answer within 120 s while standard input was open"
        first = process.stdout.readline()
        assert process.poll() is None  # still waiting for the rest of its input
    finally:
        process.stdin.close()
    rest = process.stdout.read().splitlines()
    assert process.wait(timeout=120) == 0
    assert first.endswith(b"\tA great film.\n") and len(rest) == chunk
    assert rest[-1].endswith(b"\tAwful.")


@pytest.mark.slow
def test_predict_json_read_in_chunks_is_one_array_as_before(manifest, tmp_path, capsys):
    reviews = [f"Review {number}: a great film." for number in range(40)]  # 3 chunks of 16
    (tmp_path / "reviews.txt").write_text("\n".join(reviews))
    options = ["--predictor", str(manifest), "--file", str(tmp_path / "reviews.txt")]
    predict.main([*options, "--batch-size", "1", "--json"])
    printed = capsys.readouterr().out
    predictions = json.loads(printed)
    assert [p["review"] for p in predictions] == reviews
    # the bytes json.dumps gives the whole array, as imdb-predict printed before it streamed
    assert printed == json.dumps(predictions, ensure_ascii=False, indent=2) + "\n"


def without_log_settings(**settings: str) -> dict[str, str]:
    """This environment, less any log setting of the person running the tests, plus ``settings``."""
    ignored = ("TF_CPP_MIN_LOG_LEVEL", "IMDB_RNN_VERBOSE")
    return {key: value for key, value in os.environ.items() if key not in ignored} | settings


@pytest.mark.slow
def test_predict_prints_no_tensorflow_start_up_log_and_the_same_numbers(manifest):
    """TensorFlow's C++ start-up lines (one is "E0000 ... failed call to cuInit") read as a failure:
    hidden unless IMDB_RNN_VERBOSE=1, which changes no byte of the output."""
    command = [*PREDICT, "--predictor", str(manifest), "--json", "A wonderful, moving film."]
    quiet = subprocess.run(command, capture_output=True, timeout=120, env=without_log_settings())
    assert quiet.returncode == 0 and quiet.stderr.decode() == ""
    verbose = subprocess.run(
        command, capture_output=True, timeout=120, env=without_log_settings(IMDB_RNN_VERBOSE="1")
    )
    assert verbose.returncode == 0 and verbose.stdout == quiet.stdout


@pytest.mark.slow
def test_stages_import_tensorflow_without_its_start_up_log():
    from tests.conftest import REPO_ROOT

    imported = subprocess.run(
        [sys.executable, "-c", "import stages, tensorflow"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=without_log_settings(),
    )
    assert imported.returncode == 0 and imported.stderr == "", imported.stderr


def test_a_state_directory_that_is_a_file_is_one_line(tmp_path):
    from imdb_rnn.resume import StateDirectory

    (tmp_path / "state").write_text("")
    with pytest.raises(DataError, match="is a file; give a directory"):
        StateDirectory(tmp_path / "state", "0" * 64, shared=True)


def test_ids_outside_the_vocabulary_are_refused_before_tensorflow(tmp_path):
    from imdb_rnn.encoding import check_id_split

    ids, labels = np.array([[2, 3], [9, 0]], np.int32), np.array([1, 0], np.int8)
    with pytest.raises(DataError, match=r"ids outside the vocabulary's 0\.\.4"):
        check_id_split(ids, labels, 5, Path("ids.npy"), Path("labels.npy"))
    with pytest.raises(DataError, match="labels other than 0 and 1"):
        check_id_split(ids[:, :1] % 5, np.array([1, 2]), 5, Path("ids.npy"), Path("labels.npy"))
    with pytest.raises(DataError, match="are not one split's ids and labels"):
        check_id_split(ids, labels[:1], 10, Path("ids.npy"), Path("labels.npy"))


def test_ctrl_c_is_one_line(capsys):
    def main():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as stopped:
        cli.run(main, "train")
    assert stopped.value.code == 130
    assert capsys.readouterr().err.strip().startswith("train: error: interrupted")


# Found with multi-worker training: TensorFlow answers a bad TF_CONFIG with a traceback.
@pytest.mark.slow
def test_a_tf_config_tensorflow_cannot_use_is_one_line(tokenized, tiny_params):
    tiny_params["train"]["distribution"] = "multi_worker"
    write_params(tokenized, tiny_params)
    assert run_stage(tokenized, "embed", *EMBED_ARGS).returncode == 0
    quoted_like_python = "{'cluster': {'worker': ['host0:12345']}, 'task': {'type': 'worker'}}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cluster = {"worker": [f"127.0.0.1:{port}"]}
        on_a_taken_port = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}})
        for tf_config, expected in [
            ("", "TF_CONFIG is not set"),  # was a TypeError in TensorFlow's cluster resolver
            (quoted_like_python, "TF_CONFIG is not JSON"),
            (
                on_a_taken_port,  # was gRPC's UnknownError
                f"port {port} of this worker (worker 1 of 1, 127.0.0.1:{port} in TF_CONFIG) is in"
                " use by another process",
            ),
        ]:
            result = run_stage(
                tokenized, "train", *stage_args("train"), env={"TF_CONFIG": tf_config}
            )
            assert expected in one_line_error(result)
    assert not (tokenized / "models/model.keras").exists()


@pytest.mark.parametrize(
    "task",
    [{"type": "worker", "index": 2}, {"type": "chief", "index": 0}, {"type": "worker"}],
)
def test_a_tf_config_task_outside_its_cluster_is_named(task):
    from imdb_rnn.cluster import read_cluster

    cluster = {"worker": ["host0:12345", "host1:12345"]}
    with pytest.raises(ParamsError, match="is not in its cluster"):
        read_cluster(json.dumps({"cluster": cluster, "task": task}))
    read_cluster(json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))


# Round 3: messages that say what really happened.
# A parent that starts a command and exits once ``ready`` exists, as a shell does that ran
# `nohup command &` and then ended; it prints the command's process id.
LAUNCHER = """
import subprocess, sys, time
from pathlib import Path
ready, stdout, stderr, *command = sys.argv[1:]
with open(stdout, "w") as out, open(stderr, "w") as err:
    print(subprocess.Popen(command, stdout=out, stderr=err).pid, flush=True)
while not Path(ready).exists():
    time.sleep(0.02)
"""
# A stage that says it is ready, then works for a minute.
SLOW_STAGE = """
import sys, time
from pathlib import Path
from imdb_rnn import cli
cli.run(lambda: (Path(sys.argv[1]).touch(), time.sleep(60)), "train")
"""


def library_env() -> dict:
    from tests.conftest import REPO_ROOT

    return os.environ | {"PYTHONPATH": str(REPO_ROOT / "src")}


def start_orphan(tmp_path: Path, ready: Path, *command: str) -> int:
    """Start ``command`` under a parent that exits once ``ready`` exists; its process id."""
    launcher = subprocess.run(
        [
            sys.executable,
            "-c",
            LAUNCHER,
            str(ready),
            str(tmp_path / "out"),
            str(tmp_path / "err"),
            *command,
        ],
        env=library_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return int(launcher.stdout)


def wait_until_gone(pid: int, timeout: float = 60) -> None:
    """An orphan is not this process's child: poll (its new parent may leave it a zombie)."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still runs")


@pytest.mark.slow
def test_sigterm_from_elsewhere_does_not_blame_the_parent(tmp_path):
    ready = tmp_path / "ready"
    stage = subprocess.Popen(
        [sys.executable, "-c", SLOW_STAGE, str(ready)],
        env=library_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    while not ready.exists():
        assert stage.poll() is None, stage.communicate()
        time.sleep(0.02)
    stage.send_signal(signal.SIGTERM)  # from a user or a service manager; the parent lives on
    stderr = stage.communicate(timeout=60)[1]
    assert stage.returncode == 143
    assert stderr.strip() == "train: error: stopped by SIGTERM; no output was written"


@pytest.mark.slow
def test_a_stage_whose_parent_ends_says_so(tmp_path):
    ready = tmp_path / "ready"
    wait_until_gone(start_orphan(tmp_path, ready, sys.executable, "-c", SLOW_STAGE, str(ready)))
    assert (tmp_path / "err").read_text().strip() == (
        "train: error: stopped because its parent process ended; no output was written"
    )


@pytest.mark.slow
def test_imdb_recipe_outlives_the_shell_that_started_it(recipe_project, monkeypatch):
    """`setsid nohup imdb-recipe run X &`, then the shell exits: the experiment must go on."""
    bin_dir = recipe_project / "bin"
    bin_dir.mkdir()
    fake_dvc = bin_dir / "dvc"  # an experiment that runs for a second
    fake_dvc.write_text(f"#!/bin/sh\ntouch {recipe_project}/ready\nsleep 1\ntouch finished\n")
    fake_dvc.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    recipe = start_orphan(
        recipe_project,
        recipe_project / "ready",
        sys.executable,
        "-m",
        "imdb_rnn.recipes",
        "run",
        "seed-001-lstm",
    )
    wait_until_gone(recipe)
    assert (recipe_project / "err").read_text() == ""
    assert (recipe_project / "finished").exists(), "the experiment was killed with its shell"


def test_a_misspelled_set_key_is_blamed_on_the_set_option(recipe_project):
    with pytest.raises(ParamsError) as caught:
        recipe_main(["run", "--dry-run", "seed-001-lstm", "--set", "train.epocs=2"])
    assert str(caught.value) == (
        "--set: params.yaml has no key train.epocs (did you mean epochs?); correct --set"
    )
