"""Where reviews come from: the Hugging Face Hub, Keras, or local files.

This is the ingest stage's network edge. Each loader returns plain in-memory DataFrames, turns "no
network and no local copy" into a SourceUnavailableError that says how to work offline, and turns
an unreadable local file into a one-line DataError that names it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa

from imdb_rnn.errors import DataError, SourceUnavailableError

log = logging.getLogger(__name__)

# The two official splits; the Hub dataset's third split, "unsupervised", has no labels (-1).
OFFICIAL_SPLITS = ("train", "test")
# The key a source without official splits (a single file) uses for its one pool of reviews.
POOLED = "pooled"
LOCAL_SUFFIXES = (".parquet", ".csv")

# Keras' IMDB arrays reserve the lowest ids: a word's id is its word-index rank + `index_from`.
KERAS_PADDING_ID = 0


def load_huggingface(dataset: str, revision: str | None) -> dict[str, pd.DataFrame]:
    """The official train and test splits of a Hub dataset with `text` and `label` columns."""
    import datasets  # imported here: it takes a second and only this source needs it

    try:
        loaded = datasets.load_dataset(dataset, revision=revision)
    except (ConnectionError, FileNotFoundError) as error:
        raise SourceUnavailableError(
            f"cannot load Hugging Face dataset '{dataset}' ({error}); offline, set HF_HUB_OFFLINE=1"
            " and HF_DATASETS_CACHE to a cache that holds it, or set ingest.source to a local"
            " directory of train/test parquet or CSV files"
        ) from None
    missing = [split for split in OFFICIAL_SPLITS if split not in loaded]
    if missing:
        raise DataError(
            f"Hugging Face dataset '{dataset}' has no split(s) {missing} (it has {list(loaded)});"
            " use a dataset with official train and test splits"
        )
    return {split: loaded[split].to_pandas() for split in OFFICIAL_SPLITS}


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


def load_keras() -> dict[str, pd.DataFrame]:
    """Keras' IMDB arrays, decoded back to text with its word index."""
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
    return {
        "train": pd.DataFrame(
            {"text": decode_keras_reviews(train_ids, word_index), "label": train_labels}
        ),
        "test": pd.DataFrame(
            {"text": decode_keras_reviews(test_ids, word_index), "label": test_labels}
        ),
    }


def read_local_table(path: Path) -> pd.DataFrame:
    """One parquet or CSV file; an unreadable one is a DataError naming the file and the fix."""
    try:
        if path.suffix == ".csv":
            # keep_default_na=False: a review that reads "NA" or "null" is text, not missing
            return pd.read_csv(path, keep_default_na=False, encoding="utf-8")
        return pd.read_parquet(path)
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


def load_local(path: Path) -> dict[str, pd.DataFrame]:
    """Reviews from a parquet/CSV file (one pool) or a directory of ``train*``/``test*`` files.

    A directory is searched recursively, so the Hub's own layout (``plain_text/train-00000-of-00001
    .parquet``) works as it is; several shards of one split are concatenated in name order.
    """
    if not path.exists():
        raise SourceUnavailableError(
            f"ingest.source '{path}' is neither 'huggingface', 'keras' nor an existing path;"
            " point it at a parquet/CSV file or a directory of train/test files"
        )
    if path.is_file():
        if path.suffix not in LOCAL_SUFFIXES:
            raise DataError(f"{path}: unsupported file type; use .parquet or .csv")
        return {POOLED: read_local_table(path)}
    splits: dict[str, pd.DataFrame] = {}
    for split in OFFICIAL_SPLITS:
        files = sorted(
            file
            for file in path.rglob(f"{split}*")
            if file.suffix in LOCAL_SUFFIXES and file.is_file()
        )
        if not files:
            raise DataError(
                f"{path}: no {split}*.parquet or {split}*.csv file; a local directory needs both"
                " train and test files (or point ingest.source at a single file and use"
                " protocol: random)"
            )
        log.info("%s split: %s", split, ", ".join(str(file.relative_to(path)) for file in files))
        splits[split] = pd.concat([read_local_table(file) for file in files], ignore_index=True)
    return splits


def load_reviews(source: str, dataset: str, revision: str | None) -> dict[str, pd.DataFrame]:
    """Dispatch on ``ingest.source``: 'huggingface', 'keras', or a local path."""
    if source == "huggingface":
        return load_huggingface(dataset, revision)
    if source == "keras":
        return load_keras()
    return load_local(Path(source))
