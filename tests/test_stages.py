"""Each stage run as dvc.yaml runs it (``python -m stages.<name>``) in a scratch directory."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from gensim.models import KeyedVectors

from imdb_rnn.cli import RECORD_ENV
from tests.conftest import REPO_ROOT, SHARED_IMDB_CACHE
from tests.stage_runner import (
    EMBED_ARGS,
    INGEST_ARGS,
    TOKENIZE_ARGS,
    error_line,
    run_stage,
    write_params,
)

pytestmark = pytest.mark.slow  # trains Keras models or starts processes


def test_data_stages_write_every_declared_output(tmp_path, tiny_params):
    write_params(tmp_path, tiny_params)
    for name, args in (("ingest", INGEST_ARGS), ("tokenize", TOKENIZE_ARGS), ("embed", EMBED_ARGS)):
        result = run_stage(tmp_path, name, *args)
        assert result.returncode == 0, result.stderr

    report = json.loads((tmp_path / "reports/data.json").read_text())
    assert [report[split]["rows"] for split in ("train", "validation", "test")] == [180, 20, 100]
    assert report["unlabelled"]["rows"] == 60  # the Hub layout's unsupervised-00000-of-00001
    assert pq.read_schema(tmp_path / "data/raw/unlabelled.parquet").names == ["text"]

    ids = np.load(tmp_path / "data/tokenized/train_ids.npy")
    assert ids.shape == (180, 16) and ids.dtype == np.int32
    assert np.load(tmp_path / "data/tokenized/train_labels.npy").shape == (180,)
    vocabulary = json.loads((tmp_path / "data/tokenized/vocabulary.json").read_text())
    assert vocabulary["tokens"][:2] == ["<pad>", "<oov>"] and len(vocabulary["tokens"]) <= 50
    corpus = (tmp_path / "data/tokenized/train_tokens.txt").read_text().splitlines()
    assert len(corpus) == 180 and max(len(line.split()) for line in corpus) > 16  # untruncated

    matrix = np.load(tmp_path / "data/embedding/matrix.npy")
    assert matrix.shape == (len(vocabulary["tokens"]), 8)
    assert not matrix[0].any()
    coverage = json.loads((tmp_path / "reports/embedding.json").read_text())
    assert coverage["method"] == "word2vec" and coverage["vocabulary_coverage"] == 1.0
    vectors = KeyedVectors.load_word2vec_format(
        str(tmp_path / "models/word_vectors.bin"), binary=True
    )
    np.testing.assert_allclose(matrix[vocabulary["tokens"].index("movie")], vectors["movie"])


def test_bad_parameter_stops_the_stage_with_one_line_and_no_output(tmp_path, tiny_params):
    tiny_params["ingest"]["validation_fraction"] = 1.5
    write_params(tmp_path, tiny_params)
    result = run_stage(tmp_path, "ingest", *INGEST_ARGS)
    assert result.returncode == 1
    assert error_line(result) == (
        "ingest: error: params.yaml: ingest.validation_fraction must be less than 1, got 1.5"
    )
    assert not (tmp_path / "data").exists() and not (tmp_path / "reports").exists()


def test_bad_data_stops_the_stage_with_one_line_and_no_output(tmp_path, tiny_params, tiny_dataset):
    train_file = next(tiny_dataset.rglob("train*.parquet"))
    pd.read_parquet(train_file).rename(columns={"text": "review"}).to_parquet(train_file)
    write_params(tmp_path, tiny_params)
    result = run_stage(tmp_path, "ingest", *INGEST_ARGS)
    assert result.returncode == 1
    line = error_line(result)
    assert "missing column(s) text" in line and "Rename the columns" in line
    assert not (tmp_path / "data").exists()


def test_embed_random_and_pretrained_methods(tmp_path, tiny_params):
    write_params(tmp_path, tiny_params)
    for name, args in (("ingest", INGEST_ARGS), ("tokenize", TOKENIZE_ARGS)):
        assert run_stage(tmp_path, name, *args).returncode == 0

    tiny_params["embed"]["method"] = "random"
    write_params(tmp_path, tiny_params)
    assert run_stage(tmp_path, "embed", *EMBED_ARGS).returncode == 0
    assert json.loads((tmp_path / "reports/embedding.json").read_text())["vocabulary_coverage"] == 0
    assert np.abs(np.load(tmp_path / "data/embedding/matrix.npy")).max() <= 0.05

    pretrained = KeyedVectors(vector_size=3)
    pretrained.add_vectors(["movie", "great", "zebra"], np.eye(3, dtype=np.float32))
    pretrained.save_word2vec_format(str(tmp_path / "vectors.txt"), binary=False)
    tiny_params["embed"]["method"] = "pretrained"
    tiny_params["embed"]["pretrained"] |= {"source": "vectors.txt", "format": "word2vec-text"}
    write_params(tmp_path, tiny_params)
    result = run_stage(tmp_path, "embed", *EMBED_ARGS)
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "data/embedding/matrix.npy").shape[1] == 3
    saved = KeyedVectors.load_word2vec_format(
        str(tmp_path / "models/word_vectors.bin"), binary=True
    )
    assert sorted(saved.index_to_key) == ["great", "movie"]  # "zebra" is not in the vocabulary


def test_huggingface_source_offline_without_cache_explains_the_fix(tmp_path, tiny_params):
    tiny_params["ingest"]["source"] = "huggingface"
    write_params(tmp_path, tiny_params)
    offline = {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(tmp_path / "empty"),
        "HF_HOME": str(tmp_path / "home"),
    }
    result = run_stage(tmp_path, "ingest", *INGEST_ARGS, env=offline)
    assert result.returncode == 1
    line = error_line(result)
    assert (
        "cannot load Hugging Face dataset 'stanfordnlp/imdb'" in line and "HF_HUB_OFFLINE=1" in line
    )


@pytest.mark.skipif(
    not SHARED_IMDB_CACHE.exists(), reason="needs the offline IMDB cache in ../shared"
)
def test_huggingface_source_reads_the_offline_cache(tmp_path, tiny_params):
    """The default source, unchanged, on the real dataset (capped to keep the test quick)."""
    cache = tmp_path / "hf"
    shutil.copytree(SHARED_IMDB_CACHE, cache)  # datasets may write lock files into its cache
    tiny_params["ingest"] |= {"source": "huggingface", "max_reviews_per_split": 300}
    write_params(tmp_path, tiny_params)
    offline = {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(cache),
        "HF_HOME": str(tmp_path / "home"),
    }
    result = run_stage(tmp_path, "ingest", *INGEST_ARGS, env=offline)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "reports/data.json").read_text())
    assert all(report[split]["rows"] == 300 for split in ("train", "validation", "test"))
    assert report["train"]["positive_share"] == 0.5
    assert report["unlabelled"]["rows"] == 300  # the split unsupervised, capped the same way


def incompressible_reviews(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` reviews of 2,000 random letters and spaces: nothing compresses away, and pandas
    writes them as one row group, as it exports any frame."""
    letters = rng.integers(ord("a"), ord("z") + 1, size=(count, 2000), dtype=np.uint8)
    letters[:, 5::6] = ord(" ")
    return letters.view("S2000").ravel().astype(str)


def ingest_peak_anonymous_mib(project, params: dict) -> float:
    """Run ingest in ``project`` with ``params``; the peak anonymous memory its record gives."""
    write_params(project, params)
    records = project / "records.jsonl"
    result = run_stage(project, "ingest", *INGEST_ARGS, env={RECORD_ENV: str(records)})
    assert result.returncode == 0, result.stderr
    return json.loads(records.read_text())["peak_anonymous_memory_mib"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_ingest_takes_the_same_memory_for_a_four_times_larger_corpus(tmp_path, tiny_params):
    """ingest used to hold every split as a DataFrame: +400 MiB of anonymous memory from this
    test's 20,000 to its 80,000 reviews. It now streams the source through a memory-mapped file,
    with Arrow's buffers in jemalloc: under pyarrow's default pool the fragments of freed chunks
    still added 22 to 62 MiB (CI failed at 62), under jemalloc 1 to 5 MiB."""
    rng = np.random.default_rng(0)
    peaks, sizes = {}, {}
    for count in (20_000, 80_000):
        project = tmp_path / str(count)
        project.mkdir()
        source = project / "reviews.parquet"
        texts = incompressible_reviews(rng, count)
        pd.DataFrame({"text": texts, "label": np.arange(count) % 2}).to_parquet(source)
        tiny_params["ingest"] |= {"source": str(source), "protocol": "random", "unlabelled": False}
        peaks[count] = ingest_peak_anonymous_mib(project, tiny_params)
        sizes[count] = source.stat().st_size / 2**20
    assert peaks[80_000] - peaks[20_000] < (sizes[80_000] - sizes[20_000]) / 4, (peaks, sizes)


def arrow_pool_of_a_stage(environment: dict[str, str]) -> str:
    """The pyarrow memory pool a stage allocates from, given these environment variables."""
    script = "import stages, pyarrow; print(pyarrow.default_memory_pool().backend_name)"
    inherited = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    return subprocess.check_output(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=inherited | {"PYTHONPATH": str(REPO_ROOT)} | environment,
        text=True,
    ).strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="jemalloc is chosen on Linux")
def test_a_stage_allocates_arrow_buffers_from_jemalloc_unless_the_user_chose_a_pool():
    """The ingest memory tests in this file measure it; this one names the pool: pyarrow's default
    one kept the fragments of freed chunks."""
    assert arrow_pool_of_a_stage({}) == "jemalloc"
    assert arrow_pool_of_a_stage({"ARROW_DEFAULT_MEMORY_POOL": "system"}) == "system"


def test_embed_learns_from_the_unlabelled_reviews_only_when_asked(tmp_path, tiny_params):
    write_params(tmp_path, tiny_params)
    for name, args in (("ingest", INGEST_ARGS), ("tokenize", TOKENIZE_ARGS), ("embed", EMBED_ARGS)):
        assert run_stage(tmp_path, name, *args).returncode == 0
    assert json.loads((tmp_path / "reports/embedding.json").read_text())["unlabelled_reviews"] == 0
    alone = np.load(tmp_path / "data/embedding/matrix.npy")

    tiny_params["embed"]["unlabelled"] = True
    write_params(tmp_path, tiny_params)
    result = run_stage(tmp_path, "embed", *EMBED_ARGS)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "reports/embedding.json").read_text())
    assert (
        report["unlabelled_reviews"]
        == pq.read_metadata(tmp_path / "data/raw/unlabelled.parquet").num_rows
    )
    with_unlabelled = np.load(tmp_path / "data/embedding/matrix.npy")
    assert with_unlabelled.shape == alone.shape and not np.array_equal(with_unlabelled, alone)
    assert sorted(path.name for path in (tmp_path / "data/embedding").iterdir()) == [
        "matrix.npy"
    ], "the scratch corpus is gone"

    # Asked for, but ingest kept none: one line, and the previous outputs stay as they were.
    tiny_params["ingest"]["unlabelled"] = False
    write_params(tmp_path, tiny_params)
    assert run_stage(tmp_path, "ingest", *INGEST_ARGS).returncode == 0
    result = run_stage(tmp_path, "embed", *EMBED_ARGS)
    assert result.returncode == 1
    assert error_line(result) == (
        "embed: error: embed.unlabelled is true but data/raw/unlabelled.parquet holds no reviews;"
        " set ingest.unlabelled to true (its source must have unlabelled reviews) or"
        " embed.unlabelled to false"
    )
    np.testing.assert_array_equal(np.load(tmp_path / "data/embedding/matrix.npy"), with_unlabelled)


def labelled_outputs(workdir) -> dict[str, str]:
    return {
        split: hashlib.sha256((workdir / f"data/raw/{split}.parquet").read_bytes()).hexdigest()
        for split in ("train", "validation", "test")
    }


def test_unlabelled_false_writes_an_empty_file_and_says_so(tmp_path, tiny_params):
    tiny_params["ingest"]["unlabelled"] = False
    write_params(tmp_path, tiny_params)
    result = run_stage(tmp_path, "ingest", *INGEST_ARGS)
    assert result.returncode == 0, result.stderr
    unlabelled = pq.read_table(tmp_path / "data/raw/unlabelled.parquet")
    assert unlabelled.num_rows == 0 and unlabelled.schema.names == ["text"]
    report = json.loads((tmp_path / "reports/data.json").read_text())  # no NaN: JSON
    assert report["unlabelled"] == {
        "enabled": False,
        "rows": 0,
        "dropped_copies_of_validation_or_test": 0,
        "dropped_repeats": 0,
        "dropped_empty": 0,
        "mean_words": None,
        "median_words": None,
        "p95_words": None,
    }


def test_unlabelled_reviews_lose_copies_of_scored_reviews_and_labelled_splits_stay(
    tmp_path, tiny_params
):
    """ingest.unlabelled_path wins over the source's own unlabelled reviews; the copies of
    validation and test reviews it holds, as the split files hold them, are dropped, and so are
    repeats; the labelled splits do not change by a byte."""
    write_params(tmp_path, tiny_params)
    assert run_stage(tmp_path, "ingest", *INGEST_ARGS).returncode == 0
    before = labelled_outputs(tmp_path)
    train, validation, test = (
        pd.read_parquet(tmp_path / f"data/raw/{split}.parquet")["text"].tolist()
        for split in ("train", "validation", "test")
    )
    texts = [validation[0], test[3], train[0], "New.", "New.", "  ", validation[0], "Another."]
    pd.DataFrame({"text": texts, "label": -1}).to_parquet(tmp_path / "mine.parquet")
    tiny_params["ingest"]["unlabelled_path"] = "mine.parquet"
    write_params(tmp_path, tiny_params)
    result = run_stage(tmp_path, "ingest", *INGEST_ARGS)
    assert result.returncode == 0, result.stderr
    kept = pd.read_parquet(tmp_path / "data/raw/unlabelled.parquet")["text"].tolist()
    assert kept == [train[0], "New.", "Another."]  # a copy of a training review stays
    report = json.loads((tmp_path / "reports/data.json").read_text())["unlabelled"]
    assert report["enabled"] and report["rows"] == 3
    assert report["dropped_copies_of_validation_or_test"] == 3
    assert (report["dropped_repeats"], report["dropped_empty"]) == (1, 1)
    assert labelled_outputs(tmp_path) == before


def test_a_source_without_unlabelled_reviews_stops_the_stage_before_any_output(
    tmp_path, tiny_params, tiny_dataset
):
    next(tiny_dataset.rglob("unsupervised*")).unlink()
    write_params(tmp_path, tiny_params)
    result = run_stage(tmp_path, "ingest", *INGEST_ARGS)
    assert error_line(result) == (
        f"ingest: error: {tiny_dataset}: no unsupervised*.parquet or unsupervised*.csv file of"
        " unlabelled reviews; add one, or set ingest.unlabelled: false or name a file in"
        " ingest.unlabelled_path"
    )
    assert not (tmp_path / "data").exists() and not (tmp_path / "reports").exists()


def test_bad_unlabelled_reviews_found_late_leave_no_output(tmp_path, tiny_params):
    """The unlabelled reviews are written before the labelled splits, so an error in their last
    chunk still stops the stage before any output exists."""
    texts = [f"review {index}" for index in range(10_000)] + [str(i) for i in range(10_000)]
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "mine.csv", index=False)
    tiny_params["ingest"]["unlabelled_path"] = "mine.csv"
    write_params(tmp_path, tiny_params)
    line = error_line(run_stage(tmp_path, "ingest", *INGEST_ARGS))
    assert line == (
        "ingest: error: mine.csv: every value of column 'text' in rows 10001 to 20000 reads as"
        " int64, not review text; check that the header names the review column 'text'"
    )
    assert not (tmp_path / "data").exists() and not (tmp_path / "reports").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_ingest_takes_the_same_memory_for_four_times_more_unlabelled_reviews(tmp_path, tiny_params):
    """The unlabelled reviews are streamed from their file to the output a chunk at a time; what
    grows with them is a digest of 16 bytes per review kept, and their lengths (under pyarrow's
    default pool, +40 to +49 MiB of fragments; under jemalloc, -7 to -3)."""
    rng = np.random.default_rng(0)
    peaks, sizes = {}, {}
    for count in (20_000, 80_000):
        project = tmp_path / str(count)
        project.mkdir()
        unlabelled = project / "unlabelled.parquet"
        pd.DataFrame({"text": incompressible_reviews(rng, count), "label": -1}).to_parquet(
            unlabelled
        )
        tiny_params["ingest"]["unlabelled_path"] = str(unlabelled)
        peaks[count] = ingest_peak_anonymous_mib(project, tiny_params)
        report = json.loads((project / "reports/data.json").read_text())
        assert report["unlabelled"]["rows"] == count
        sizes[count] = unlabelled.stat().st_size / 2**20
    assert peaks[80_000] - peaks[20_000] < (sizes[80_000] - sizes[20_000]) / 4, (peaks, sizes)
