"""reports/environment.json: which machine, kernels and library versions made a run.

Written by the train stage beside its outputs (not as one: it must not change dvc.lock from one
machine to another), so that `git diff` of a rerun says where it came from. Describing the machine
cannot change a result, so no stage lists this module as a dependency.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from imdb_rnn.numerics import numerics_settings

PACKAGES = ("tensorflow", "keras", "numpy", "scipy", "gensim", "scikit-learn", "dvc", "dvclive")
# The instruction-set extensions that decide which kernels a library would pick on its own.
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")


def cpu_description() -> dict[str, Any]:
    model, flags = platform.processor() or "unknown", set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    return {
        "model": model,
        "architecture": platform.machine(),
        "isa": [flag for flag in ISA_FLAGS if flag in flags],
        "logical_cores": os.cpu_count(),
    }


def blas_libraries() -> list[dict[str, Any]]:
    """The BLAS libraries loaded in this process, with the kernel family each one chose."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = ("internal_api", "version", "architecture", "num_threads")
    libraries = [
        {key: info.get(key) for key in keys}
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    ]
    # sorted: the load order varies from run to run, and must not show as a diff in git
    return sorted(libraries, key=lambda library: tuple(str(library[key]) for key in keys))


def describe_environment() -> dict[str, Any]:
    versions = {"python": sys.version.split()[0]}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu_description(),
        "kernels": numerics_settings(),
        "blas": blas_libraries(),
        "versions": versions,
        "platform": platform.platform(),
    }
