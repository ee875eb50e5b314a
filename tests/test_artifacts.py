from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imdb_rnn import artifacts
from imdb_rnn.errors import DataError


def test_failed_write_leaves_neither_the_target_nor_a_temporary_file(tmp_path):
    target = tmp_path / "out" / "report.json"
    with pytest.raises(RuntimeError), artifacts.atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("interrupted")
    assert list((tmp_path / "out").iterdir()) == []


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "report.json"
    artifacts.write_json({"old": 1}, target)
    with pytest.raises(TypeError):
        artifacts.write_json({"bad": object()}, target)
    assert artifacts.read_json(target) == {"old": 1}
    assert [path.name for path in tmp_path.iterdir()] == ["report.json"]


def test_arrays_round_trip_with_identical_bytes(tmp_path):
    ids = np.arange(12, dtype=np.int32).reshape(3, 4)
    labels = np.array([0, 1, 1], dtype=np.int8)
    artifacts.write_arrays(tmp_path / "a.npz", ids=ids, labels=labels)
    artifacts.write_arrays(tmp_path / "b.npz", ids=ids, labels=labels)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = artifacts.read_arrays(tmp_path / "a.npz", ("ids", "labels"))
    np.testing.assert_array_equal(loaded["ids"], ids)
    assert loaded["labels"].dtype == np.int8


def test_reviews_round_trip_with_identical_bytes(tmp_path, toy_reviews):
    artifacts.write_reviews(toy_reviews, tmp_path / "a.parquet")
    artifacts.write_reviews(toy_reviews, tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    read = artifacts.read_reviews(tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(read, toy_reviews, check_dtype=False)
    assert read["label"].dtype == np.int8


def test_json_refuses_nan_and_infinity(tmp_path):
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="Out of range float"):
            artifacts.write_json({"roc_auc": bad}, tmp_path / "metrics.json")
    assert not (tmp_path / "metrics.json").exists()


def test_named_arrays_are_checked(tmp_path):
    artifacts.write_arrays(tmp_path / "a.npz", ids=np.zeros(3))
    with pytest.raises(DataError, match=r"no array labels; it has \['ids'\]"):
        artifacts.read_arrays(tmp_path / "a.npz", ("ids", "labels"))


def test_a_large_array_is_written_piece_by_piece_and_read_as_a_memory_map(tmp_path):
    with artifacts.array_writer(tmp_path / "ids.npy", (5, 2), "int32") as ids:
        ids[:3] = 1
        ids[3:] = 2
    loaded = artifacts.read_array(tmp_path / "ids.npy", memory_map=True)
    assert isinstance(loaded, np.memmap) and loaded.tolist() == [[1, 1]] * 3 + [[2, 2]] * 2
    np.save(tmp_path / "plain.npy", np.array([[1, 1]] * 3 + [[2, 2]] * 2, dtype=np.int32))
    assert (tmp_path / "ids.npy").read_bytes() == (tmp_path / "plain.npy").read_bytes()


def test_a_failed_piece_by_piece_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), artifacts.array_writer(tmp_path / "ids.npy", (5,), "int8"):
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_token_corpus_round_trip(tmp_path):
    corpus = [["a", "b"], [], ["café", "!"]]
    with artifacts.text_writer(tmp_path / "tokens.txt") as stream:
        for tokens in corpus:
            stream.write(" ".join(tokens) + "\n")
    assert list(artifacts.iter_token_corpus(tmp_path / "tokens.txt")) == corpus


def test_reviews_are_read_in_chunks(tmp_path, toy_reviews):
    artifacts.write_reviews(toy_reviews, tmp_path / "a.parquet")
    assert artifacts.review_count(tmp_path / "a.parquet") == 4
    chunks = list(artifacts.iter_reviews(tmp_path / "a.parquet", chunk_size=3))
    assert [len(chunk) for chunk in chunks] == [3, 1]


def memory_reading(path) -> tuple[float, float]:
    """MiB a fresh process gains while it reads ``path`` in chunks: its anonymous memory (coarse,
    as the allocator keeps freed pages in blocks of tens of MiB) and the peak of pyarrow's memory
    pool (exact, and where a reader that loads a whole column would show it)."""
    script = f"""
import pyarrow
from pathlib import Path
from imdb_rnn import artifacts
from imdb_rnn.cli import AnonymousMemoryPeak
memory = AnonymousMemoryPeak()
before = memory.sample()
for chunk in artifacts.iter_reviews(Path({str(path)!r}), chunk_size=1000):
    memory.sample()
print(memory.sample() - before, pyarrow.default_memory_pool().max_memory() / 2**20)
"""
    anonymous, pool = subprocess.check_output([sys.executable, "-c", script], text=True).split()
    return float(anonymous), float(pool)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_reading_a_split_in_chunks_takes_the_same_memory_for_a_larger_split(tmp_path):
    """Many tools write a parquet file as one row group (ingest did too, until it streamed), and
    pyarrow's default reader loads a whole row group's column at once: "chunked" reading used to
    hold the entire split (measured with this test's files: +116 MiB of pool and +142 MiB
    anonymous from 20,000 to 80,000 reviews)."""

    # Random letters, so that the file is as large as the text: repeated reviews compress to
    # almost nothing, and then even the whole-column reader looks flat.
    rng = np.random.default_rng(0)
    gained, sizes = {}, {}
    for count in (20_000, 80_000):
        letters = rng.integers(ord("a"), ord("z") + 1, size=(count, 2000), dtype=np.uint8)
        letters[:, 5::6] = ord(" ")
        path = tmp_path / f"{count}.parquet"
        artifacts.write_reviews(
            pd.DataFrame({"text": letters.view("S2000").ravel().astype(str), "label": 0}), path
        )
        sizes[count] = path.stat().st_size / 2**20
        gained[count] = memory_reading(path)
    extra_file_mib = sizes[80_000] - sizes[20_000]  # ~115 MiB
    (anonymous_small, pool_small), (anonymous_large, pool_large) = gained.values()
    assert pool_large - pool_small < extra_file_mib / 20, gained
    assert anonymous_large - anonymous_small < extra_file_mib / 2, gained


def test_a_directory_where_a_file_belongs_is_named(tmp_path):
    with pytest.raises(DataError, match="is a directory, not a file"):
        artifacts.read_json(tmp_path)


def test_outputs_get_the_usual_file_mode_not_the_temporary_files(tmp_path):
    """mkstemp makes 0600 files; an output must be readable as any file its user writes."""
    artifacts.write_json({"a": 1}, tmp_path / "report.json")
    probe = tmp_path / "probe"
    probe.write_text("")  # what open() gives under this process's umask
    assert (tmp_path / "report.json").stat().st_mode & 0o777 == probe.stat().st_mode & 0o777


# A writer that says where its temporaries are, then works for a minute.
SLOW_WRITER = """
import sys, time
from pathlib import Path
from imdb_rnn import artifacts
target = Path(sys.argv[1])
with artifacts.atomic_path(target, suffix=".keras") as temporary, artifacts.scratch_directory(
    target
) as scratch:
    (scratch / "model.keras").write_bytes(b"half")
    print(temporary, scratch, flush=True)
    time.sleep(60)
"""


@pytest.mark.slow
def test_the_next_write_removes_a_killed_writers_temporaries_and_no_others(tmp_path):
    """kill -9 while models/model.keras was being written left hidden files there forever."""
    from tests.conftest import REPO_ROOT

    target = tmp_path / "models" / "model.keras"
    writer = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(target)],
        env=os.environ | {"PYTHONPATH": str(REPO_ROOT / "src")},
        stdout=subprocess.PIPE,
        text=True,
    )
    in_use = [Path(name) for name in writer.stdout.readline().split()]
    assert len(in_use) == 2 and all(path.exists() for path in in_use)
    artifacts.write_json({"a": 1}, target)  # another writer of the same file, meanwhile
    assert all(path.exists() for path in in_use), "a temporary in use was removed"
    writer.kill()
    writer.wait(timeout=30)
    artifacts.write_json({"a": 2}, target)
    assert sorted(path.name for path in target.parent.iterdir()) == ["model.keras"]
