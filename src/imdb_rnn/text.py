"""Text to token ids: the one normalisation, the vocabulary, and fixed-length encoding.

Training, evaluation and the `imdb-predict` command all call these functions, so a review is turned
into ids the same way everywhere.

Id conventions, stated once: id 0 is padding and id 1 is an out-of-vocabulary word; real words get
ids 2, 3, ... in order of decreasing training frequency (ties broken alphabetically, so the
vocabulary is the same on every machine).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

PADDING_ID = 0
OOV_ID = 1
PADDING_TOKEN = "<pad>"
OOV_TOKEN = "<oov>"
RESERVED_TOKENS = (PADDING_TOKEN, OOV_TOKEN)

# IMDB reviews contain HTML line breaks written as `<br />` (and a few other tags); they are markup,
# not words, and a plain regex tokenizer would otherwise emit the token "br" about 100,000 times.
_HTML_TAG = re.compile(r"<[^>]{0,40}>")
# Curly quotes, acute accents and backticks stand in for the apostrophe in many reviews.
_APOSTROPHE_LOOKALIKES = re.compile("[\u2019\u2018`\u00b4]")
# A token is a run of letters/digits, optionally joined by apostrophes, so that contractions stay
# whole ("don't", "isn't", "director's"): splitting "n't" off would make "don" a word, and a
# negation is worth keeping intact for sentiment. "!" and "?" carry sentiment too and stand alone;
# every other punctuation mark separates tokens and is dropped.
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[!?]")


def normalize(text: str) -> str:
    """Lowercase, unify Unicode forms and apostrophes, and replace HTML tags with spaces."""
    text = _APOSTROPHE_LOOKALIKES.sub("'", unicodedata.normalize("NFKC", text))
    return _HTML_TAG.sub(" ", text).lower()


def tokenize(text: str) -> list[str]:
    """Normalise a review and split it into word tokens (contractions whole, '!' and '?' kept)."""
    return _TOKEN.findall(normalize(text))


@dataclass(frozen=True)
class Vocabulary:
    """Token strings indexed by id; ``tokens[0]`` is padding and ``tokens[1]`` is OOV."""

    tokens: tuple[str, ...]
    counts: tuple[int, ...]  # training-split occurrences per id (0 for the reserved ids)

    def __post_init__(self) -> None:
        if self.tokens[: len(RESERVED_TOKENS)] != RESERVED_TOKENS:
            raise ValueError(f"a vocabulary must start with {RESERVED_TOKENS}")
        if len(self.counts) != len(self.tokens):
            raise ValueError("a vocabulary needs one count per token")

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def ids(self) -> dict[str, int]:
        return {token: index for index, token in enumerate(self.tokens)}


def build_vocabulary(
    token_lists: Iterable[Sequence[str]], vocab_size: int, min_frequency: int
) -> Vocabulary:
    """Keep the ``vocab_size - 2`` most frequent words seen at least ``min_frequency`` times.

    Call it on the training split only: a vocabulary that has seen validation or test reviews
    leaks information about them into the model.
    """
    counts = Counter(token for tokens in token_lists for token in tokens)
    for reserved in RESERVED_TOKENS:  # a review could contain the literal text "<pad>"
        counts.pop(reserved, None)
    frequent = sorted(
        (item for item in counts.items() if item[1] >= min_frequency),
        key=lambda item: (-item[1], item[0]),
    )[: vocab_size - len(RESERVED_TOKENS)]
    return Vocabulary(
        tokens=RESERVED_TOKENS + tuple(token for token, _ in frequent),
        counts=(0,) * len(RESERVED_TOKENS) + tuple(count for _, count in frequent),
    )


def encode(token_lists: Iterable[Sequence[str]], vocabulary: Vocabulary) -> list[list[int]]:
    """Map tokens to ids; words outside the vocabulary become OOV_ID."""
    ids = vocabulary.ids
    return [[ids.get(token, OOV_ID) for token in tokens] for tokens in token_lists]


Side = Literal["pre", "post"]


def pad_and_truncate(
    id_lists: Sequence[Sequence[int]], max_length: int, padding: Side, truncating: Side
) -> np.ndarray:
    """Stack id lists into an int32 matrix of shape (reviews, max_length).

    ``truncating="pre"`` drops the start of a long review (keeping its end, where reviewers tend to
    sum up); ``padding="post"`` puts the zeros on the right, the layout Keras' cuDNN LSTM/GRU
    kernels require when padding is masked.
    """
    padded_ids = np.full((len(id_lists), max_length), PADDING_ID, dtype=np.int32)
    for row, ids in enumerate(id_lists):
        kept = ids[-max_length:] if truncating == "pre" else ids[:max_length]
        if not kept:
            continue
        if padding == "post":
            padded_ids[row, : len(kept)] = kept
        else:
            padded_ids[row, -len(kept) :] = kept
    return padded_ids


def encode_reviews(
    texts: Iterable[str], vocabulary: Vocabulary, max_length: int, padding: Side, truncating: Side
) -> np.ndarray:
    """Raw review texts to the padded id matrix the model reads: what `imdb-predict` calls."""
    id_lists = encode((tokenize(text) for text in texts), vocabulary)
    return pad_and_truncate(id_lists, max_length, padding, truncating)


def describe_encoding(id_lists: Sequence[Sequence[int]], max_length: int) -> dict[str, float]:
    """Per-split facts worth watching when changing the vocabulary or the sequence length."""
    lengths = np.array([len(ids) for ids in id_lists])
    total = int(lengths.sum())
    oov_tokens = sum(ids.count(OOV_ID) for ids in id_lists)
    return {
        "mean_tokens": round(float(lengths.mean()), 1) if len(lengths) else 0.0,
        "oov_rate": round(oov_tokens / total, 4) if total else 0.0,
        "truncated_share": round(float(np.mean(lengths > max_length)), 4) if len(lengths) else 0.0,
    }
