"""The file every model member writes and the combine stage reads: its probabilities per split.

One contract for all members (the recurrent network, the linear model): P(positive) for every
review of the validation split (what the combination is fitted on) and of the test split (what it
is scored on), in the order of the ingest stage's split files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from imdb_rnn import artifacts

SCORED_SPLITS = ("validation", "test")


def write_predictions(probabilities: Mapping[str, np.ndarray], path: Path) -> None:
    artifacts.write_arrays(
        path, **{split: np.asarray(probabilities[split], np.float64) for split in SCORED_SPLITS}
    )


def read_predictions(path: Path) -> dict[str, np.ndarray]:
    return artifacts.read_arrays(path, SCORED_SPLITS)
