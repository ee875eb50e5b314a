"""Run stages, then imdb-predict, one after another in one Python interpreter.

    python tests/stages_in_one_process.py '[["embed", ARG...], ["train", ARG...], ...]'

Each stage runs as `python -m stages.<name> ARG...` would run it (``runpy`` executes the module
as ``__main__``), with the arguments dvc.yaml gives it; a final ``["predict", ARG...]`` runs
imdb-predict's entry point and writes what it prints to ``predict.json``. The cross-CPU test
uses this on both sides: under user-mode QEMU, importing TensorFlow takes about a minute, and one
interpreter pays that once instead of once per stage.
"""

import contextlib
import json
import runpy
import sys
from pathlib import Path

import stages  # noqa: F401  first: it pins the numerical kernels before NumPy or TensorFlow load


def run_one(name: str, args: list[str]) -> None:
    sys.argv = [name, *args]
    try:
        if name == "predict":
            from imdb_rnn.predict import entry_point

            # The pins are in the environment already (by `import stages`), so imdb-predict does
            # not restart itself, which would leave QEMU.
            with Path("predict.json").open("w") as printed, contextlib.redirect_stdout(printed):
                entry_point()
        else:
            runpy.run_module(f"stages.{name}", run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        if exit.code not in (0, None):
            raise SystemExit(f"{name} exited with status {exit.code}") from None


if __name__ == "__main__":
    for name, *args in json.loads(sys.argv[1]):
        run_one(name, args)
