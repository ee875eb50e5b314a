"""The id conventions, the vocabulary built from the training split, and its file.

Id conventions, stated once: id 0 is padding and id 1 is an out-of-vocabulary word; real words get
ids 2, 3, ... in order of decreasing training frequency (ties broken alphabetically, so the
vocabulary is the same on every machine).

This module is the contract between tokenize (which writes vocabulary.json) and everything that
reads ids: embed, train, evaluate and imdb-predict. It holds no tokenizer, so an edit to how text
is split does not rerun the stages that only need the id conventions.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from imdb_rnn import artifacts
from imdb_rnn.errors import DataError

PADDING_ID = 0
OOV_ID = 1
PADDING_TOKEN = "<pad>"
OOV_TOKEN = "<oov>"
RESERVED_TOKENS = (PADDING_TOKEN, OOV_TOKEN)


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

    @property
    def fingerprint(self) -> str:
        """A hash of the token -> id mapping (not the counts): two vocabularies with the same
        fingerprint turn every text into the same ids. The train stage stores it in the model
        so that prediction can refuse a vocabulary the model was not trained with."""
        canonical = json.dumps(self.tokens, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def build_vocabulary(
    token_lists: Iterable[Sequence[str]], vocab_size: int, min_frequency: int
) -> Vocabulary:
    """Keep the ``vocab_size - 2`` most frequent words seen at least ``min_frequency`` times.

    Call it on the training split only: a vocabulary that has seen validation or test reviews
    leaks information about them into the model.
    """
    counts: Counter[str] = Counter()
    for tokens in token_lists:
        counts.update(tokens)
    return vocabulary_from_counts(counts, vocab_size, min_frequency)


def vocabulary_from_counts(counts: Counter[str], vocab_size: int, min_frequency: int) -> Vocabulary:
    """The vocabulary of word counts gathered elsewhere (e.g. while streaming the corpus)."""
    counts = Counter(counts)
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


def write_vocabulary(vocabulary: Vocabulary, path: Path) -> None:
    """Plain JSON: the token of each id, in id order, and its training count."""
    artifacts.write_json(
        {"tokens": list(vocabulary.tokens), "counts": list(vocabulary.counts)}, path
    )


def read_vocabulary(path: Path) -> Vocabulary:
    data = artifacts.read_json(path)
    try:
        tokens, counts = data["tokens"], data["counts"]
        if not all(isinstance(token, str) for token in tokens):
            raise TypeError("tokens must be strings")
        if len(set(tokens)) != len(tokens):
            raise ValueError("a token appears twice")
        return Vocabulary(tokens=tuple(tokens), counts=tuple(counts))
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(
            f"{path} is not a vocabulary written by the tokenize stage ({error});"
            " rerun it with dvc repro tokenize, or restore it with dvc checkout"
        ) from None
