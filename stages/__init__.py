"""The pipeline's stages, one module each, run by dvc.yaml as ``python -m stages.<name>``.

Each module is thin: it parses the paths dvc.yaml passes it, validates its own section of
params.yaml, reads its inputs, calls the library in ``imdb_rnn``, and writes its outputs.

Importing this package does five things first, before any stage imports NumPy, pyarrow or
TensorFlow: it puts the imdb_rnn beside these stages on the import path, arms the death of the
stage with the dvc process that started it, pins the numerical kernels, chooses the memory pool
that keeps a streaming stage's memory flat, and hides TensorFlow's C++ start-up log
(IMDB_RNN_VERBOSE=1 shows it).
"""

import sys
from pathlib import Path

# Import the imdb_rnn beside these stages, not the checkout an editable install points at: DVC
# runs queued experiments in copies of the repository (and the tests run scratch copies), and
# dvc.lock records the hashes of the copy's own src/, so that is the code that must run.
_LIBRARY = str(Path(__file__).resolve().parents[1] / "src")
if _LIBRARY not in sys.path[:1]:
    sys.path.insert(0, _LIBRARY)

# A stage dies with the dvc process that started it, armed before the imports below take seconds.
from imdb_rnn.cli import die_with_parent  # noqa: E402

die_with_parent()

# The kernels that decide floating-point bits are chosen when NumPy, SciPy and TensorFlow load;
# pinning them now makes embed, train and evaluate give the same bytes on any x86-64 CPU with AVX2.
from imdb_rnn.cli import prefer_arrow_pool_that_returns_memory, quiet_tensorflow  # noqa: E402
from imdb_rnn.numerics import pin_kernels  # noqa: E402

pin_kernels()
quiet_tensorflow()
prefer_arrow_pool_that_returns_memory()  # read when pyarrow first allocates
