"""The pipeline's stages, one module each, run by dvc.yaml as ``python -m stages.<name>``.

Each module is thin: it parses the paths dvc.yaml passes it, validates its own section of
params.yaml, reads its inputs, calls the library in ``imdb_rnn``, and writes its outputs.
"""

import sys
from pathlib import Path

# Import the imdb_rnn beside these stages, not the checkout an editable install points at: DVC
# runs queued experiments in copies of the repository (and the tests run scratch copies), and
# dvc.lock records the hashes of the copy's own src/, so that is the code that must run.
_LIBRARY = str(Path(__file__).resolve().parents[1] / "src")
if _LIBRARY not in sys.path[:1]:
    sys.path.insert(0, _LIBRARY)
