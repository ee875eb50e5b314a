"""Where reviews come from: the Hugging Face Hub, Keras, or local files.

This is the ingest stage's network edge. Each loader returns, per source split, an iterator of
DataFrames of at most ``chunk_size`` reviews, so that no source is ever in memory whole (the Hub's
datasets are memory-mapped Arrow files; local files are read a chunk at a time). The unlabelled
reviews (``load_unlabelled``) come the same way, as one more iterator, with their text alone. It
turns "no network and no local copy" into a SourceUnavailableError that says how to work offline,
and an unreadable local file into a one-line DataError that names it.

Every source's column types are checked against what a review is (text: strings; label: integers
or booleans) before its rows are read where the source has a schema (the Hub's Arrow files,
parquet), and chunk by chunk for CSV: turned into text, an int64 or list column would give reviews
such as "16" or "['When' 'you' ...]", and a float label would pass for a class.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from imdb_rnn import artifacts
from imdb_rnn.errors import DataError, SourceUnavailableError

if TYPE_CHECKING:
    import datasets

log = logging.getLogger(__name__)

# The two official splits; the Hub dataset's third split, "unsupervised", has no labels (-1).
OFFICIAL_SPLITS = ("train", "test")
# The name of the Hub's split of unlabelled reviews, and of a local directory's files of them.
UNLABELLED_SPLIT = "unsupervised"
# What to do about a source without unlabelled reviews, said the same way wherever it is found.
UNLABELLED_FIX = "set ingest.unlabelled: false or name a file in ingest.unlabelled_path"
# The key a source without official splits (a single file) uses for its one pool of reviews.
POOLED = "pooled"
LOCAL_SUFFIXES = (".parquet", ".csv")
# Reviews per chunk: IMDB reviews average 1.3 kB, so a chunk is ~13 MB of text.
REVIEWS_PER_CHUNK = 10_000

Chunks = Iterator[pd.DataFrame]

# Keras' IMDB arrays reserve the lowest ids: a word's id is its word-index rank + `index_from`.
KERAS_PADDING_ID = 0


def _is_text(kind: pa.DataType) -> bool:
    # Dictionary-encoded strings (pandas' categoricals, Polars' Categorical) are strings too.
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _is_label(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_boolean(kind)


# (column, accepts, what is expected): the types a review's columns may have in any source.
EXPECTED_TYPES: tuple[tuple[str, Callable[[pa.DataType], bool], str], ...] = (
    ("text", _is_text, "strings (the review text)"),
    ("label", _is_label, "integers (0 negative, 1 positive) or booleans"),
)


def check_column_types(
    schema: pa.Schema, origin: str, columns: Collection[str] = ("text", "label")
) -> None:
    """A one-line DataError naming the first of ``columns`` whose type cannot hold reviews.

    A missing column passes: the cleaner names every missing column together with those found.
    """
    for column, accepts, expected in EXPECTED_TYPES:
        if column not in columns or column not in schema.names:
            continue
        kind = schema.field(column).type
        if not accepts(kind):
            described = "null (every value is missing)" if pa.types.is_null(kind) else str(kind)
            raise DataError(f"{origin}: column '{column}' is {described}; expected {expected}")


def require_text_column(columns: Collection[str], origin: str) -> None:
    """Unlabelled reviews are read by their text column alone, so it must be there."""
    if "text" not in columns:
        raise DataError(
            f"{origin}: no column 'text' (it has {', '.join(map(str, columns)) or 'none'});"
            " name the column of review texts 'text'"
        )


def _load_hub_dataset(dataset: str, revision: str | None) -> datasets.DatasetDict:
    import datasets  # imported here: it takes a second and only this source needs it

    try:
        return datasets.load_dataset(dataset, revision=revision)
    except (ConnectionError, FileNotFoundError) as error:
        raise SourceUnavailableError(
            f"cannot load Hugging Face dataset '{dataset}' ({error}); offline, set HF_HUB_OFFLINE=1"
            " and HF_DATASETS_CACHE to a cache that holds it, or set ingest.source to a local"
            " directory of train/test parquet or CSV files"
        ) from None


def load_huggingface(dataset: str, revision: str | None, chunk_size: int) -> dict[str, Chunks]:
    """The official train and test splits of a Hub dataset with `text` and `label` columns."""
    loaded = _load_hub_dataset(dataset, revision)
    missing = [split for split in OFFICIAL_SPLITS if split not in loaded]
    if missing:
        raise DataError(
            f"Hugging Face dataset '{dataset}' has no split(s) {missing} (it has {list(loaded)});"
            " use a dataset with official train and test splits"
        )
    for split in OFFICIAL_SPLITS:  # the Arrow schema: no row is read
        check_column_types(
            loaded[split].data.schema, f"Hugging Face dataset '{dataset}', split {split}"
        )
    return {
        split: loaded[split].with_format("pandas").iter(batch_size=chunk_size)
        for split in OFFICIAL_SPLITS
    }


def load_huggingface_unlabelled(dataset: str, revision: str | None, chunk_size: int) -> Chunks:
    """The texts of a Hub dataset's split ``unsupervised``. Loading the dataset a second time
    (the labelled splits load it too) costs a few milliseconds: it is memory-mapped."""
    loaded = _load_hub_dataset(dataset, revision)
    if UNLABELLED_SPLIT not in loaded:
        raise DataError(
            f"Hugging Face dataset '{dataset}' has no split '{UNLABELLED_SPLIT}' of unlabelled"
            f" reviews (it has {list(loaded)}); {UNLABELLED_FIX}"
        )
    unlabelled = loaded[UNLABELLED_SPLIT]
    origin = f"Hugging Face dataset '{dataset}', split {UNLABELLED_SPLIT}"
    require_text_column(unlabelled.column_names, origin)
    check_column_types(unlabelled.data.schema, origin, columns=("text",))
    texts = unlabelled.select_columns(["text"])
    return texts.with_format("pandas").iter(batch_size=chunk_size)


def decode_keras_reviews(
    sequences: Sequence[Sequence[int]],
    word_index: Mapping[str, int],
    start_char: int | None = 1,
    oov_char: int | None = 2,
    index_from: int = 3,
) -> list[str]:
    """Turn Keras' integer-encoded IMDB reviews back into (lowercase, punctuation-free) text.

    ``keras.datasets.imdb.load_data`` shifts every word's rank by ``index_from`` and reserves the
    ids below it: 0 for padding, ``start_char`` to mark the start, ``oov_char`` for words cut by
    ``num_words``. Those reserved ids are dropped here, so both sources give downstream stages
    plain text of the same kind.
    """
    words_by_id = {rank + index_from: word for word, rank in word_index.items()}
    reserved = {KERAS_PADDING_ID, start_char, oov_char}
    return [
        " ".join(words_by_id[i] for i in sequence if i not in reserved and i in words_by_id)
        for sequence in sequences
    ]


def load_keras(chunk_size: int) -> dict[str, Chunks]:
    """Keras' IMDB arrays, decoded back to text with its word index (Keras loads them whole)."""
    from keras.datasets import imdb  # imported here: TensorFlow takes seconds to import

    try:
        (train_ids, train_labels), (test_ids, test_labels) = imdb.load_data()
        word_index = imdb.get_word_index()
    except Exception as error:
        # keras.utils.get_file raises a bare Exception for download failures; keep everything else.
        if not str(error).startswith("URL fetch failure"):
            raise
        raise SourceUnavailableError(
            f"cannot download Keras' IMDB data ({error}); offline, copy imdb.npz and"
            " imdb_word_index.json into ~/.keras/datasets/ (or $KERAS_HOME/datasets/), or set"
            " ingest.source to huggingface or a local directory"
        ) from None
    # The defaults of load_data: start_char=1, oov_char=2, index_from=3.
    splits = {"train": (train_ids, train_labels), "test": (test_ids, test_labels)}
    frames = {
        split: pd.DataFrame({"text": decode_keras_reviews(ids, word_index), "label": labels})
        for split, (ids, labels) in splits.items()
    }
    for split, frame in frames.items():  # the text is decoded here; the labels are Keras'
        check_column_types(
            pa.Schema.from_pandas(frame, preserve_index=False), f"Keras IMDB, split {split}"
        )
    return {split: _in_chunks(frame, chunk_size) for split, frame in frames.items()}


def _in_chunks(frame: pd.DataFrame, chunk_size: int) -> Chunks:
    for start in range(0, len(frame), chunk_size):
        yield frame.iloc[start : start + chunk_size]


@contextlib.contextmanager
def _read_errors(path: Path) -> Iterator[None]:
    """Turn the ways a local file can be unreadable into one-line DataErrors naming the fix."""
    try:
        yield
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path} is not UTF-8 (byte {error.object[error.start]:#04x} at offset {error.start});"
            " convert it first, e.g. iconv -f latin1 -t utf-8"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{path} is empty; it needs a header row 'text,label' and reviews"
        ) from None
    except pd.errors.ParserError as error:
        detail = " ".join(str(error).split())
        raise DataError(
            f"{path} is not a well-formed CSV ({detail}); quote reviews that contain commas"
        ) from None
    except (pa.ArrowException, OSError) as error:
        detail = " ".join(str(error).split())
        raise DataError(
            f"{path} is not a readable parquet file ({detail}); it may be truncated, re-export it"
        ) from None


def check_csv_chunk(chunk: pd.DataFrame, path: Path, first_row: int) -> None:
    """The column types pandas inferred for a chunk of a CSV file, which has no schema.

    pandas reads a column as numbers only when every value in the chunk is one, so a numeric
    text column holds no review. A label column read as text is the cleaner's to report: it
    names the values that are not 0 or 1.
    """
    rows = f"rows {first_row + 1} to {first_row + len(chunk)}"
    if "text" in chunk and not pd.api.types.is_string_dtype(chunk["text"]):
        raise DataError(
            f"{path}: every value of column 'text' in {rows} reads as {chunk['text'].dtype},"
            " not review text; check that the header names the review column 'text'"
        )
    if "label" in chunk and pd.api.types.is_float_dtype(chunk["label"]):
        raise DataError(
            f"{path}: column 'label' reads as {chunk['label'].dtype} in {rows}; expected"
            " integers (0 negative, 1 positive) or booleans"
        )


def _csv_chunks(path: Path, chunk_size: int, columns: Sequence[str] | None = None) -> Chunks:
    # keep_default_na=False: a review that reads "NA" or "null" is text, not missing
    with (
        _read_errors(path),
        pd.read_csv(
            path, usecols=columns, keep_default_na=False, encoding="utf-8", chunksize=chunk_size
        ) as chunks,
    ):
        first_row = 0
        for chunk in chunks:
            check_csv_chunk(chunk, path, first_row)
            first_row += len(chunk)
            yield chunk


def _parquet_chunks(path: Path, chunk_size: int, columns: Sequence[str] | None = None) -> Chunks:
    with _read_errors(path):
        yield from artifacts.parquet_chunks(path, chunk_size, columns)


def read_local_chunks(path: Path, chunk_size: int) -> Chunks:
    """One parquet or CSV file, ``chunk_size`` reviews at a time. A parquet file's column types
    are checked now, from its footer, before any row is read."""
    if path.suffix == ".csv":
        return _csv_chunks(path, chunk_size)
    with _read_errors(path):
        schema = pq.read_schema(path)
    check_column_types(schema, str(path))
    return _parquet_chunks(path, chunk_size)


def read_unlabelled_chunks(path: Path, chunk_size: int) -> Chunks:
    """The texts of one parquet or CSV file, ``chunk_size`` at a time; any other column (a label
    of -1) is not read. Its text column is checked now, before any row is read: from the footer
    of a parquet file, the header of a CSV file."""
    if path.suffix not in LOCAL_SUFFIXES:
        raise DataError(f"{path}: unsupported file type; use .parquet or .csv")
    if path.suffix == ".csv":
        with _read_errors(path):
            header = pd.read_csv(path, nrows=0, encoding="utf-8").columns
        require_text_column(header, str(path))
        return _csv_chunks(path, chunk_size, columns=["text"])
    with _read_errors(path):
        schema = pq.read_schema(path)
    require_text_column(schema.names, str(path))
    check_column_types(schema, str(path), columns=("text",))
    return _parquet_chunks(path, chunk_size, columns=["text"])


def _chained(
    files: Iterable[Path], chunk_size: int, read: Callable[[Path, int], Chunks] = read_local_chunks
) -> Chunks:
    # A list, not a generator: every file's schema is checked before the first row is read.
    return itertools.chain.from_iterable([read(file, chunk_size) for file in files])


def _existing_source(path: Path) -> Path:
    if not path.exists():
        raise SourceUnavailableError(
            f"ingest.source '{path}' is neither 'huggingface', 'keras' nor an existing path;"
            " point it at a parquet/CSV file or a directory of train/test files"
        )
    return path


def _split_files(directory: Path, split: str) -> list[Path]:
    """The parquet/CSV files of one split under ``directory``, at any depth, in name order.

    Searched recursively, so the Hub's own layout (``plain_text/train-00000-of-00001.parquet``)
    works as it is; several shards of one split are concatenated in name order.
    """
    return sorted(
        file
        for file in directory.rglob(f"{split}*")
        if file.suffix in LOCAL_SUFFIXES and file.is_file()
    )


def load_local(path: Path, chunk_size: int) -> dict[str, Chunks]:
    """Reviews from a parquet/CSV file (one pool) or a directory of ``train*``/``test*`` files
    (see ``_split_files``)."""
    if _existing_source(path).is_file():
        if path.suffix not in LOCAL_SUFFIXES:
            raise DataError(f"{path}: unsupported file type; use .parquet or .csv")
        return {POOLED: read_local_chunks(path, chunk_size)}
    splits: dict[str, Chunks] = {}
    for split in OFFICIAL_SPLITS:
        files = _split_files(path, split)
        if not files:
            raise DataError(
                f"{path}: no {split}*.parquet or {split}*.csv file; a local directory needs both"
                " train and test files (or point ingest.source at a single file and use"
                " protocol: random)"
            )
        log.info("%s split: %s", split, ", ".join(str(file.relative_to(path)) for file in files))
        splits[split] = _chained(files, chunk_size)
    return splits


def load_local_unlabelled(path: Path, chunk_size: int) -> Chunks:
    """The texts of a local directory's ``unsupervised*`` files (see ``_split_files``)."""
    if _existing_source(path).is_file():
        raise DataError(
            f"ingest.source '{path}' is one file of labelled reviews, with no unlabelled ones;"
            f" {UNLABELLED_FIX}"
        )
    files = _split_files(path, UNLABELLED_SPLIT)
    if not files:
        raise DataError(
            f"{path}: no {UNLABELLED_SPLIT}*.parquet or {UNLABELLED_SPLIT}*.csv file of unlabelled"
            f" reviews; add one, or {UNLABELLED_FIX}"
        )
    log.info("unlabelled reviews: %s", ", ".join(str(file.relative_to(path)) for file in files))
    return _chained(files, chunk_size, read=read_unlabelled_chunks)


def load_unlabelled(
    source: str,
    dataset: str,
    revision: str | None,
    unlabelled_path: str | None,
    chunk_size: int = REVIEWS_PER_CHUNK,
) -> Chunks:
    """The unlabelled reviews, as DataFrames of one column, text: the file ``unlabelled_path``
    if one is named, else the source's own. Keras' IMDB has none; neither has a single file,
    which holds one pool of labelled reviews. Like ``load_reviews``, it checks now only what
    needs no review read."""
    if unlabelled_path is not None:
        path = Path(unlabelled_path)
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise SourceUnavailableError(
                f"ingest.unlabelled_path '{path}' {what}; name a parquet or CSV file with a"
                " column 'text', or set it to null to use the source's own unlabelled reviews"
            )
        return read_unlabelled_chunks(path, chunk_size)
    if source == "huggingface":
        return load_huggingface_unlabelled(dataset, revision, chunk_size)
    if source == "keras":
        raise DataError(f"Keras' IMDB has no unlabelled reviews; {UNLABELLED_FIX}")
    return load_local_unlabelled(Path(source), chunk_size)


def load_reviews(
    source: str, dataset: str, revision: str | None, chunk_size: int = REVIEWS_PER_CHUNK
) -> dict[str, Chunks]:
    """Dispatch on ``ingest.source``: 'huggingface', 'keras', or a local path. Only what can be
    checked without reading the reviews is checked here; a bad file fails while it is read."""
    if source == "huggingface":
        return load_huggingface(dataset, revision, chunk_size)
    if source == "keras":
        return load_keras(chunk_size)
    return load_local(Path(source), chunk_size)
