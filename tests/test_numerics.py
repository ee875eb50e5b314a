"""Portable numerics: the same bytes whatever kernels and thread counts another machine would use.

Another CPU is emulated on this one by the variables that make OpenBLAS, oneDNN and NumPy choose
kernels as that CPU would (e.g. Sandybridge: AVX without FMA; SkylakeX / AVX512_CORE: AVX-512),
and by thread counts. Unpinned, those choices change the embedding matrix and the model; pinned
(imdb_rnn.numerics, applied by stages/__init__.py), every combination gives the same bytes.
"""

from __future__ import annotations

import copy
import hashlib
import os

import pytest

from imdb_rnn import numerics
from tests.conftest import make_reviews
from tests.stage_runner import run_stage, stage_args, write_params

UNPINNED = {numerics.SWITCH_ENV: "0"}
# What other machines would choose, and how many threads they would run.
EMULATED_MACHINES = {
    "this machine": {},
    "one thread": {"TF_NUM_INTRAOP_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    "four threads": {"TF_NUM_INTRAOP_THREADS": "4", "OPENBLAS_NUM_THREADS": "4"},
    "AVX-512 kernels asked for": {
        "OPENBLAS_CORETYPE": "SkylakeX",
        "ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
    },
}
OLDER_CPU = {"OPENBLAS_CORETYPE": "Sandybridge", "ONEDNN_MAX_CPU_ISA": "AVX"}


@pytest.fixture(scope="module")
def tokenized(tmp_path_factory, request):
    """Ingest and tokenize once; embed and train then run under each emulated machine."""
    import yaml

    from tests.conftest import REPO_ROOT

    root = tmp_path_factory.mktemp("numerics")
    source = root / "imdb"
    source.mkdir()
    make_reviews(600, seed=1).to_parquet(source / "train.parquet")
    make_reviews(200, seed=2).to_parquet(source / "test.parquet")
    params = copy.deepcopy(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))
    params["ingest"]["source"] = str(source)
    params["tokenize"] |= {"vocab_size": 60, "max_length": 32}
    # vectors and layers wide enough that SIMD width and FMA change how sums are ordered
    params["embed"] |= {"dimension": 64, "epochs": 2, "min_count": 1}
    params["train"] |= {"units": 16, "epochs": 2}
    write_params(root, params)
    for name in ("ingest", "tokenize"):
        assert run_stage(root, name, *stage_args(name)).returncode == 0
    return root


def hashes_under(root, environment: dict[str, str]) -> dict[str, str]:
    for stage in ("embed", "train"):
        result = run_stage(root, stage, *stage_args(stage), env=environment)
        assert result.returncode == 0, result.stderr[-2000:]
    return {
        name: hashlib.sha256((root / name).read_bytes()).hexdigest()
        for name in ("data/embedding/matrix.npy", "models/model.keras")
    }


@pytest.mark.slow
@pytest.mark.skipif(not numerics.cpu_has_avx2(), reason="the pins name AVX2 kernels")
def test_every_emulated_machine_gives_the_same_bytes_when_pinned(tokenized):
    pinned = {name: hashes_under(tokenized, env) for name, env in EMULATED_MACHINES.items()}
    assert len({tuple(hashes.values()) for hashes in pinned.values()}) == 1, pinned
    # The same as AVX2 kernels chosen by hand, without the pins: the pins are those kernels.
    by_hand = UNPINNED | {k: v for k, v in numerics.PINNED_KERNELS.items()}
    assert hashes_under(tokenized, by_hand) == pinned["this machine"]
    # And the emulation is real: unpinned, an older CPU's kernels give other bytes.
    older = hashes_under(tokenized, UNPINNED | OLDER_CPU)
    assert older["data/embedding/matrix.npy"] != pinned["this machine"]["data/embedding/matrix.npy"]
    assert older["models/model.keras"] != pinned["this machine"]["models/model.keras"]


def test_the_pins_are_set_before_the_libraries_load(monkeypatch):
    for name in numerics.PINNED_KERNELS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(numerics.SWITCH_ENV, raising=False)
    monkeypatch.setattr(numerics, "cpu_has_avx2", lambda: True)
    numerics.pin_kernels()
    assert {name: os.environ[name] for name in numerics.PINNED_KERNELS} == numerics.PINNED_KERNELS


def test_the_pins_can_be_switched_off_and_are_never_set_on_an_older_cpu(monkeypatch):
    for name in numerics.PINNED_KERNELS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(numerics.SWITCH_ENV, "0")
    numerics.pin_kernels()
    assert not any(name in os.environ for name in numerics.PINNED_KERNELS)
    monkeypatch.delenv(numerics.SWITCH_ENV)
    monkeypatch.setattr(numerics, "cpu_has_avx2", lambda: False)  # AVX2 kernels would crash
    numerics.pin_kernels()
    assert not any(name in os.environ for name in numerics.PINNED_KERNELS)


def test_the_environment_report_lists_blas_libraries_in_a_stable_order(monkeypatch):
    """threadpoolctl lists libraries in the order they happened to load; a rerun on the same
    machine must not show a diff in reports/environment.json."""
    import threadpoolctl

    from imdb_rnn import environment

    libraries = [
        {"user_api": "blas", "internal_api": "openblas", "version": version, "num_threads": 2}
        for version in ("0.3.31", "0.3.30")
    ]
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: libraries)
    first = environment.blas_libraries()
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: libraries[::-1])
    assert environment.blas_libraries() == first
    assert [library["version"] for library in first] == ["0.3.30", "0.3.31"]
