"""Reading and writing the pipeline's generic file formats: JSON, parquet, NumPy arrays, CSV, text.

Every writer here is

* atomic: a file is written under a temporary name beside its target and renamed into place only
  once complete, so a stage that fails or is interrupted never leaves a half-written output; the
  temporaries a killed writer leaves behind are removed by the next write of the same file;
* deterministic: the same content gives the same bytes (no timestamps), so DVC's content hashes in
  dvc.lock change only when the data does;

and every reader turns a missing, truncated or foreign file into a one-line DataError that names
the file and how to get it back. Formats that belong to one domain object (the vocabulary, the
encoding, the model) have their reader and writer beside that object, built on these.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import glob
import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
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


# How mkstemp and mkdtemp name a temporary of a file: "." + the file's name + "." + 8 random
# characters (of a-z, 0-9 and _), then the suffix asked for, if any.
_TEMPORARY_NAME = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}(?:\.[A-Za-z0-9]+)?")
# What flock answers on a file system without locks (some network and FUSE mounts).
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL}


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only if the block succeeds.

    ``suffix`` is for writers that insist on a file extension (Keras saves only to ``.keras``).
    """
    with _temporary_beside(path, suffix, directory=False) as temporary:
        yield temporary
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)


@contextlib.contextmanager
def scratch_directory(path: Path) -> Iterator[Path]:
    """A new directory next to ``path``, named after it, for a writer's intermediate files;
    removed with all it holds when the block ends."""
    with _temporary_beside(path, "", directory=True) as scratch:
        yield scratch


def scratch_beside_outputs(output: Path, name: str) -> contextlib.AbstractContextManager[Path]:
    """scratch_directory() for a stage's intermediate files, named ``name``, beside ``output``'s
    folder: not in /tmp, which is often memory (tmpfs) and would defeat the point of spilling to
    disk. It goes in the nearest folder that exists, so that a failed stage creates no folder."""
    folder = output.parent
    nearest = next(path for path in (folder, *folder.parents) if path.is_dir())
    return scratch_directory(nearest / name)


@contextlib.contextmanager
def _temporary_beside(path: Path, suffix: str, directory: bool) -> Iterator[Path]:
    """A temporary file or directory next to ``path``, locked while this process uses it and
    removed at the end (unless the block moved it away).

    The lock tells the next writer of ``path`` which temporaries are stale: a process killed
    with SIGKILL cannot remove its own, but the kernel releases its locks. So the stale ones of
    ``path`` are removed first, and another process's temporary in use is left alone.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, glob.escape(path.name))
    descriptor, temporary = _locked_temporary(path, suffix, directory)
    try:
        yield temporary
    finally:
        if temporary.is_dir() and not temporary.is_symlink():
            shutil.rmtree(temporary, ignore_errors=True)
        else:
            temporary.unlink(missing_ok=True)
        os.close(descriptor)  # releases the lock


def _locked_temporary(path: Path, suffix: str, directory: bool) -> tuple[int, Path]:
    """A new temporary for ``path`` and an open descriptor holding an exclusive lock on it."""
    while True:
        if directory:
            name = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
            try:
                descriptor = os.open(name, os.O_RDONLY)
            except FileNotFoundError:  # removed as stale before it was locked: make another
                continue
        else:
            descriptor, name = tempfile.mkstemp(
                prefix=f".{path.name}.", suffix=suffix, dir=path.parent
            )
        # Blocks only while another writer, which saw it unlocked, removes it as stale.
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        except OSError as error:
            if error.errno not in _NO_LOCKS:
                os.close(descriptor)
                raise
            return descriptor, Path(name)  # no writer can lock it either, so none removes it
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.stat(name), os.fstat(descriptor)):
                return descriptor, Path(name)
        os.close(descriptor)


def remove_stale_temporaries(directory: Path, target: str) -> None:
    """Remove the temporaries in ``directory`` of the files whose names match ``target`` (a glob
    pattern) that no process holds locked: those that killed writers left behind."""
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        match = _TEMPORARY_NAME.fullmatch(entry.name)
        if match and fnmatch.fnmatchcase(match["target"], target):
            _remove_if_unlocked(entry)


def _remove_if_unlocked(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # gone, a link, or not ours to read: nothing to judge it by
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # its writer is at work, or this file system has no locks to tell
        os.close(descriptor)
        return
    try:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    finally:
        os.close(descriptor)


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


# The columns every review file has, in this order; a fixed schema lets a file be written chunk by
# chunk (pandas would infer each chunk's types afresh).
REVIEW_SCHEMA = pa.schema([("text", pa.string()), ("label", pa.int8())])


def _review_batch(frame: pd.DataFrame) -> pa.RecordBatch:
    return pa.RecordBatch.from_pandas(
        frame[["text", "label"]], schema=REVIEW_SCHEMA, preserve_index=False
    )


@contextlib.contextmanager
def reviews_writer(path: Path) -> Iterator[Callable[[pd.DataFrame], None]]:
    """A function that appends a chunk of reviews to a new parquet file (one row group per
    chunk, so that any reader can stream it); the file appears only if the block succeeds."""
    with atomic_path(path) as temporary, pq.ParquetWriter(temporary, REVIEW_SCHEMA) as writer:
        yield lambda frame: writer.write_batch(_review_batch(frame))


# Reviews without a label: the text alone (a label column of -1s would invite reading it as one).
TEXT_SCHEMA = pa.schema([("text", pa.string())])


@contextlib.contextmanager
def texts_writer(path: Path) -> Iterator[Callable[[pd.Series], None]]:
    """Like ``reviews_writer``, for review texts without labels: one column, text. A file to
    which nothing is written has that column and no rows."""
    with atomic_path(path) as temporary, pq.ParquetWriter(temporary, TEXT_SCHEMA) as writer:
        # A table, not a record batch: pandas' Arrow-backed strings may be in several chunks.
        yield lambda texts: writer.write_table(
            pa.Table.from_pandas(
                pd.DataFrame({"text": texts}), schema=TEXT_SCHEMA, preserve_index=False
            )
        )


def copy_file(source: Path, path: Path) -> None:
    """Copy a finished file (from a scratch directory, perhaps on another file system) to
    ``path``, atomically."""
    with atomic_path(path) as temporary:
        shutil.copyfile(source, temporary)


def write_reviews(frame: pd.DataFrame, path: Path) -> None:
    """Reviews as parquet with exactly the columns text (string) and label (int8)."""
    with reviews_writer(path) as write:
        write(frame)


class ReviewStore:
    """Reviews appended chunk by chunk to an uncompressed Arrow file, then read back by position
    through a memory map: the text stays in the page cache, which the kernel can drop, instead of
    in the process, so a corpus larger than memory can be shuffled into splits."""

    def __init__(self, path: Path):
        self.path = path

    @contextlib.contextmanager
    def appender(self) -> Iterator[Callable[[pd.DataFrame], None]]:
        with pa.OSFile(str(self.path), "wb") as sink, pa.ipc.new_file(sink, REVIEW_SCHEMA) as file:
            yield lambda frame: file.write_batch(_review_batch(frame))

    def take(self, rows: np.ndarray) -> pd.DataFrame:
        """The reviews at positions ``rows``, in that order. Taken batch by batch: pyarrow's
        take on a multi-chunk table first concatenates the chunks, i.e. the whole corpus."""
        reader = pa.ipc.open_file(pa.memory_map(str(self.path)))
        batches = [reader.get_batch(index) for index in range(reader.num_record_batches)]
        starts = np.cumsum([0] + [len(batch) for batch in batches])
        rows = np.asarray(rows, dtype=np.int64)
        batch_of_row = np.searchsorted(starts, rows, side="right") - 1
        by_batch = np.argsort(batch_of_row, kind="stable")
        pieces = [
            batches[batch].take(pa.array(rows[group] - starts[batch]))
            for batch, group in _groups(batch_of_row, by_batch)
        ]
        gathered = pa.Table.from_batches(pieces, schema=REVIEW_SCHEMA)
        back_to_requested_order = np.empty_like(by_batch)
        back_to_requested_order[by_batch] = np.arange(len(by_batch))
        return gathered.take(pa.array(back_to_requested_order)).to_pandas()


def _groups(keys: np.ndarray, order: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(key, positions with that key) for each key, given ``order`` that sorts ``keys``."""
    sorted_keys = keys[order]
    for group in np.split(order, np.flatnonzero(np.diff(sorted_keys)) + 1):
        if len(group):
            yield int(keys[group[0]]), group


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


def parquet_chunks(
    path: Path, chunk_size: int, columns: Sequence[str] | None = None
) -> Iterator[pd.DataFrame]:
    """Any parquet file, ``chunk_size`` rows at a time, in memory bounded by a chunk. Buffered and
    on this thread: pyarrow's default reads a whole row group's column into memory first, and
    many tools write a file as one row group. Errors are the caller's to name."""
    parquet = pq.ParquetFile(path, buffer_size=2**20, pre_buffer=False)
    for batch in parquet.iter_batches(batch_size=chunk_size, columns=columns, use_threads=False):
        yield batch.to_pandas()


def iter_reviews(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    """The reviews of a pipeline parquet file, ``chunk_size`` rows at a time."""
    try:
        yield from parquet_chunks(existing(path), chunk_size, columns=["text", "label"])
    except (pa.ArrowException, OSError, KeyError) as error:
        raise unreadable(path, error) from None


def iter_texts(path: Path, chunk_size: int) -> Iterator[list[str]]:
    """The `text` column of a parquet file (such as ingest's unlabelled reviews), a chunk of
    ``chunk_size`` reviews at a time."""
    try:
        for chunk in parquet_chunks(existing(path), chunk_size, columns=["text"]):
            yield chunk["text"].tolist()
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
