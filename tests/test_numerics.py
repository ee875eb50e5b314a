"""Portable numerics: the same bytes on another CPU, tested on another CPU.

Environment variables cannot imitate another processor: the libraries ask CPUID, and some
instructions (the approximate reciprocal, for one) give other bits on other hardware. So the
cross-CPU test runs the floating-point stages and imdb-predict twice: natively on one core, and
under user-mode QEMU posing as an AVX2-only Intel Haswell on all cores (Debian's qemu-user; about
10-30 times slower, hence tiny data). It requires byte-identical
outputs, and first proves the emulation took effect (CPUID inside reports the emulated processor).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from imdb_rnn import numerics
from tests.conftest import REPO_ROOT, make_reviews, make_unlabelled_reviews
from tests.stage_runner import run_stage, stage_args, write_params

QEMU = shutil.which("qemu-x86_64")
# An AVX2 + FMA processor without AVX-512 (Intel's, where this machine's may be AMD's).
EMULATED_CPU = ("qemu-x86_64", "-cpu", "Haswell")
# This machine's processor on one core, against the emulated one on all of them: another core
# count too (running QEMU on one core instead would make the slow side slower still).
ONE_CORE = ("taskset", "--cpu-list", "0")
FLOATING_POINT_STAGES = ("embed", "train", "evaluate", "linear", "combine")
# Every output of those stages, and what imdb-predict prints (compared as bytes).
OUTPUTS = (
    "data/embedding/matrix.npy",
    "models/word_vectors.bin",
    "models/model.keras",
    "data/predictions/rnn.npz",
    "models/linear.npz",
    "data/predictions/linear.npz",
    "models/predictor.json",
    "reports/embedding.json",
    "reports/train/metrics.json",
    "reports/train/plots/metrics/eval/loss.tsv",
    "reports/metrics/rnn.json",
    "reports/metrics/linear.json",
    "reports/metrics/combined.json",
    "reports/plots/roc.csv",
    "reports/misclassified.json",
    "predict.json",
)
REVIEWS_TO_PREDICT = "A wonderful, moving film.\nDull and far too long.\nIt was a film.\n"

needs_qemu = pytest.mark.skipif(
    QEMU is None and os.environ.get("IMDB_RNN_REQUIRE_QEMU") != "1",
    reason="user-mode QEMU (Debian's qemu-user) is not installed",
)


@pytest.fixture(scope="module")
def tokenized(tmp_path_factory):
    """Ingest and tokenize once (integer work); the floating-point stages run per CPU."""
    import yaml

    root = tmp_path_factory.mktemp("numerics") / "tokenized"
    source = root / "imdb"
    source.mkdir(parents=True)
    make_reviews(200, seed=1).to_parquet(source / "train.parquet")
    make_reviews(100, seed=2).to_parquet(source / "test.parquet")
    make_unlabelled_reviews(60).to_parquet(source / "unsupervised.parquet")
    params = copy.deepcopy(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))
    params["ingest"]["source"] = str(source)
    params["tokenize"] |= {"vocab_size": 60, "max_length": 24}
    # vectors and layers wide enough that SIMD width and FMA change how sums are ordered
    params["embed"] |= {"dimension": 64, "epochs": 1, "min_count": 1}
    params["train"] |= {"units": 16, "epochs": 1}
    params["linear"] |= {"min_df": 1}
    write_params(root, params)
    for name in ("ingest", "tokenize"):
        result = run_stage(root, name, *stage_args(name))
        assert result.returncode == 0, result.stderr[-2000:]
    return root


def outputs_on(tokenized, name: str, emulator: tuple[str, ...] = ()) -> dict[str, str]:
    """Run the floating-point stages and imdb-predict in a copy of ``tokenized``; hash outputs.

    They run in one interpreter (tests/stages_in_one_process.py), on both sides alike: under
    QEMU each start of TensorFlow costs about a minute."""
    root = tokenized.parent / name
    shutil.copytree(tokenized, root)
    (root / "reviews.txt").write_text(REVIEWS_TO_PREDICT)
    steps = [[stage, *stage_args(stage)] for stage in FLOATING_POINT_STAGES]
    steps.append(["predict", "--json", "--file", "reviews.txt"])
    result = subprocess.run(
        [
            *emulator,
            sys.executable,
            str(REPO_ROOT / "tests/stages_in_one_process.py"),
            json.dumps(steps),
        ],
        cwd=root,
        env=os.environ | {"PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"{name}: {result.stderr[-2000:]}"
    return {path: hashlib.sha256((root / path).read_bytes()).hexdigest() for path in OUTPUTS}


def processor(emulator: tuple[str, ...] = ()) -> dict:
    """The brand string and features that CPUID reports, natively or under ``emulator``."""
    result = subprocess.run(
        [*emulator, sys.executable, str(REPO_ROOT / "tests" / "cpuid.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    brand, *features = result.stdout.splitlines()
    return {"brand": brand} | {name: value == "True" for name, value in map(str.split, features)}


@pytest.mark.slow
@needs_qemu
@pytest.mark.skipif(not numerics.cpu_has_avx2(), reason="the pins name AVX2 kernels")
def test_another_cpu_gives_the_same_bytes(tokenized):
    native, emulated = processor(), processor(EMULATED_CPU)
    # The emulation took effect: the libraries see another processor, with AVX2 and no AVX-512.
    assert emulated == {"brand": "Intel Core Processor (Haswell)", "avx2": True, "avx512f": False}
    assert native["brand"] != emulated["brand"]

    on_this_cpu = outputs_on(tokenized, "native", ONE_CORE)
    on_haswell = outputs_on(tokenized, "haswell", EMULATED_CPU)
    differing = [path for path in OUTPUTS if on_this_cpu[path] != on_haswell[path]]
    assert not differing, f"{json.dumps(native)} and emulated Haswell differ in {differing}"


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
