"""Typed parameters: one frozen pydantic model per section of ``params.yaml``.

A stage validates its own section before it loads any data, so a misspelled key, a wrong type or an
out-of-range value costs a second, not a half-finished run. Each model's field names are exactly the
keys that the stage lists under ``params:`` in ``dvc.yaml`` (a test keeps the two in step).

No field has a default: params.yaml is the single place where values live, because DVC tracks
(and `dvc params diff` shows) only the values written there. A value defaulted in Python would
change results without DVC noticing.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML, YAMLError

from imdb_rnn.errors import ParamsError

# DVC's default parameters file, read relative to the pipeline root where `dvc repro` runs stages.
PARAMS_FILE = Path("params.yaml")


class _Section(BaseModel):
    # strict: YAML already gives ints, floats, bools and strings their own types, so a quoted
    # number ("20000") or a float where an int belongs is a mistake worth reporting, not coercing.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class IngestParams(_Section):
    """Where the reviews come from and how they are split."""

    source: str = Field(min_length=1)  # "huggingface", "keras", or a local file/directory
    dataset: str = Field(min_length=1)  # Hugging Face dataset id
    revision: str | None  # Hub branch, tag or commit; None = the default branch
    protocol: Literal["official", "random"]
    validation_fraction: float = Field(gt=0, lt=1)
    test_fraction: float = Field(gt=0, lt=1)  # protocol "random" only
    seed: int
    max_reviews_per_split: int | None = Field(ge=1)  # None = every review


class TokenizeParams(_Section):
    """How review text becomes fixed-length id sequences."""

    vocab_size: int = Field(ge=3)  # ids in total, counting 0 = padding and 1 = OOV
    min_frequency: int = Field(ge=1)
    max_length: int = Field(ge=1)
    padding: Literal["pre", "post"]
    truncating: Literal["pre", "post"]


class PretrainedVectorsParams(_Section):
    """Where `embed.method: pretrained` finds its vectors."""

    source: str = Field(min_length=1)  # a Hub model repository id, or a local file
    filename: str | None  # the file inside the Hub repository
    revision: str | None
    format: Literal["gensim", "word2vec-binary", "word2vec-text"]


class EmbedParams(_Section):
    """How the embedding matrix that initialises the model is made."""

    method: Literal["word2vec", "pretrained", "random"]
    dimension: int = Field(ge=1)  # word2vec and random; pretrained vectors bring their own
    algorithm: Literal["skipgram", "cbow"]
    window: int = Field(ge=1)
    min_count: int = Field(ge=1)
    negative: int = Field(ge=1)
    epochs: int = Field(ge=1)
    seed: int
    workers: int = Field(ge=1)  # 1 is the only setting that gives bit-identical vectors
    pretrained: PretrainedVectorsParams


class EarlyStoppingParams(_Section):
    monitor: Literal["val_loss", "val_accuracy"]
    patience: int = Field(ge=0)  # epochs without improvement before stopping; 0 = never stop early
    restore_best_weights: bool


class ReduceLearningRateParams(_Section):
    monitor: Literal["val_loss", "val_accuracy"]
    patience: int = Field(ge=0)  # epochs without improvement before reducing; 0 = constant rate
    factor: float = Field(gt=0, lt=1)
    min_learning_rate: float = Field(ge=0)


class TrainParams(_Section):
    """The recurrent classifier and how it is trained."""

    model: Literal["simple_rnn", "lstm", "gru"]
    bidirectional: bool
    num_layers: int = Field(ge=1)
    units: int = Field(ge=1)
    dropout: float = Field(ge=0, lt=1)  # on the inputs of each recurrent layer
    recurrent_dropout: float = Field(ge=0, lt=1)  # > 0 rules out the cuDNN kernels on a GPU
    spatial_dropout: float = Field(ge=0, lt=1)  # drops whole embedding channels
    between_layer_dropout: float = Field(ge=0, lt=1)  # between stacked recurrent layers
    pooling: Literal["last", "max", "mean"]
    head_dropout: float = Field(ge=0, lt=1)  # after pooling
    dense_units: int = Field(ge=0)  # a ReLU layer before the output; 0 = none
    embedding_trainable: bool
    mask_padding: bool
    # group reviews of similar length and cut each batch's padding: same model, ~2x faster
    bucket_by_length: bool
    optimizer: Literal["adam", "adamw", "rmsprop"]
    learning_rate: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    batch_size: int = Field(ge=1)
    epochs: int = Field(ge=1)
    early_stopping: EarlyStoppingParams
    reduce_lr: ReduceLearningRateParams
    seed: int
    deterministic: bool  # TensorFlow op determinism: identical reruns, somewhat slower

    @model_validator(mode="after")
    def _cut_padding_only_if_masked(self) -> TrainParams:
        # Without the mask the network reads padding as input, so cutting it would train a model
        # that sees less padding than the full-length reviews it is later asked to score.
        if self.bucket_by_length and not self.mask_padding:
            raise ValueError(
                "bucket_by_length: true needs mask_padding: true; set bucket_by_length: false"
            )
        return self


class EvaluateParams(_Section):
    """How the test split is scored."""

    threshold: float = Field(gt=0, lt=1)  # probability at or above which a review is positive
    batch_size: int = Field(ge=1)
    misclassified_examples: int = Field(ge=0)  # most confidently wrong reviews to report


class BaselineParams(_Section):
    """The n-gram logistic regression every recurrent run is compared with."""

    features: Literal["tfidf", "nb"]  # sublinear TF-IDF, or naive-Bayes-scaled binary n-grams
    ngram_max: int = Field(ge=1, le=5)  # n-grams of 1..ngram_max words
    min_df: int = Field(ge=1)  # an n-gram must occur in this many training reviews
    max_features: int | None = Field(ge=1)  # keep the most frequent n-grams; None = all
    c: float = Field(gt=0)  # inverse regularisation strength (scikit-learn's C)


SECTIONS: dict[str, type[_Section]] = {
    "ingest": IngestParams,
    "tokenize": TokenizeParams,
    "embed": EmbedParams,
    "train": TrainParams,
    "evaluate": EvaluateParams,
    "baseline": BaselineParams,
}

SectionT = TypeVar("SectionT", bound=_Section)


def parse_section(document: dict[str, Any], section: str, model: type[SectionT]) -> SectionT:
    """Validate one section of a parsed params document, or raise a one-line ParamsError."""
    if section not in document:
        raise ParamsError(
            f"params.yaml has no '{section}' section; add one (see README, Parameters)"
        )
    values = document[section] if document[section] is not None else {}
    if not isinstance(values, dict):
        raise ParamsError(f"params.yaml: '{section}' must be a mapping of keys, got {values!r}")
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise ParamsError(_describe(error, section, model)) from None


def read_document(path: Path = PARAMS_FILE) -> Any:
    """A YAML file as DVC reads it, or a one-line ParamsError if it is missing or malformed."""
    try:
        # ruamel.yaml, like DVC itself, reads YAML 1.2, where `1e-4` is a number (PyYAML's
        # YAML 1.1 reads it as a string); stages and `dvc params diff` see the same values.
        return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ParamsError(f"{path} not found; run from the repository root") from None
    except YAMLError as error:
        raise ParamsError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None


def load_section(section: str, model: type[SectionT], path: Path = PARAMS_FILE) -> SectionT:
    """Read ``path`` and validate the named section."""
    return parse_section(read_document(path), section, model)


def _describe(error: ValidationError, section: str, model: type[BaseModel]) -> str:
    """Turn pydantic's report into one line per problem: key, bad value, what is allowed."""
    lines = []
    for problem in error.errors():
        key = ".".join([section, *(str(part) for part in problem["loc"])])
        if problem["type"] == "extra_forbidden":
            lines.append(f"params.yaml: unknown key {key}{_suggestion(problem['loc'], model)}")
            continue
        if problem["type"] == "missing":
            lines.append(f"params.yaml: missing key {key}; add it (see README, Parameters)")
            continue
        if problem["type"] == "value_error":  # a rule across keys, from a model validator
            lines.append(f"params.yaml: {key}.{problem['ctx']['error']}")
            continue
        allowed = problem["msg"].replace("Input should be", "must be")
        lines.append(f"params.yaml: {key} {allowed}, got {problem['input']!r}")
    return "; ".join(lines)


def _suggestion(location: tuple, model: type[BaseModel]) -> str:
    """' (did you mean X?)' for a misspelled key, or the list of allowed keys."""
    *parents, unknown = (str(part) for part in location)
    for parent in parents:  # walk into nested sections such as embed.pretrained
        annotation = model.model_fields[parent].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(unknown, allowed, n=1)
    if close:
        return f" (did you mean {close[0]}?)"
    return f" (allowed: {', '.join(allowed)})"
