from __future__ import annotations

import copy
import os
import subprocess
import sys

import numpy as np
import pytest
from gensim.models import KeyedVectors

from imdb_rnn.embedding import (
    build_embedding_matrix,
    coverage_report,
    random_embedding_matrix,
    restrict_to_vocabulary,
    train_word2vec,
)
from imdb_rnn.params import EmbedParams
from imdb_rnn.text import tokenize
from imdb_rnn.vocabulary import PADDING_ID, build_vocabulary
from tests.conftest import REPO_ROOT, make_reviews


@pytest.fixture
def corpus() -> list[list[str]]:
    return [tokenize(text) for text in make_reviews(60)["text"]]


@pytest.fixture
def embed_params(default_params) -> EmbedParams:
    values = copy.deepcopy(default_params["embed"]) | {"dimension": 8, "epochs": 2, "min_count": 1}
    return EmbedParams.model_validate(values)


def test_word2vec_learns_a_vector_per_frequent_word(corpus, embed_params):
    vectors = train_word2vec(corpus, embed_params)
    assert vectors.vector_size == 8
    assert {"great", "awful", "movie"} <= set(vectors.index_to_key)


def test_a_corpus_streamed_from_disk_gives_the_same_vectors(corpus, embed_params, tmp_path):
    from imdb_rnn import artifacts
    from imdb_rnn.embedding import TokenCorpus

    with artifacts.text_writer(tmp_path / "tokens.txt") as stream:
        stream.writelines(" ".join(tokens) + "\n" for tokens in corpus)
    streamed = train_word2vec(TokenCorpus(tmp_path / "tokens.txt"), embed_params)
    in_memory = train_word2vec(corpus, embed_params)
    np.testing.assert_array_equal(streamed.vectors, in_memory.vectors)


@pytest.mark.slow
def test_word2vec_is_bit_identical_across_processes_with_different_hash_seeds(tmp_path):
    """Python randomises str hashes per process; the vectors must not depend on them."""
    script = (
        "import sys, yaml; from imdb_rnn.params import EmbedParams;"
        "from imdb_rnn.embedding import train_word2vec; from imdb_rnn.text import tokenize;"
        "from tests.conftest import make_reviews;"
        "values = yaml.safe_load(open('params.yaml'))['embed'] | {'dimension': 8, 'epochs': 2};"
        "corpus = [tokenize(t) for t in make_reviews(60)['text']];"
        "vectors = train_word2vec(corpus, EmbedParams.model_validate(values));"
        "vectors.save_word2vec_format(sys.argv[1], binary=True)"
    )
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"vectors-{hash_seed}.bin"
        environment = os.environ | {"PYTHONHASHSEED": hash_seed}
        subprocess.run(
            [sys.executable, "-c", script, str(out)], cwd=REPO_ROOT, env=environment, check=True
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_embedding_matrix_rows_follow_vocabulary_ids():
    vectors = KeyedVectors(vector_size=2)
    vectors.add_vectors(["good", "bad"], np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32))
    vocabulary = build_vocabulary([["good", "bad", "bad", "unseen"]], 10, 1)
    matrix, covered = build_embedding_matrix(vocabulary, vectors, seed=0)
    ids = vocabulary.ids
    assert matrix.shape == (5, 2) and matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix[PADDING_ID], [0.0, 0.0])
    np.testing.assert_array_equal(matrix[ids["good"]], [1.0, 2.0])
    np.testing.assert_array_equal(matrix[ids["bad"]], [3.0, 4.0])
    assert covered.tolist() == [False, False, True, True, False]
    assert np.any(matrix[ids["unseen"]] != 0)  # random, so a trainable embedding can learn it


def test_coverage_counts_words_and_running_tokens():
    vocabulary = build_vocabulary([["good", "good", "bad", "rare"]], 10, 1)
    covered = np.array([token in {"good"} for token in vocabulary.tokens])
    report = coverage_report(vocabulary, covered, total_tokens=5)
    assert report["vocabulary_words"] == 3 and report["words_with_vector"] == 1
    assert report["vocabulary_coverage"] == round(1 / 3, 4)
    assert report["training_tokens"] == 5
    assert report["training_token_coverage"] == 0.4


def test_random_matrix_matches_keras_default_range_and_is_seeded():
    matrix = random_embedding_matrix(50, 4, seed=3)
    assert matrix.shape == (50, 4) and np.abs(matrix).max() <= 0.05
    np.testing.assert_array_equal(matrix[PADDING_ID], np.zeros(4))
    np.testing.assert_array_equal(matrix, random_embedding_matrix(50, 4, seed=3))


def test_restrict_to_vocabulary_keeps_only_vocabulary_words():
    vectors = KeyedVectors(vector_size=2)
    vectors.add_vectors(["good", "other"], np.ones((2, 2), dtype=np.float32))
    kept = restrict_to_vocabulary(vectors, build_vocabulary([["good", "new"]], 10, 1))
    assert kept.index_to_key == ["good"]
