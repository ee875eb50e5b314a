"""Typed parameters: one frozen pydantic model per section of ``params.yaml``.

A stage validates its own section before it loads any data, so a misspelled key, a wrong type, an
out-of-range value or a non-finite float costs a second, not a half-finished run. dvc.yaml tracks
each stage's whole section (tests/test_params.py checks), so a key added by mistake reruns the stage
that then refuses it. Each key's description lives here once; docs/parameters.md is generated
from it.

No field has a default: params.yaml is the single place where values live, because DVC tracks
(and `dvc params diff` shows) only the values written there. A value defaulted in Python would
change results without DVC noticing.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from ruamel.yaml import YAML, YAMLError
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError

from imdb_rnn.errors import ParamsError

# DVC's default parameters file, read relative to the pipeline root where `dvc repro` runs stages.
PARAMS_FILE = Path("params.yaml")


# Seeds go to NumPy, scikit-learn and TensorFlow, which all take unsigned 32-bit integers.
SEED_MAX = 2**32 - 1


class _Section(BaseModel):
    # strict: YAML already gives ints, floats, bools and strings their own types, so a quoted
    # number ("20000") or a float where an int belongs is a mistake worth reporting, not coercing.
    # allow_inf_nan=False: `.inf` and `.nan` are valid YAML floats, and either one trains a model
    # to NaN or fits nothing, with exit status 0.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class IngestParams(_Section):
    """Where the reviews come from, how they are split, and which unlabelled reviews are kept."""

    source: str = Field(
        min_length=1,
        description="where the reviews come from: `huggingface`, `keras`, or the path of a local"
        " parquet/CSV file or directory of train*/test* (and unsupervised*) files",
    )
    dataset: str = Field(min_length=1, description="Hugging Face dataset id (source huggingface)")
    revision: str | None = Field(
        description="Hub branch, tag or commit of the dataset; null = the default branch"
    )
    protocol: Literal["official", "random"] = Field(
        description="official: keep the official test split; random: pool everything and"
        " re-split (the protocol of seed 004; easier, not comparable)"
    )
    validation_fraction: float = Field(
        gt=0, lt=1, description="share of the training reviews held out for validation, stratified"
    )
    validation_block_size: int | None = Field(
        ge=1,
        description="protocol official only: null = validation is a random share of the"
        " training reviews; n = it is drawn in runs of n consecutive reviews of each label, in"
        " the source's order, which in stanfordnlp/imdb keeps a movie's reviews together: then"
        " validation, like the official test split, mostly holds movies training lacks",
    )
    test_fraction: float = Field(
        gt=0, lt=1, description="protocol random only: share of all reviews used for test"
    )
    seed: int = Field(ge=0, le=SEED_MAX, description="seed of the splits and of the review cap")
    max_reviews_per_split: int | None = Field(
        ge=2,
        description="stratified cap on each split for quick runs, and cap on the unlabelled"
        " reviews (the first kept, in the source's order); null = every review",
    )
    unlabelled: bool = Field(
        description="also write the source's reviews without a label (the Hub dataset's split"
        " `unsupervised`, a local directory's unsupervised* files), less empty ones, repeats and"
        " copies of validation or test reviews; false writes that output with no rows"
    )
    unlabelled_path: str | None = Field(
        min_length=1,
        description="unlabelled: true only: a parquet/CSV file of unlabelled reviews (column"
        " `text`; a `label` column is ignored) read instead of the source's own; null = the"
        " source's own",
    )

    @model_validator(mode="after")
    def _blocks_only_where_the_order_keeps_movies_together(self) -> IngestParams:
        if self.validation_block_size is None:
            return self
        # A random test split shares movies with training anyway, and Keras' copy is shuffled, so
        # in either case runs of its order would only be a noisier random validation.
        if self.protocol != "official":
            raise ValueError(
                "validation_block_size needs protocol: official (a random test split shares"
                " movies with training too); set validation_block_size: null"
            )
        if self.source == "keras":
            raise ValueError(
                "validation_block_size needs a source whose order keeps a movie's reviews"
                " together, and Keras' IMDB is shuffled; set validation_block_size: null"
            )
        return self


class TokenizeParams(_Section):
    """How review text becomes fixed-length id sequences."""

    vocab_size: int = Field(
        ge=3, description="ids in total, counting 0 = padding and 1 = out-of-vocabulary"
    )
    min_frequency: int = Field(
        ge=1, description="training-split occurrences a word needs to get an id"
    )
    max_length: int = Field(ge=1, description="tokens per review after padding and truncation")
    padding: Literal["pre", "post"] = Field(
        description="where the padding goes; post keeps the cuDNN kernels usable with masking"
    )
    truncating: Literal["pre", "post"] = Field(
        description="pre drops the start of a long review and keeps its ending"
    )


class PretrainedVectorsParams(_Section):
    """Where `embed.method: pretrained` finds its vectors."""

    source: str = Field(min_length=1, description="a Hub model repository id, or a local file")
    filename: str | None = Field(description="the vectors file inside the Hub repository")
    revision: str | None = Field(
        description="Hub commit of the vectors (pinned: a branch can change under you)"
    )
    format: Literal["word2vec-binary", "word2vec-text", "gensim"] = Field(
        description="the original word2vec formats, or gensim's KeyedVectors.save (a pickle)"
    )
    allow_pickle: bool = Field(
        description="format gensim only: loading a pickle can run code, so it must be allowed"
        " here, and only for files you trust"
    )


class EmbedParams(_Section):
    """How the embedding matrix that initialises the model is made."""

    method: Literal["word2vec", "pretrained", "random"] = Field(
        description="train Word2Vec here, load pretrained vectors, or random (Keras' uniform)"
    )
    dimension: int = Field(
        ge=1, description="vector size for word2vec and random; pretrained vectors bring their own"
    )
    algorithm: Literal["skipgram", "cbow"] = Field(description="Word2Vec training algorithm")
    window: int = Field(ge=1, description="Word2Vec context window")
    min_count: int = Field(ge=1, description="Word2Vec ignores rarer words")
    negative: int = Field(ge=1, description="negative samples per positive one")
    epochs: int = Field(ge=1, description="Word2Vec passes over the training reviews")
    seed: int = Field(
        ge=0, le=SEED_MAX, description="Word2Vec's seed, and that of the matrix's random rows"
    )
    workers: int = Field(
        ge=1, description="Word2Vec threads; only 1 gives bit-identical vectors on every run"
    )
    corpus_file: bool = Field(
        description="gensim's corpus_file mode: each worker thread reads its own part of the"
        " corpus file (fast with many workers on a large corpus; results differ from run to run)"
    )
    unlabelled: bool = Field(
        description="Word2Vec also learns from ingest's unlabelled reviews (which ingest.unlabelled"
        " must keep); the vocabulary is still the tokenize stage's"
    )
    pretrained: PretrainedVectorsParams


class EarlyStoppingParams(_Section):
    monitor: Literal["val_loss", "val_accuracy"] = Field(description="the validation score watched")
    patience: int = Field(
        ge=0, description="epochs without improvement before stopping; 0 = never stop early"
    )
    restore_best_weights: bool = Field(description="keep the best epoch's weights, not the last")


class ReduceLearningRateParams(_Section):
    monitor: Literal["val_loss", "val_accuracy"] = Field(description="the validation score watched")
    patience: int = Field(
        ge=0, description="epochs without improvement before reducing; 0 = constant rate"
    )
    factor: float = Field(gt=0, lt=1, description="multiplier applied to the learning rate")
    min_learning_rate: float = Field(ge=0, description="floor of the schedule")


class TrainParams(_Section):
    """The recurrent classifier and how it is trained."""

    model: Literal["simple_rnn", "lstm", "gru"] = Field(description="recurrent cell")
    bidirectional: bool = Field(description="wrap each recurrent layer in Bidirectional")
    num_layers: int = Field(ge=1, description="stacked recurrent layers")
    units: int = Field(ge=1, description="units per layer and direction")
    dropout: float = Field(ge=0, lt=1, description="dropout on each recurrent layer's inputs")
    recurrent_dropout: float = Field(
        ge=0, lt=1, description="dropout on the recurrent state; > 0 rules out cuDNN on a GPU"
    )
    spatial_dropout: float = Field(
        ge=0, lt=1, description="SpatialDropout1D on the embeddings (drops whole channels)"
    )
    between_layer_dropout: float = Field(
        ge=0, lt=1, description="Dropout between stacked recurrent layers"
    )
    pooling: Literal["last", "max", "mean"] = Field(
        description="how the sequence of outputs becomes one vector"
    )
    head_dropout: float = Field(ge=0, lt=1, description="Dropout after pooling")
    dense_units: int = Field(ge=0, description="a ReLU layer before the output; 0 = none")
    embedding_trainable: bool = Field(description="false freezes the embed stage's vectors")
    mask_padding: bool = Field(description="recurrent layers and pooling skip padding (id 0)")
    bucket_by_length: bool = Field(
        description="batch reviews of similar length and cut each batch's padding (same model,"
        " about half the work); needs mask_padding"
    )
    optimizer: Literal["adam", "adamw", "rmsprop"] = Field(description="the optimizer")
    learning_rate: float = Field(gt=0, description="initial learning rate")
    weight_decay: float = Field(ge=0, description="decoupled weight decay (any optimizer)")
    batch_size: int = Field(ge=1, description="reviews per training batch")
    epochs: int = Field(ge=1, description="the most epochs; early stopping may end sooner")
    early_stopping: EarlyStoppingParams
    reduce_lr: ReduceLearningRateParams
    seed: int = Field(
        ge=0, le=SEED_MAX, description="seeds Python, NumPy and Keras (weights, dropout, batches)"
    )
    deterministic: bool = Field(
        description="TensorFlow op determinism: identical reruns (no cost measured on CPU)"
    )
    distribution: Literal["none", "mirrored", "multi_worker"] = Field(
        description="none: one device; mirrored: a replica on every GPU of this machine,"
        " gradients all-reduced each step; multi_worker: one worker per machine named in"
        " TF_CONFIG, all-reduced over the network (docs/scaling.md)"
    )
    peer_timeout_seconds: int = Field(
        ge=1,
        description="multi_worker only: how long a worker waits for the others TF_CONFIG names"
        " to start (logging whom it awaits) before it stops with an error; cannot change the"
        " model, and a saved training state survives a change to it",
    )

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

    threshold: float = Field(
        gt=0, lt=1, description="probability at or above which a review is positive"
    )
    batch_size: int = Field(ge=1, description="prediction batch size (memory, not results)")
    misclassified_examples: int = Field(
        ge=0, description="most confidently wrong test reviews in the error analysis"
    )


class LinearParams(_Section):
    """The linear member: logistic regression on word n-grams (also the baseline to beat)."""

    features: Literal["tfidf", "nb"] = Field(
        description="sublinear TF-IDF, or naive-Bayes-scaled binary n-grams (Wang & Manning 2012)"
    )
    ngram_max: int = Field(ge=1, le=5, description="n-grams of 1 to ngram_max words")
    min_df: int = Field(ge=1, description="training reviews an n-gram must occur in")
    max_features: int | None = Field(
        ge=1, description="keep only the most frequent n-grams; null = all"
    )
    c: float = Field(gt=0, description="inverse regularisation strength (scikit-learn's C)")


class CombineParams(_Section):
    """How the members' probabilities become the final model's, fitted on the validation split."""

    method: Literal["stacking", "average"] = Field(
        description="stacking: logistic regression on the members' log-odds, fitted on"
        " validation; average: equal weights, nothing fitted"
    )
    c: float = Field(gt=0, description="inverse regularisation strength of the stacking fit")


SECTIONS: dict[str, type[_Section]] = {
    "ingest": IngestParams,
    "tokenize": TokenizeParams,
    "embed": EmbedParams,
    "train": TrainParams,
    "evaluate": EvaluateParams,
    "linear": LinearParams,
    "combine": CombineParams,
}

SectionT = TypeVar("SectionT", bound=_Section)


def parse_section(document: dict[str, Any], section: str, model: type[SectionT]) -> SectionT:
    """Validate one section of a parsed params document, or raise a one-line ParamsError."""
    if section not in document:
        raise ParamsError(
            f"params.yaml has no '{section}' section; add one (see docs/parameters.md)"
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
    except IsADirectoryError:
        raise ParamsError(f"{path} is a directory, not a YAML file") from None
    except UnicodeDecodeError as error:
        raise ParamsError(
            f"{path} is not UTF-8 (byte {error.object[error.start]:#04x} at offset"
            f" {error.start}); save it as UTF-8"
        ) from None
    except YAMLError as error:
        raise ParamsError(f"{path}: {describe_yaml_error(error)}") from None


def describe_yaml_error(error: YAMLError) -> str:
    """Where and what: 'line 12, column 3: found duplicate key "units"; ...' in one line."""
    if isinstance(error, DuplicateKeyError):
        mark = error.problem_mark
        key = str(error.problem).split('"')[1] if '"' in str(error.problem) else "a key"
        return (
            f"line {mark.line + 1}, column {mark.column + 1}: key '{key}' appears a second time in"
            f" the mapping that starts at line {error.context_mark.line + 1}; keep one of them"
        )
    if isinstance(error, MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        problem = " ".join(str(error.problem).split())
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}; not valid YAML"
    return "not valid YAML: " + " ".join(str(error).split())


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
            lines.append(f"params.yaml: missing key {key}; add it (see docs/parameters.md)")
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


def parameters_markdown(document: dict[str, Any]) -> str:
    """docs/parameters.md: every key, its value in ``document`` (params.yaml), what it allows and
    what it means, all taken from the models above, so the descriptions live in one place."""
    lines = [
        "# Parameters",
        "",
        "Generated from `src/imdb_rnn/params.py` by"
        " `python -m imdb_rnn.params > docs/parameters.md` (a test checks it is current).",
        "Values are those of the committed `params.yaml`.",
        "",
        "All values live in `params.yaml`; no parameter has a default in code, because DVC",
        "tracks (and `dvc params diff` shows) only what is written there. Each stage validates",
        "its section before it loads any data: an unknown key (with a did-you-mean suggestion),",
        'a wrong type (no silent coercion: `"400"` is not `400`), an out-of-range value, or',
        "`.inf`/`.nan` stops it with one line that names the key. Values are read as YAML 1.2,",
        "as DVC reads them, so `1e-4` is a number.",
    ]
    for section, model in SECTIONS.items():
        lines += ["", f"## `{section}`", "", (model.__doc__ or "").strip(), ""]
        lines += ["| key | value | allowed | meaning |", "| --- | --- | --- | --- |"]
        lines += _rows(section, model, document.get(section) or {})
    return "\n".join(lines) + "\n"


def _rows(prefix: str, model: type[BaseModel], values: dict[str, Any]) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        key, annotation = f"{prefix}.{name}", field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows += _rows(key, annotation, values.get(name) or {})
            continue
        value = json.dumps(values.get(name))
        rows.append(f"| `{key}` | `{value}` | {_allowed(field)} | {field.description} |")
    return rows


def _allowed(field: FieldInfo) -> str:
    """What a field accepts, in words: its choices, or its type and bounds."""
    options = list(get_args(field.annotation)) or [field.annotation]
    nullable = type(None) in options
    options = [option for option in options if option is not type(None)]
    if get_origin(field.annotation) is Literal:
        return ", ".join(f"`{choice}`" for choice in get_args(field.annotation))
    kind = options[0]
    if get_origin(kind) is Literal:
        words = ", ".join(f"`{choice}`" for choice in get_args(kind))
    elif kind is bool:
        words = "`true`, `false`"
    else:
        words = kind.__name__
        bounds = []
        for constraint in field.metadata:
            for attribute, symbol in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
                limit = getattr(constraint, attribute, None)
                if limit is not None:
                    bounds.append(f"{symbol} {limit}")
        if bounds:
            words += " " + " and ".join(bounds)
    return words + (", `null`" if nullable else "")


if __name__ == "__main__":
    print(parameters_markdown(read_document()), end="")
