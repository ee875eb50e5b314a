"""Portable numerics: pin the kernels that decide floating-point bits, before the libraries load.

OpenBLAS (which gensim's Word2Vec and scikit-learn call through SciPy and NumPy), oneDNN (which
TensorFlow uses for its matrix products), NumPy's own SIMD loops and TensorFlow's choice of
graph rewrites all depend on the CPU they run on: AVX-512 kernels on one machine, AVX2 on another,
and the two sum in different orders, so the same training gives different bits. Each reads an
environment variable when it loads that fixes its choice. Capping all of them at AVX2 (with FMA),
which x86-64 CPUs have had since 2013-2015, makes the embedding matrix, the model and every
prediction the same bytes on any such machine, AVX-512 or not, Intel or AMD, whatever its core
count. One more source of CPU-dependent bits, the approximate-reciprocal instructions behind
TensorFlow's Reciprocal and Rsqrt kernels, cannot be switched off by a variable; the model
avoids those ops instead (imdb_rnn.model.binary_crossentropy). tests/test_numerics.py checks the
whole under an emulated CPU; docs/reproducing.md has the measurements and what the pins cost.

The variables must be set before NumPy, SciPy or TensorFlow is imported, so ``stages/__init__.py``
calls ``pin_kernels`` first thing, and imdb-predict restarts itself once with them set. This module
imports nothing heavy, for that reason. On a CPU without AVX2 nothing is pinned (the kernels
named would not run there), and environment.json says so.
"""

from __future__ import annotations

import os
import sys

# The kernels that decide the bits of embed, train, evaluate, linear, combine and imdb-predict.
PINNED_KERNELS = {
    # OpenBLAS (gensim's and scikit-learn's BLAS): the Haswell kernels are AVX2 + FMA; without
    # this, AVX-512 CPUs get SkylakeX ones.
    "OPENBLAS_CORETYPE": "Haswell",
    # oneDNN (TensorFlow's matrix products on x86): AVX2 at most, whatever the CPU offers.
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    # NumPy's own SIMD loops (exp, log, sums...): the AVX2 (x86-64-v3) versions, not AVX-512's.
    "NPY_ENABLE_CPU_FEATURES": "X86_V3",
    # TensorFlow's oneDNN graph rewrites (fused oneDNN ops in place of its own kernels): off.
    # Unset, TensorFlow turns them on only on CPUs with AVX512-VNNI, AVX-VNNI, BF16 or AMX, so a
    # recent Xeon and an AVX2 machine ran different kernels and trained different models.
    "TF_ENABLE_ONEDNN_OPTS": "0",
}
# Set to 0 to run with whatever kernels the CPU offers (faster on some machines, bits differ).
SWITCH_ENV = "IMDB_RNN_PORTABLE_NUMERICS"
# Libraries that read the pinned variables when they load.
_READERS = ("numpy", "scipy", "tensorflow", "gensim")


def portable() -> bool:
    return os.environ.get(SWITCH_ENV, "1") != "0"


def cpu_has_avx2() -> bool:
    """Whether the pins can apply: they name AVX2 kernels, which an older CPU cannot run."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            return any(
                line.startswith("flags") and " avx2" in line and " fma" in line for line in cpuinfo
            )
    except OSError:  # not Linux: leave the libraries to choose
        return False


def pin_kernels() -> None:
    """Set the pinned variables in this process's environment (before any library loads)."""
    if portable() and cpu_has_avx2():
        os.environ.update(PINNED_KERNELS)


def pin_kernels_or_restart() -> None:
    """As pin_kernels, for an entry point that may already have loaded NumPy: if a variable is
    missing once a library that reads it is loaded, restart the process with it set."""
    if not portable() or not cpu_has_avx2():
        return
    if all(os.environ.get(name) == value for name, value in PINNED_KERNELS.items()):
        return
    pin_kernels()
    if any(name in sys.modules for name in _READERS):
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def numerics_settings() -> dict[str, str | None]:
    """The kernel settings in effect, as recorded in fingerprints and reports/environment.json."""
    return {name: os.environ.get(name) for name in (SWITCH_ENV, *PINNED_KERNELS)}
