"""The benchmark script's log parsing and table (the full-data run itself is not a test)."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location("benchmark", REPO_ROOT / "benchmarks/benchmark.py")
benchmark = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark)

LOG = """\
16:35:58 imdb_rnn: ingest finished in 2.7 s, peak memory 877 MiB
16:36:04 stages.tokenize: tokenized 11627246 tokens in 3.5 s (3354391 tokens/s)
16:36:07 imdb_rnn: tokenize finished in 6.9 s, peak memory 1310 MiB
16:45:00 stages.train: trained 5 epochs in 559 s (111.8 s per epoch)
16:45:01 imdb_rnn: train finished in 563.9 s, peak memory 1548 MiB
"""


def test_stage_lines_become_numbers():
    stages = benchmark.parse_stage_log(LOG)
    assert stages == {
        "ingest": {"wall_s": 2.7, "peak_memory_mib": 877},
        "tokenize": {
            "wall_s": 6.9,
            "peak_memory_mib": 1310,
            "tokens": 11627246,
            "tokens_per_s": 3354391,
        },
        "train": {"wall_s": 563.9, "peak_memory_mib": 1548, "epochs": 5, "s_per_epoch": 111.8},
    }


def test_the_table_shows_every_measurement():
    results = {
        "machine": {"cpu": "Some CPU", "cores": 2},
        "pipeline": {
            "stages": benchmark.parse_stage_log(LOG),
            "repro_wall_s": 700.0,
            "test_accuracy": 0.91,
            "committed_test_accuracy": 0.9099,
            "accuracy_difference": 0.0001,
            "identical_to_committed": False,
            "prediction": {"from_ids_reviews_per_s": 900, "from_text_reviews_per_s": 800},
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
        "900 reviews/s",
        "31.0 s/epoch",
        "1.008",
    ):
        assert expected in table
