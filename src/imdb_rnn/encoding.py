"""Token lists to the fixed-length id matrices the model reads, and the file that says how.

encoding.json is the contract between tokenize (which writes it) and train, evaluate and
imdb-predict (which must cut and pad new text exactly as the training reviews were): one typed
reader, here, for all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imdb_rnn import artifacts
from imdb_rnn.errors import DataError
from imdb_rnn.vocabulary import OOV_ID, PADDING_ID, Vocabulary

Side = Literal["pre", "post"]


class Encoding(BaseModel):
    """How a review's ids become one row of the id matrix."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    max_length: int = Field(ge=1)
    padding: Side
    truncating: Side


def write_encoding(encoding: Encoding, path: Path) -> None:
    artifacts.write_json(encoding.model_dump(), path)


def read_encoding(path: Path) -> Encoding:
    data = artifacts.read_json(path)
    try:
        return Encoding.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, problem['loc'])) or 'file'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise DataError(
            f"{path} is not an encoding written by the tokenize stage ({problems});"
            " rerun it with dvc repro tokenize, or restore it with dvc checkout"
        ) from None


def encode(token_lists: Iterable[Sequence[str]], vocabulary: Vocabulary) -> list[list[int]]:
    """Map tokens to ids; words outside the vocabulary become OOV_ID."""
    ids = vocabulary.ids
    return [[ids.get(token, OOV_ID) for token in tokens] for tokens in token_lists]


def pad_and_truncate(id_lists: Sequence[Sequence[int]], encoding: Encoding) -> np.ndarray:
    """Stack id lists into an int32 matrix of shape (reviews, max_length).

    ``truncating="pre"`` drops the start of a long review (keeping its end, where reviewers tend to
    sum up); ``padding="post"`` puts the zeros on the right, the layout Keras' cuDNN LSTM/GRU
    kernels require when padding is masked.
    """
    max_length = encoding.max_length
    padded_ids = np.full((len(id_lists), max_length), PADDING_ID, dtype=np.int32)
    for row, ids in enumerate(id_lists):
        kept = ids[-max_length:] if encoding.truncating == "pre" else ids[:max_length]
        if not kept:
            continue
        if encoding.padding == "post":
            padded_ids[row, : len(kept)] = kept
        else:
            padded_ids[row, -len(kept) :] = kept
    return padded_ids


@dataclass
class EncodingStats:
    """Per-split facts worth watching when changing the vocabulary or the sequence length,
    gathered chunk by chunk so that a split never has to be in memory at once."""

    max_length: int
    reviews: int = 0
    tokens: int = 0
    oov_tokens: int = 0
    truncated: int = 0

    def add(self, id_lists: Sequence[Sequence[int]]) -> None:
        for ids in id_lists:
            self.reviews += 1
            self.tokens += len(ids)
            self.oov_tokens += sum(1 for token_id in ids if token_id == OOV_ID)
            self.truncated += len(ids) > self.max_length

    def report(self) -> dict[str, float]:
        return {
            "mean_tokens": round(self.tokens / self.reviews, 1) if self.reviews else 0.0,
            "oov_rate": round(self.oov_tokens / self.tokens, 4) if self.tokens else 0.0,
            "truncated_share": round(self.truncated / self.reviews, 4) if self.reviews else 0.0,
        }


# Rows per slice when scanning a whole (possibly memory-mapped) id matrix.
SCAN_ROWS = 65_536


def check_id_split(
    ids: np.ndarray, labels: np.ndarray, vocabulary_size: int, ids_path: Path, labels_path: Path
) -> None:
    """Refuse an id matrix and labels that do not belong together or to the vocabulary, in one
    line, before TensorFlow sees them (an out-of-range id crashes it on a CPU and reads zeros on
    a GPU). The matrix is scanned in slices, so a memory-mapped one is never loaded whole."""
    if ids.ndim != 2 or labels.ndim != 1 or len(ids) != len(labels) or len(ids) == 0:
        raise DataError(
            f"{ids_path} {ids.shape} and {labels_path} {labels.shape} are not one split's ids"
            " and labels; rerun dvc repro tokenize"
        )
    if not np.isin(labels, (0, 1)).all():
        raise DataError(f"{labels_path} holds labels other than 0 and 1; rerun dvc repro tokenize")
    for start in range(0, len(ids), SCAN_ROWS):
        rows = ids[start : start + SCAN_ROWS]
        if rows.min() < 0 or rows.max() >= vocabulary_size:
            raise DataError(
                f"{ids_path} holds ids outside the vocabulary's 0..{vocabulary_size - 1}; the"
                " files come from different runs, rerun dvc repro"
            )
