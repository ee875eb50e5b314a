"""models/predictor.json: the file the combine stage writes and imdb-predict serves from.

It names every file prediction needs (each member's model, the vocabulary and encoding of the
recurrent member) with their SHA-256 hashes, the combination's weights, and the decision threshold
and batch size from params.yaml. So imdb-predict needs one path, uses exactly the files the
pipeline evaluated, and refuses them if any has changed since.

The manifest also carries the SHA-256 of its own content (``digest``), so a hand-edited weight,
threshold or hash is refused too, instead of silently giving other probabilities. It catches
edits, not forgery: anyone can compute a new digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from imdb_rnn import artifacts
from imdb_rnn.errors import DataError

MEMBERS = ("linear", "rnn")
# The key under which the manifest holds the SHA-256 of the rest of its content.
DIGEST_KEY = "digest"
# hashlib's hexdigest, as the combine stage writes every hash: any other spelling was typed in.
_SHA256 = re.compile(r"[0-9a-f]{64}")


class _Strict(BaseModel):
    # strict: a number written as a string ("0.44") is refused, not converted, since the combine
    # stage never writes one; a hand edit is what produced it.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


def _written_by_hashlib(value: str) -> str:
    if not _SHA256.fullmatch(value):
        raise ValueError("must be 64 lower-case hexadecimal digits, as the combine stage writes")
    return value


class FileRef(_Strict):
    path: str  # relative to the manifest's directory, so the project can move
    sha256: Annotated[str, AfterValidator(_written_by_hashlib)]


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


def manifest_digest(manifest: PredictorManifest) -> str:
    """The SHA-256 of a manifest's values, in a canonical JSON form: the same values give the same
    digest whatever the key order or float spelling of the file they were read from."""
    canonical = json.dumps(
        manifest.model_dump(mode="json"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def write_manifest(manifest: PredictorManifest, path: Path) -> None:
    artifacts.write_json(manifest.model_dump() | {DIGEST_KEY: manifest_digest(manifest)}, path)


def read_manifest(path: Path) -> PredictorManifest:
    """The manifest, if it is exactly what the combine stage wrote: every value of the type the
    stage writes, and the content matching its digest."""
    data: Any = artifacts.read_json(path)
    fix = f"rerun dvc repro combine, or restore it with git checkout -- {path}"
    if not isinstance(data, dict):
        raise DataError(f"{path} is not a predictor written by the combine stage; {fix}")
    content = {key: value for key, value in data.items() if key != DIGEST_KEY}
    try:
        manifest = PredictorManifest.model_validate(content)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        # A string or a boolean where a number belongs reads like one in the message: show it.
        got = f", got {problem['input']!r}" if isinstance(problem["input"], str | bool) else ""
        raise DataError(
            f"{path} is not a predictor written by the combine stage ({where}: {message}{got});"
            f" {fix}"
        ) from None
    if DIGEST_KEY not in data:
        raise DataError(
            f"{path} has no {DIGEST_KEY}: a hand or an older combine stage wrote it; {fix}"
        )
    if data[DIGEST_KEY] != manifest_digest(manifest):
        raise DataError(
            f"{path} was edited after the combine stage wrote it (its content no longer matches"
            f" its {DIGEST_KEY}), so its predictions would not be the published ones; {fix}"
        )
    return manifest


def checked(ref: FileRef, manifest_path: Path) -> Path:
    """The file a manifest names, if it is still the one the pipeline evaluated."""
    path = Path(os.path.normpath(manifest_path.parent / ref.path))
    if artifacts.file_sha256(path) != ref.sha256:
        raise DataError(
            f"{path} changed after the combine stage evaluated it, so its predictions would not be"
            " the published ones; restore it with dvc checkout, or rerun dvc repro"
        )
    return path
