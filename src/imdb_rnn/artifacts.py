"""Reading and writing the pipeline's generic file formats: JSON, parquet, NumPy arrays, CSV, text.

Every writer here is

* atomic: a file is written under a temporary name beside its target and renamed into place only
  once complete, so a stage that fails or is interrupted never leaves a half-written output;
* deterministic: the same content gives the same bytes (no timestamps), so DVC's content hashes in
  dvc.lock change only when the data does;

and every reader turns a missing, truncated or foreign file into a one-line DataError that names
the file and how to get it back. Formats that belong to one domain object (the vocabulary, the
encoding, the model) have their reader and writer beside that object, built on these.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from imdb_rnn.errors import DataError

# A fixed modification time for archive members: zip stores one per member, and numpy's savez would
# otherwise stamp the current time into every .npz.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
RESTORE_HINT = "rerun the stage that writes it (dvc repro), or restore it with dvc checkout"


def _file_mode() -> int:
    """The mode a new file gets from open(): 0o666 less the process's umask (mkstemp's temporary
    files are 0o600, which would make every output unreadable to the rest of a team)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


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
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


def existing(path: Path) -> Path:
    """The path, or a one-line error naming the stage to run; callers check before slow imports."""
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a file; pass the file itself")
    if not path.exists():
        raise DataError(f"{path} does not exist; run the stage that writes it (dvc repro)")
    return path


def unreadable(path: Path, error: BaseException | str) -> DataError:
    """The error for a file that exists but cannot be parsed: truncated, corrupt or foreign."""
    detail = " ".join(str(error).split()) or type(error).__name__
    return DataError(
        f"{path} is corrupt, truncated or not what it should be ({detail}); {RESTORE_HINT}"
    )


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read a megabyte at a time."""
    digest = hashlib.sha256()
    with existing(path).open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def free_disk_bytes(path: Path) -> int:
    """Free space on the file system that ``path`` (or its nearest existing parent) lives on."""
    for candidate in (path, *path.absolute().parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return shutil.disk_usage(".").free


def available_memory_bytes() -> int | None:
    """Memory the kernel can give this process without swapping (Linux), else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def write_json(data: Any, path: Path) -> None:
    """Indented UTF-8 JSON. NaN and infinities are refused: they are not JSON, and every reader
    (DVC included) would choke on them or read them back as strings."""
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def read_json(path: Path) -> Any:
    try:
        return json.loads(existing(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise unreadable(path, error) from None


def write_reviews(frame: pd.DataFrame, path: Path) -> None:
    """Reviews as parquet with exactly the columns text (string) and label (int8)."""
    table = pa.Table.from_pandas(frame[["text", "label"]], preserve_index=False)
    with atomic_path(path) as temporary:
        pq.write_table(table, temporary)


def read_reviews(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(existing(path), columns=["text", "label"])
    except (pa.ArrowException, OSError, ValueError, KeyError) as error:
        raise unreadable(path, error) from None


def review_count(path: Path) -> int:
    try:
        return pq.ParquetFile(existing(path)).metadata.num_rows
    except (pa.ArrowException, OSError) as error:
        raise unreadable(path, error) from None


def iter_reviews(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    """The reviews of a parquet file, ``chunk_size`` rows at a time, so that memory stays
    bounded by a chunk however large the split."""
    try:
        # A buffered stream, read on this thread: pyarrow's default reads a whole row group's
        # column into memory first, and ingest writes each split as a single row group.
        parquet = pq.ParquetFile(existing(path), buffer_size=2**20, pre_buffer=False)
        batches = parquet.iter_batches(
            batch_size=chunk_size, columns=["text", "label"], use_threads=False
        )
        for batch in batches:
            yield batch.to_pandas()
    except (pa.ArrowException, OSError, KeyError) as error:
        raise unreadable(path, error) from None


def write_arrays(path: Path, **arrays: np.ndarray) -> None:
    """An uncompressed .npz that ``np.load`` reads, with fixed member timestamps."""
    with atomic_path(path) as temporary, zipfile.ZipFile(temporary, "w") as archive:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
            with archive.open(member, "w", force_zip64=True) as stream:
                np.lib.format.write_array(stream, np.asarray(array), allow_pickle=False)


def read_arrays(path: Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The named arrays of an .npz; a missing name is an error that lists what the file has."""
    try:
        with np.load(existing(path), allow_pickle=False) as archive:
            missing = [name for name in names if name not in archive.files]
            if missing:
                raise unreadable(path, f"no array {', '.join(missing)}; it has {archive.files}")
            return {name: archive[name] for name in names}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise unreadable(path, error) from None


@contextlib.contextmanager
def array_writer(path: Path, shape: tuple[int, ...], dtype: str) -> Iterator[np.ndarray]:
    """A writable memory map of a new .npy file, filled by the caller piece by piece and moved
    into place only when the block succeeds: a large array never has to be in memory at once."""
    with atomic_path(path, suffix=".npy") as temporary:
        array = np.lib.format.open_memmap(temporary, mode="w+", dtype=dtype, shape=shape)
        yield array
        array.flush()
        del array


def write_array(array: np.ndarray, path: Path) -> None:
    with atomic_path(path) as temporary, temporary.open("wb") as stream:
        np.save(stream, array, allow_pickle=False)


def read_array(path: Path, memory_map: bool = False) -> np.ndarray:
    """An .npy array; with ``memory_map`` its rows are read from disk only when used."""
    try:
        return np.load(existing(path), mmap_mode="r" if memory_map else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise unreadable(path, error) from None


@contextlib.contextmanager
def text_writer(path: Path) -> Iterator[TextIO]:
    """A UTF-8 text file with '\\n' line ends, written atomically."""
    with (
        atomic_path(path) as temporary,
        temporary.open("w", encoding="utf-8", newline="\n") as stream,
    ):
        yield stream


def iter_token_corpus(path: Path) -> Iterator[list[str]]:
    """The tokenize stage's corpus, one review (a list of tokens) at a time."""
    try:
        with existing(path).open(encoding="utf-8", newline="\n") as stream:
            for line in stream:
                yield line.split()  # tokens never contain whitespace
    except UnicodeDecodeError as error:
        raise unreadable(path, error) from None


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False, lineterminator="\n")
