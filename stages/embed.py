"""embed: make the embedding matrix that initialises the model's Embedding layer.

Reads params.yaml:embed, the vocabulary, the training token corpus and, with embed.unlabelled,
ingest's unlabelled reviews. Writes the matrix (float32, (vocabulary ids, dimension), row 0 all
zeros), the word vectors it came from (word2vec binary format; empty for method random), and a
JSON coverage report. The corpus is streamed from disk on every pass, so memory does not grow with
it: the unlabelled reviews are tokenized once, into a scratch copy of the corpus beside the
outputs, which goes when the stage ends.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors

from imdb_rnn import artifacts, cli
from imdb_rnn.embedding import (
    TokenCorpus,
    build_embedding_matrix,
    coverage_report,
    random_embedding_matrix,
    restrict_to_vocabulary,
    train_word2vec,
    write_vectors,
)
from imdb_rnn.errors import DataError
from imdb_rnn.params import EmbedParams, load_section
from imdb_rnn.pretrained import load_pretrained_vectors
from imdb_rnn.text import tokenize
from imdb_rnn.vocabulary import read_vocabulary

log = logging.getLogger("stages.embed")

# Unlabelled reviews tokenized at a time: ~13 MB of text.
REVIEWS_PER_CHUNK = 10_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vocabulary", type=Path, required=True)
    parser.add_argument(
        "--corpus", type=Path, required=True, help="training tokens, one review a line"
    )
    parser.add_argument(
        "--unlabelled", type=Path, required=True, help="ingest's unlabelled reviews (parquet)"
    )
    parser.add_argument("--matrix", type=Path, required=True, help="where the .npy matrix goes")
    parser.add_argument("--vectors", type=Path, required=True, help="where the word vectors go")
    parser.add_argument("--report", type=Path, required=True, help="JSON coverage report")
    return parser.parse_args(argv)


def load_word_vectors(params: EmbedParams, corpus: TokenCorpus) -> KeyedVectors:
    """Word2Vec trained here, or pretrained vectors; for method random, an empty set."""
    if params.method == "word2vec":
        return train_word2vec(corpus, params)
    if params.method == "pretrained":
        settings = params.pretrained
        return load_pretrained_vectors(
            settings.source,
            settings.filename,
            settings.revision,
            settings.format,
            settings.allow_pickle,
        )
    return KeyedVectors(vector_size=params.dimension)


def write_word2vec_corpus(training: Path, unlabelled: Path, corpus: Path) -> int:
    """The training corpus, then the unlabelled reviews' tokens, one review a line, into
    ``corpus``; returns the number of unlabelled reviews. A chunk of reviews at a time."""
    reviews = 0
    with artifacts.text_writer(corpus) as stream:
        with artifacts.existing(training).open(encoding="utf-8", newline="\n") as lines:
            for line in lines:
                stream.write(line)
        for chunk in artifacts.iter_texts(unlabelled, REVIEWS_PER_CHUNK):
            for text in chunk:
                stream.write(" ".join(tokenize(text)) + "\n")
            reviews += len(chunk)
    if reviews == 0:
        raise DataError(
            f"embed.unlabelled is true but {unlabelled} holds no reviews; set ingest.unlabelled"
            " to true (its source must have unlabelled reviews) or embed.unlabelled to false"
        )
    return reviews


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_section("embed", EmbedParams)
    vocabulary = read_vocabulary(args.vocabulary)
    corpus = TokenCorpus(args.corpus)

    unlabelled_reviews = 0
    with artifacts.scratch_beside_outputs(args.matrix, "embed") as scratch:
        if params.unlabelled and params.method == "word2vec":
            joined = Path(scratch) / "tokens.txt"
            unlabelled_reviews = write_word2vec_corpus(args.corpus, args.unlabelled, joined)
            log.info("word2vec learns from %d unlabelled reviews too", unlabelled_reviews)
            vectors = load_word_vectors(params, TokenCorpus(joined))
        else:
            vectors = load_word_vectors(params, corpus)
    if params.method == "random":
        matrix = random_embedding_matrix(len(vocabulary), params.dimension, params.seed)
        covered = np.zeros(len(vocabulary), dtype=bool)
    else:
        matrix, covered = build_embedding_matrix(vocabulary, vectors, params.seed)
    if params.method == "pretrained":  # keep only what this vocabulary uses, not gigabytes
        vectors = restrict_to_vocabulary(vectors, vocabulary)

    training_tokens = sum(len(tokens) for tokens in corpus)
    report = {
        "method": params.method,
        "dimension": int(matrix.shape[1]),
        "unlabelled_reviews": unlabelled_reviews,
        **coverage_report(vocabulary, covered, training_tokens),
    }
    log.info(
        "matrix %s; %.1f%% of vocabulary words and %.1f%% of training tokens have a vector",
        matrix.shape,
        100 * report["vocabulary_coverage"],
        100 * report["training_token_coverage"],
    )
    artifacts.write_array(matrix, args.matrix)
    write_vectors(vectors, args.vectors)
    artifacts.write_json(report, args.report)


if __name__ == "__main__":
    cli.run(main, "embed")
