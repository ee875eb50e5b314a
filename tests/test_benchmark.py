"""The benchmark script's record reading and table (the full-data run itself is not a test)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from imdb_rnn import cli
from tests.conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location("benchmark", REPO_ROOT / "benchmarks/benchmark.py")
benchmark = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark)


def test_every_command_appends_a_record_the_benchmark_reads(tmp_path, monkeypatch):
    """The stages report figures as data, not as log lines a regular expression must find."""
    records = tmp_path / "records.jsonl"
    monkeypatch.setenv(cli.RECORD_ENV, str(records))
    cli.run(lambda: {"tokens_per_second": 3354391}, "tokenize")
    cli.run(lambda: {"epochs": 5, "seconds_per_epoch": 111.8}, "train")
    cli.run(lambda: None, "ingest")
    stages = benchmark.read_records(records)
    assert list(stages) == ["tokenize", "train", "ingest"]
    assert stages["tokenize"]["tokens_per_second"] == 3354391
    assert stages["train"]["seconds_per_epoch"] == 111.8
    assert {"seconds", "peak_memory_mib"} <= set(stages["ingest"])
    if sys.platform.startswith("linux"):
        assert stages["ingest"]["peak_anonymous_memory_mib"] > 0
    assert all(json.loads(line) for line in records.read_text().splitlines())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_the_anonymous_peak_counts_allocations_not_memory_mapped_files(tmp_path):
    """In a fresh process: in pytest's own, memory freed by earlier tests can go back to the
    system during this one, and hide the allocation from a peak taken before it."""
    mebibytes = 128
    path = tmp_path / "ids.npy"
    written = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(mebibytes << 20,))
    written[:] = 1
    del written
    script = f"""
import numpy as np
from imdb_rnn import cli
sampler = cli.AnonymousMemoryPeak()
before = sampler.sample()
mapped = np.load({str(path)!r}, mmap_mode="r")  # every page read: resident, but file-backed
assert int(mapped.sum(dtype=np.int64)) == {mebibytes} << 20
after_mapping = sampler.sample()
held = np.ones({mebibytes} << 20, dtype=np.uint8)  # the process's own memory
print(after_mapping - before, sampler.sample() - before)
"""
    output = subprocess.check_output([sys.executable, "-c", script], text=True)
    after_mapping, after_allocating = map(float, output.split())
    assert after_mapping < mebibytes / 4
    assert after_allocating > mebibytes * 3 / 4


def test_the_table_shows_every_measurement():
    stages = {
        "tokenize": {"seconds": 6.9, "peak_memory_mib": 1310, "tokens_per_second": 3354391},
        "train": {
            "seconds": 563.9,
            "peak_memory_mib": 1548,
            "epochs": 5,
            "seconds_per_epoch": 111.8,
        },
    }
    results = {
        "machine": {"cpu": "Some CPU", "cores": 2},
        "pipeline": {
            "stages": stages,
            "repro_wall_s": 700.0,
            "test_accuracy": 0.91,
            "committed_test_accuracy": 0.9099,
            "accuracy_difference": 0.0001,
            "identical_to_committed": False,
            "prediction": {"from_text_reviews_per_s": 800},
        },
        "recipe": {
            "plain_keras_s_per_epoch": [30.0, 32.0],
            "pipeline_s_per_epoch": [31.0, 31.5],
            "ratio_pipeline_to_plain": 1.008,
        },
    }
    table = benchmark.table(results)
    for expected in (
        "3,354,391 tokens/s",
        "5 epochs at 111.8 s/epoch",
        "11.7 min",
        "+0.0001",
        "800 reviews/s",
        "31.0 s/epoch",
        "1.008",
    ):
        assert expected in table
