"""The trained classifier's file: writing it deterministically, reading it safely, and the record
of what it was trained on, which every reader checks before trusting its predictions.

A model turns ids into probabilities; it is only right for text encoded with the vocabulary and the
encoding it was trained with. A shuffled vocabulary of the same size would be accepted by Keras and
flip labels silently; a larger one crashes inside TensorFlow (or, on a GPU, reads zeros). So the
train stage stores the vocabulary's fingerprint and the encoding in the model file's metadata, and
evaluate and imdb-predict refuse files that do not belong together. The metadata is read without
importing TensorFlow, so a mismatch is reported in a fraction of a second.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from imdb_rnn import artifacts
from imdb_rnn.encoding import Encoding
from imdb_rnn.errors import DataError
from imdb_rnn.vocabulary import Vocabulary

# The key of this project's record inside the .keras archive's metadata.json.
RECORD_KEY = "imdb_rnn"


def training_record(vocabulary: Vocabulary, encoding: Encoding) -> dict[str, Any]:
    """What a model must be used with: stored in its file by write_model."""
    return {
        "vocabulary_fingerprint": vocabulary.fingerprint,
        "vocabulary_size": len(vocabulary),
        "encoding": encoding.model_dump(),
    }


def write_model(model, path: Path, record: dict[str, Any]) -> None:
    """Keras' native .keras format (a zip of config and weights; no pickle), made deterministic,
    with ``record`` (see training_record) in its metadata.

    Keras stamps the save time twice: as the weights member's zip date, and as ``date_saved`` in
    metadata.json (which loading never reads); and config.json links objects shared between
    layers by ``shared_object_id``, Python's id() of the object: a memory address that differs
    from process to process. The dates are dropped and the ids renumbered in order of appearance,
    so the same weights give the same bytes, and evaluate does not rerun after a retraining that
    changed nothing.
    """
    with (
        artifacts.atomic_path(path, suffix=".keras") as normalised,
        artifacts.scratch_directory(path) as scratch,
    ):
        saved = Path(scratch) / "model.keras"
        model.save(saved)
        with zipfile.ZipFile(saved) as source, zipfile.ZipFile(normalised, "w") as target:
            for member in source.infolist():
                content = source.read(member)
                if member.filename == "metadata.json":
                    metadata = json.loads(content)
                    metadata.pop("date_saved", None)
                    metadata[RECORD_KEY] = record
                    content = json.dumps(metadata, sort_keys=True).encode()
                elif member.filename == "config.json":
                    content = json.dumps(_renumber_shared_objects(json.loads(content))).encode()
                fixed = zipfile.ZipInfo(member.filename, date_time=artifacts.ZIP_EPOCH)
                fixed.compress_type = member.compress_type
                target.writestr(fixed, content)


def _renumber_shared_objects(config: Any) -> Any:
    """The config with each distinct ``shared_object_id`` replaced by 1, 2, 3... in order."""
    numbers: dict[int, int] = {}

    def renumber(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: numbers.setdefault(value, len(numbers) + 1)
                if key == "shared_object_id"
                else renumber(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [renumber(item) for item in node]
        return node

    return renumber(config)


def read_training_record(path: Path) -> dict[str, Any]:
    """The record write_model stored, read straight from the archive (no TensorFlow)."""
    try:
        with zipfile.ZipFile(artifacts.existing(path)) as archive:
            metadata = json.loads(archive.read("metadata.json"))
            archive.getinfo("model.weights.h5")
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError, EOFError) as error:
        raise DataError(
            f"{path} is not a readable Keras model file ({' '.join(str(error).split())});"
            f" {artifacts.RESTORE_HINT}"
        ) from None
    if RECORD_KEY not in metadata:
        raise DataError(
            f"{path} does not record the vocabulary and encoding it was trained with (a model"
            " from before that record existed, or from outside this pipeline); retrain it with"
            " dvc repro train"
        )
    return metadata[RECORD_KEY]


def check_belongs_together(
    model_path: Path,
    vocabulary: Vocabulary,
    vocabulary_path: Path,
    encoding: Encoding,
    encoding_path: Path,
) -> None:
    """Refuse a model, vocabulary and encoding that do not come from the same run."""
    record = read_training_record(model_path)
    if record["vocabulary_fingerprint"] != vocabulary.fingerprint:
        raise DataError(
            f"{model_path} was trained with another vocabulary than {vocabulary_path}"
            f" ({record['vocabulary_size']} vs {len(vocabulary)} ids, fingerprints"
            f" {record['vocabulary_fingerprint'][:12]} vs {vocabulary.fingerprint[:12]}), so its"
            " predictions would be wrong; use the files of one run (dvc checkout, or dvc repro)"
        )
    if record["encoding"] != encoding.model_dump():
        raise DataError(
            f"{model_path} was trained with encoding {record['encoding']}, but {encoding_path}"
            f" says {encoding.model_dump()}; use the files of one run (dvc checkout, or dvc repro)"
        )


def read_classifier(path: Path):
    """A classifier the train stage saved, in Keras' safe mode: no arbitrary code runs. Its
    config names MaskedGlobalMaxPooling1D, which imdb_rnn.model registers."""
    import keras

    from imdb_rnn import model as _registers_custom_layers  # noqa: F401

    read_training_record(path)  # a clear error for a truncated or foreign file
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except (ValueError, TypeError, OSError, KeyError) as error:
        detail = " ".join(str(error).split())
        if len(detail) > 300:
            detail = detail[:297] + "..."
        raise DataError(
            f"{path} cannot be loaded as this pipeline's model ({detail}); if it came from"
            " elsewhere, it may need code that safe mode refuses to run: retrain with dvc repro"
        ) from None
