"""Word vectors and the embedding matrix that initialises the model's Embedding layer.

The matrix has one row per vocabulary id (see imdb_rnn.vocabulary): row 0, padding, is all zeros;
a word with a vector gets that vector; every other row (the OOV id, words the vectors lack) gets
small random values, so a trainable embedding can still learn them.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors, Word2Vec
from gensim.models.callbacks import CallbackAny2Vec

from imdb_rnn import artifacts
from imdb_rnn.cli import ProgressLog
from imdb_rnn.errors import DataError
from imdb_rnn.params import EmbedParams
from imdb_rnn.vocabulary import PADDING_ID, RESERVED_TOKENS, Vocabulary

log = logging.getLogger(__name__)

# Keras' default Embedding initializer is uniform on [-0.05, 0.05]; `method: random` matches it.
KERAS_UNIFORM_LIMIT = 0.05


def stable_hash(text: str) -> int:
    """A string hash that, unlike Python's ``hash``, is the same in every process.

    gensim accepts a ``hashfxn`` for the per-word seeds it derives from strings; with the default
    (``hash``) those depend on PYTHONHASHSEED, which Python randomises per process.
    """
    return zlib.crc32(text.encode("utf-8"))


class _EpochProgress(CallbackAny2Vec):
    """One log line per Word2Vec epoch, with an estimate of the time left."""

    def __init__(self, epochs: int):
        self.progress = ProgressLog("word2vec epochs", epochs, every_seconds=0)
        self.finished = 0

    def on_epoch_end(self, model) -> None:
        self.finished += 1
        self.progress.update(self.finished)


def train_word2vec(corpus: Iterable[Sequence[str]], params: EmbedParams) -> KeyedVectors:
    """Train Word2Vec on tokenised reviews and return its word vectors.

    ``corpus`` is iterated once to count words and once per epoch; a streaming corpus (such as
    TokenCorpus) keeps memory independent of its size. With ``params.corpus_file`` it must be a
    TokenCorpus, whose file gensim then reads itself, one part per worker thread.

    Bit-identical vectors from run to run need all three of: ``workers=1`` (with more threads the
    order in which updates land varies), a fixed ``seed``, and a process-independent ``hashfxn``.
    """
    started = time.perf_counter()
    # corpus_file: every worker thread reads its own share of the file; sentences: one stream,
    # which with one worker gives the same vectors on every run
    source = (
        {"corpus_file": str(corpus.path)} if params.corpus_file else {"corpus_iterable": corpus}
    )
    model = Word2Vec(
        vector_size=params.dimension,
        window=params.window,
        min_count=params.min_count,
        sg=1 if params.algorithm == "skipgram" else 0,
        negative=params.negative,
        epochs=params.epochs,
        seed=params.seed,
        workers=params.workers,
        hashfxn=stable_hash,
    )
    # What Word2Vec(sentences=...) does in one call, in two, so that an empty vocabulary can be
    # reported in one line rather than as gensim's RuntimeError.
    model.build_vocab(**source)
    if not model.wv.index_to_key:
        raise DataError(
            f"no training word occurs embed.min_count ({params.min_count}) times, so Word2Vec"
            " has nothing to learn; lower embed.min_count or use more reviews"
        )
    model.train(
        **source,
        total_examples=model.corpus_count,
        total_words=model.corpus_total_words,
        epochs=model.epochs,
        callbacks=[_EpochProgress(params.epochs)],
    )
    log.info(
        "word2vec: %d words x %d dims in %.1f s",
        len(model.wv),
        model.wv.vector_size,
        time.perf_counter() - started,
    )
    return model.wv


class TokenCorpus:
    """The tokenize stage's corpus file as a re-iterable sequence of reviews, read from disk on
    every pass, so that Word2Vec's memory does not grow with the corpus."""

    def __init__(self, path: Path):
        self.path = artifacts.existing(path)

    def __iter__(self):
        return artifacts.iter_token_corpus(self.path)


def restrict_to_vocabulary(vectors: KeyedVectors, vocabulary: Vocabulary) -> KeyedVectors:
    """Only the vectors of vocabulary words: all that is worth keeping of a huge pretrained set."""
    words = [token for token in vocabulary.tokens[len(RESERVED_TOKENS) :] if token in vectors]
    kept = KeyedVectors(vector_size=vectors.vector_size)
    if words:
        kept.add_vectors(words, vectors[words])
    return kept


def random_embedding_matrix(vocab_size: int, dimension: int, seed: int) -> np.ndarray:
    """Keras-style uniform initial embeddings, padding row zeroed: (vocab_size, dimension)."""
    rng = np.random.default_rng(seed)
    matrix = rng.uniform(-KERAS_UNIFORM_LIMIT, KERAS_UNIFORM_LIMIT, (vocab_size, dimension))
    matrix[PADDING_ID] = 0.0
    return matrix.astype(np.float32)


def build_embedding_matrix(
    vocabulary: Vocabulary, vectors: KeyedVectors, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``vectors`` in vocabulary-id order; returns (matrix, covered) with covered[i] True
    where id i got a vector.

    Rows without a vector are drawn from a normal distribution with the vectors' own standard
    deviation, so they start on the same scale as the rows that have one.
    """
    dimension = vectors.vector_size
    covered = np.array([token in vectors for token in vocabulary.tokens], dtype=bool)
    covered[: len(RESERVED_TOKENS)] = False  # "<pad>" or "<oov>" might exist in foreign vectors
    known = [token for token, has in zip(vocabulary.tokens, covered, strict=True) if has]
    scale = float(np.std(vectors[known])) if known else KERAS_UNIFORM_LIMIT
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, scale, (len(vocabulary), dimension)).astype(np.float32)
    if known:
        matrix[covered] = vectors[known]
    matrix[PADDING_ID] = 0.0
    return matrix, covered


def coverage_report(
    vocabulary: Vocabulary, covered: np.ndarray, total_tokens: int
) -> dict[str, float | int]:
    """How much of the vocabulary, and of the ``total_tokens`` running training tokens, has a
    vector."""
    word_ids = slice(len(RESERVED_TOKENS), None)
    words = len(vocabulary) - len(RESERVED_TOKENS)
    covered_words = int(covered[word_ids].sum())
    covered_counts = int(np.asarray(vocabulary.counts)[covered].sum())
    return {
        "vocabulary_words": words,
        "words_with_vector": covered_words,
        "vocabulary_coverage": round(covered_words / words, 4) if words else 0.0,
        # Out-of-vocabulary tokens count in the denominator: this is the share of the running
        # training text whose embedding row starts from a real vector.
        "training_tokens": total_tokens,
        "training_token_coverage": round(covered_counts / total_tokens, 4) if total_tokens else 0.0,
    }


def write_vectors(vectors: KeyedVectors, path: Path) -> None:
    """Word vectors in the original word2vec binary format: portable, and read without pickle."""
    with artifacts.atomic_path(path) as temporary:
        vectors.save_word2vec_format(str(temporary), binary=True)
