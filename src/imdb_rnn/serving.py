"""What imdb-predict serves: the members named by models/predictor.json, loaded and combined.

Each review is scored exactly as the pipeline scored the test split: the recurrent member through
the same tokenizer, vocabulary, encoding and length-sorted batches as the evaluate stage, the
linear member through the same saved model as the linear stage, then the combine stage's weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imdb_rnn.combination import Combiner
from imdb_rnn.encoding import Encoding, encode, pad_and_truncate, read_encoding
from imdb_rnn.linear import LinearModel, read_linear
from imdb_rnn.predictor_file import PredictorManifest, checked, read_manifest
from imdb_rnn.text import tokenize
from imdb_rnn.vocabulary import OOV_ID, Vocabulary, read_vocabulary


@dataclass
class Predictor:
    """The members, loaded, and how to combine them."""

    manifest: PredictorManifest
    vocabulary: Vocabulary
    encoding: Encoding
    rnn: object  # keras.Model
    linear: LinearModel

    def member_probabilities(self, reviews: Sequence[str]) -> dict[str, np.ndarray]:
        from imdb_rnn.model import predict_probabilities  # TensorFlow: only once needed

        padded_ids = pad_and_truncate(
            encode((tokenize(review) for review in reviews), self.vocabulary), self.encoding
        )
        return {
            "rnn": predict_probabilities(
                self.rnn, padded_ids, self.manifest.batch_size, self.encoding.padding
            ),
            "linear": self.linear.probabilities(reviews),
        }

    def combined(self, member_probabilities: dict[str, np.ndarray]) -> np.ndarray:
        combiner = Combiner(weights=self.manifest.weights, intercept=self.manifest.intercept)
        return combiner.probabilities(member_probabilities)


def known_words(reviews: Sequence[str], vocabulary: Vocabulary) -> list[int]:
    """How many of each review's tokens the vocabulary knows: 0 means the models guess."""
    ids = encode((tokenize(review) for review in reviews), vocabulary)
    return [sum(1 for token_id in review if token_id != OOV_ID) for review in ids]


def load_predictor(manifest_path: Path) -> Predictor:
    """Every member, after checking that each file is the one the pipeline evaluated."""
    manifest = read_manifest(manifest_path)
    vocabulary_path = checked(manifest.vocabulary, manifest_path)
    encoding_path = checked(manifest.encoding, manifest_path)
    model_path = checked(manifest.rnn_model, manifest_path)
    linear = read_linear(checked(manifest.linear_model, manifest_path))
    vocabulary, encoding = read_vocabulary(vocabulary_path), read_encoding(encoding_path)

    from imdb_rnn.model_file import check_belongs_together, read_classifier

    check_belongs_together(model_path, vocabulary, vocabulary_path, encoding, encoding_path)
    return Predictor(manifest, vocabulary, encoding, read_classifier(model_path), linear)
