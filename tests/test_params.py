from __future__ import annotations

import copy

import pytest
import yaml
from pydantic import BaseModel

from imdb_rnn.errors import ParamsError
from imdb_rnn.params import (
    SECTIONS,
    EmbedParams,
    TokenizeParams,
    TrainParams,
    load_section,
    parameters_markdown,
    parse_section,
)
from tests.conftest import REPO_ROOT


def test_every_section_of_the_committed_params_is_valid(default_params):
    for section, model in SECTIONS.items():
        parse_section(default_params, section, model)


def _error_for(document: dict, section: str, model) -> str:
    with pytest.raises(ParamsError) as caught:
        parse_section(document, section, model)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_out_of_range_value_names_key_value_and_limit(default_params):
    document = copy.deepcopy(default_params)
    document["tokenize"]["vocab_size"] = 0
    message = _error_for(document, "tokenize", TokenizeParams)
    assert "tokenize.vocab_size" in message
    assert "greater than or equal to 3" in message
    assert "got 0" in message


def test_wrong_type_is_not_coerced(default_params):
    document = copy.deepcopy(default_params)
    document["tokenize"]["max_length"] = "400"
    message = _error_for(document, "tokenize", TokenizeParams)
    assert "tokenize.max_length" in message and "'400'" in message


def test_misspelled_key_gets_a_suggestion(default_params):
    document = copy.deepcopy(default_params)
    document["tokenize"]["vocabsize"] = 100
    message = _error_for(document, "tokenize", TokenizeParams)
    assert "unknown key tokenize.vocabsize" in message
    assert "did you mean vocab_size?" in message


def test_unknown_nested_key_lists_the_allowed_ones(default_params):
    document = copy.deepcopy(default_params)
    document["embed"]["pretrained"]["zzz"] = 1
    message = _error_for(document, "embed", EmbedParams)
    assert "embed.pretrained.zzz" in message
    assert "allowed: source, filename, revision, format" in message


def test_choice_lists_the_allowed_values(default_params):
    document = copy.deepcopy(default_params)
    document["embed"]["method"] = "glove"
    message = _error_for(document, "embed", EmbedParams)
    assert "embed.method" in message and "'word2vec', 'pretrained' or 'random'" in message


def test_missing_key_and_missing_section(default_params):
    document = copy.deepcopy(default_params)
    del document["tokenize"]["padding"]
    assert "missing key tokenize.padding" in _error_for(document, "tokenize", TokenizeParams)
    del document["tokenize"]
    assert "no 'tokenize' section" in _error_for(document, "tokenize", TokenizeParams)


def test_load_section_reports_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_section("tokenize", TokenizeParams, tmp_path / "params.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("tokenize: [unclosed\n")
    with pytest.raises(ParamsError, match=r"line 2, column 1: .*not valid YAML"):
        load_section("tokenize", TokenizeParams, broken)


# What a stage reads beyond its own section: both members and the combination are scored at
# evaluate's threshold, and the combine stage writes evaluate's batch size into the predictor.
READ_ACROSS_SECTIONS = {"linear": {"evaluate.threshold"}, "combine": {"evaluate"}}


def test_each_stage_tracks_its_whole_section_and_what_it_reads_across():
    """A whole section: a misspelled key added to it reruns the stage, which then refuses it."""
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    for section in SECTIONS:
        assert set(stages[section]["params"]) == {section} | READ_ACROSS_SECTIONS.get(
            section, set()
        )


def test_non_finite_floats_and_out_of_range_seeds_are_refused(default_params):
    for section, key, value in [
        ("train", "learning_rate", float("inf")),
        ("linear", "c", float("inf")),
        ("train", "dropout", float("nan")),
        ("ingest", "seed", -1),
        ("embed", "seed", 2**32),
    ]:
        document = copy.deepcopy(default_params)
        document[section][key] = value
        message = _error_for(document, section, SECTIONS[section])
        assert f"{section}.{key}" in message, message


def test_duplicate_keys_are_named_with_their_line(tmp_path):
    duplicated = tmp_path / "params.yaml"
    duplicated.write_text("train:\n  units: 3\n  epochs: 2\n  units: 4\n")
    with pytest.raises(ParamsError, match="line 4, column 3: key 'units' appears a second time"):
        load_section("train", TrainParams, duplicated)


def test_the_parameters_page_is_generated_from_the_models():
    """docs/parameters.md is the output of `python -m imdb_rnn.params`: regenerate it with
    `python -m imdb_rnn.params > docs/parameters.md` after changing a description."""
    expected = parameters_markdown(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))
    assert (REPO_ROOT / "docs" / "parameters.md").read_text() == expected


def test_every_key_has_a_description():
    for model in SECTIONS.values():
        for name, field in model.model_fields.items():
            annotation = field.annotation
            nested = isinstance(annotation, type) and issubclass(annotation, BaseModel)
            assert nested or field.description, f"{model.__name__}.{name} has no description"
