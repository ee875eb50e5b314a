"""Reading and writing the pipeline's files: the only module (with sources) that touches disk.

Two rules hold for every writer:

* atomic: a file is written under a temporary name beside its target and renamed into place only
  once complete, so a stage that fails or is interrupted never leaves a half-written output;
* deterministic: the same content gives the same bytes (no timestamps), so DVC's content hashes in
  dvc.lock change only when the data does.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from imdb_rnn.errors import DataError
from imdb_rnn.text import Vocabulary

# A fixed modification time for archive members: zip stores one per member, and numpy's savez would
# otherwise stamp the current time into every .npz.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only if the block succeeds.

    ``suffix`` is for writers that insist on a file extension (Keras saves only to ``.keras``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix, dir=path.parent
    )
    os.close(descriptor)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


def write_json(data: Any, path: Path) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(
            json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )


def read_json(path: Path) -> Any:
    return json.loads(existing(path).read_text(encoding="utf-8"))


def write_reviews(frame: pd.DataFrame, path: Path) -> None:
    """Reviews as parquet with exactly the columns text (string) and label (int8)."""
    table = pa.Table.from_pandas(frame[["text", "label"]], preserve_index=False)
    with atomic_path(path) as temporary:
        pq.write_table(table, temporary)


def read_reviews(path: Path) -> pd.DataFrame:
    return pd.read_parquet(existing(path), columns=["text", "label"])


def write_arrays(path: Path, **arrays: np.ndarray) -> None:
    """An uncompressed .npz that ``np.load`` reads, with fixed member timestamps."""
    with atomic_path(path) as temporary, zipfile.ZipFile(temporary, "w") as archive:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            with archive.open(member, "w", force_zip64=True) as stream:
                np.lib.format.write_array(stream, np.asarray(array), allow_pickle=False)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(existing(path), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def write_matrix(matrix: np.ndarray, path: Path) -> None:
    with atomic_path(path) as temporary, temporary.open("wb") as stream:
        np.save(stream, matrix, allow_pickle=False)


def read_matrix(path: Path) -> np.ndarray:
    return np.load(existing(path), allow_pickle=False)


def write_vocabulary(vocabulary: Vocabulary, path: Path) -> None:
    """Plain JSON: the token of each id, in id order, and its training count."""
    write_json({"tokens": list(vocabulary.tokens), "counts": list(vocabulary.counts)}, path)


def read_vocabulary(path: Path) -> Vocabulary:
    data = read_json(path)
    try:
        return Vocabulary(tokens=tuple(data["tokens"]), counts=tuple(data["counts"]))
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(
            f"{path} is not a vocabulary written by the tokenize stage ({error})"
        ) from None


def write_token_corpus(token_lists: Iterable[Sequence[str]], path: Path) -> None:
    """One review per line, tokens separated by single spaces (tokens never contain spaces)."""
    with (
        atomic_path(path) as temporary,
        temporary.open("w", encoding="utf-8", newline="\n") as stream,
    ):
        for tokens in token_lists:
            stream.write(" ".join(tokens) + "\n")


def read_token_corpus(path: Path) -> list[list[str]]:
    with existing(path).open(encoding="utf-8") as stream:
        return [line.split() for line in stream]


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False, lineterminator="\n")


def write_model(model, path: Path) -> None:
    """Keras' native .keras format (a zip of config and weights; no pickle), made deterministic.

    Keras stamps the save time twice: as the weights member's zip date, and as ``date_saved`` in
    metadata.json (which loading never reads); and config.json links objects shared between
    layers by ``shared_object_id``, Python's id() of the object: a memory address that differs
    from process to process. The dates are dropped and the ids renumbered in order of appearance,
    so the same weights give the same bytes, and evaluate does not rerun after a retraining that
    changed nothing.
    """
    with (
        atomic_path(path, suffix=".keras") as normalised,
        tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as scratch,
    ):
        saved = Path(scratch) / "model.keras"
        model.save(saved)
        with zipfile.ZipFile(saved) as source, zipfile.ZipFile(normalised, "w") as target:
            for member in source.infolist():
                content = source.read(member)
                if member.filename == "metadata.json":
                    metadata = json.loads(content)
                    metadata.pop("date_saved", None)
                    content = json.dumps(metadata, sort_keys=True).encode()
                elif member.filename == "config.json":
                    content = json.dumps(_renumber_shared_objects(json.loads(content))).encode()
                fixed = zipfile.ZipInfo(member.filename, date_time=_ZIP_EPOCH)
                fixed.compress_type = member.compress_type
                target.writestr(fixed, content)


def _renumber_shared_objects(config: Any) -> Any:
    """The config with each distinct ``shared_object_id`` replaced by 1, 2, 3... in order."""
    numbers: dict[int, int] = {}

    def renumber(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: numbers.setdefault(value, len(numbers) + 1)
                if key == "shared_object_id"
                else renumber(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [renumber(item) for item in node]
        return node

    return renumber(config)


def write_vectors(vectors, path: Path) -> None:
    """gensim KeyedVectors in the original word2vec binary format: portable, no pickle."""
    with atomic_path(path) as temporary:
        vectors.save_word2vec_format(str(temporary), binary=True)


def existing(path: Path) -> Path:
    """The path, or a one-line error naming the stage to run; callers check before slow imports."""
    if not path.exists():
        raise DataError(f"{path} does not exist; run the stage that writes it (dvc repro)")
    return path
