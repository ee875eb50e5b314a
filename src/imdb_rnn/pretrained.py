"""Pretrained word vectors for `embed.method: pretrained`: a local file or a Hugging Face Hub file.

The embed stage's network edge. Two kinds of file exist in the wild:

* the original word2vec tool's binary and text formats (e.g. GoogleNews-vectors-negative300.bin):
  plain numbers and words, read without running any code. Prefer these.
* gensim's own ``KeyedVectors.save`` format (the fse/* Hub repositories): a Python pickle, and
  unpickling a file can run arbitrary code. It is refused unless ``embed.pretrained.allow_pickle``
  is true, and even then the pickle is first read by an unpickler that admits only the classes a
  KeyedVectors file is made of, so a file that tries to call anything else is refused unrun.
"""

from __future__ import annotations

import io
import logging
import pickle
from pathlib import Path

from imdb_rnn.errors import DataError, ParamsError, SourceUnavailableError

log = logging.getLogger(__name__)

# Every global a gensim KeyedVectors pickle refers to (gensim 3 and 4, NumPy 1 and 2). Anything
# else in such a file is not word vectors.
PICKLE_ALLOWED_GLOBALS = {
    ("gensim.models.keyedvectors", "KeyedVectors"),
    ("gensim.models.keyedvectors", "Word2VecKeyedVectors"),
    ("gensim.models.keyedvectors", "Vocab"),
    ("gensim.models.keyedvectors", "CompatVocab"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
}


class _VectorsOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in PICKLE_ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}")
        return super().find_class(module, name)


# gensim's SaveLoad.load unpickles, without restriction, a companion file for each attribute an
# object lists under these keys (sparse matrices, nested models). KeyedVectors never writes them:
# their large arrays go to `.npy` companions, which NumPy loads without pickle.
UNPICKLED_COMPANIONS = ("__scipys", "__recursive_saveloads")


def check_vectors_pickle(path: Path) -> None:
    """Refuse a gensim vectors file whose pickle refers to anything but word-vector classes, or
    that would make gensim unpickle a companion file."""
    try:
        vectors = _VectorsOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
        companions = [key for key in UNPICKLED_COMPANIONS if getattr(vectors, key, None)]
        if companions:
            raise pickle.UnpicklingError(f"it names companion pickles under {companions[0]}")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DataError(
            f"{path} is not a plain gensim KeyedVectors file ({error}), so it was not loaded: it"
            " could run code; use vectors in word2vec-binary or word2vec-text format instead"
        ) from None


def load_pretrained_vectors(
    source: str, filename: str | None, revision: str | None, vector_format: str, allow_pickle: bool
):
    """gensim KeyedVectors from a local file or a Hugging Face Hub model repository.

    ``vector_format`` is "word2vec-binary" or "word2vec-text" (the original C tool's formats), or
    "gensim" (KeyedVectors.save, a pickle: only with ``allow_pickle``).
    """
    if vector_format == "gensim" and not allow_pickle:
        raise ParamsError(
            "embed.pretrained.format: gensim is a Python pickle, and loading a pickle can run"
            " arbitrary code; set embed.pretrained.allow_pickle: true only for a file you trust,"
            " or use vectors in word2vec-binary or word2vec-text format"
        )
    from gensim.models import KeyedVectors

    path = Path(source)
    if not path.exists():
        path = _download_vectors(source, filename, revision)
    if path.is_dir():
        raise DataError(f"embed.pretrained.source {path} is a directory; name the vectors file")
    log.info("loading %s vectors from %s", vector_format, path)
    try:
        if vector_format == "gensim":
            check_vectors_pickle(path)
            return KeyedVectors.load(str(path))
        binary = vector_format == "word2vec-binary"
        return KeyedVectors.load_word2vec_format(str(path), binary=binary)
    except (ValueError, EOFError, UnicodeDecodeError, OSError) as error:
        detail = " ".join(str(error).split())
        raise DataError(
            f"{path} cannot be read as {vector_format} vectors ({detail});"
            " check embed.pretrained.format"
        ) from None


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
