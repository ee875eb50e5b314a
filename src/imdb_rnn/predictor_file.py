"""models/predictor.json: the file the combine stage writes and imdb-predict serves from.

It names every file prediction needs (each member's model, the vocabulary and encoding of the
recurrent member) with their SHA-256 hashes, the combination's weights, and the decision threshold
and batch size from params.yaml. So imdb-predict needs one path, uses exactly the files the
pipeline evaluated, and refuses them if any has changed since.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from imdb_rnn import artifacts
from imdb_rnn.errors import DataError

MEMBERS = ("linear", "rnn")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class FileRef(_Strict):
    path: str  # relative to the manifest's directory, so the project can move
    sha256: str


class PredictorManifest(_Strict):
    """What imdb-predict loads and how it combines the members."""

    threshold: float = Field(gt=0, lt=1)
    batch_size: int = Field(ge=1)
    weights: dict[str, float]  # per member, in log-odds
    intercept: float
    rnn_model: FileRef
    vocabulary: FileRef
    encoding: FileRef
    linear_model: FileRef

    @field_validator("weights")
    @classmethod
    def _one_weight_per_member(cls, weights: dict[str, float]) -> dict[str, float]:
        if set(weights) != set(MEMBERS):
            raise ValueError(f"needs one weight for each of {list(MEMBERS)}, got {list(weights)}")
        return weights


def file_ref(path: Path, manifest_path: Path) -> FileRef:
    relative = os.path.relpath(path.resolve(), manifest_path.resolve().parent)
    return FileRef(path=Path(relative).as_posix(), sha256=artifacts.file_sha256(path))


def write_manifest(manifest: PredictorManifest, path: Path) -> None:
    artifacts.write_json(manifest.model_dump(), path)


def read_manifest(path: Path) -> PredictorManifest:
    data = artifacts.read_json(path)
    try:
        return PredictorManifest.model_validate(data)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise DataError(
            f"{path} is not a predictor written by the combine stage ({where}: {problem['msg']});"
            " rerun dvc repro combine"
        ) from None


def checked(ref: FileRef, manifest_path: Path) -> Path:
    """The file a manifest names, if it is still the one the pipeline evaluated."""
    path = Path(os.path.normpath(manifest_path.parent / ref.path))
    if artifacts.file_sha256(path) != ref.sha256:
        raise DataError(
            f"{path} changed after the combine stage evaluated it, so its predictions would not be"
            " the published ones; restore it with dvc checkout, or rerun dvc repro"
        )
    return path
