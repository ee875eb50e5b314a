"""Where reviews and pretrained vectors come from: the Hugging Face Hub, Keras, or local files.

This is the project's network edge. Each loader returns plain in-memory data, and each turns "no
network and no local copy" into a SourceUnavailableError that says how to work offline.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from imdb_rnn.data import decode_keras_reviews
from imdb_rnn.errors import DataError, SourceUnavailableError

log = logging.getLogger(__name__)

# The two official splits; the Hub dataset's third split, "unsupervised", has no labels (-1).
OFFICIAL_SPLITS = ("train", "test")
# The key a source without official splits (a single file) uses for its one pool of reviews.
POOLED = "pooled"
LOCAL_SUFFIXES = (".parquet", ".csv")


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


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False)
    return pd.read_parquet(path)


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
        return {POOLED: _read_table(path)}
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
        splits[split] = pd.concat([_read_table(file) for file in files], ignore_index=True)
    return splits


def load_reviews(source: str, dataset: str, revision: str | None) -> dict[str, pd.DataFrame]:
    """Dispatch on ``ingest.source``: 'huggingface', 'keras', or a local path."""
    if source == "huggingface":
        return load_huggingface(dataset, revision)
    if source == "keras":
        return load_keras()
    return load_local(Path(source))


def load_pretrained_vectors(
    source: str, filename: str | None, revision: str | None, vector_format: str
):
    """gensim KeyedVectors from a local file or a Hugging Face Hub model repository.

    ``vector_format`` is "gensim" (KeyedVectors.save, as in the fse/* repositories),
    "word2vec-binary" or "word2vec-text" (the original C tool's formats, e.g.
    GoogleNews-vectors-negative300.bin).
    """
    from gensim.models import KeyedVectors

    path = Path(source)
    if not path.exists():
        path = _download_vectors(source, filename, revision)
    log.info("loading %s vectors from %s", vector_format, path)
    if vector_format == "gensim":
        return KeyedVectors.load(str(path))
    return KeyedVectors.load_word2vec_format(str(path), binary=vector_format == "word2vec-binary")


def _download_vectors(repo_id: str, filename: str | None, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    if not filename:
        raise SourceUnavailableError(
            f"embed.pretrained.source '{repo_id}' is not a local file, so it is read as a Hub"
            " repository; set embed.pretrained.filename to the vectors file inside it"
        )
    try:
        # The wildcard also fetches the companion arrays gensim writes next to a large model
        # (e.g. word2vec-google-news-300.model.vectors.npy).
        folder = snapshot_download(repo_id, revision=revision, allow_patterns=[f"{filename}*"])
    except OSError as error:  # offline, unreachable, or no such repository
        raise SourceUnavailableError(
            f"cannot fetch '{filename}' from Hugging Face Hub repository '{repo_id}' ({error});"
            " offline, set embed.pretrained.source to a local vectors file"
        ) from None
    path = Path(folder) / filename
    if not path.exists():
        raise SourceUnavailableError(f"Hub repository '{repo_id}' has no file '{filename}'")
    return path
