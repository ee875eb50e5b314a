from __future__ import annotations

import copy

import pytest
import yaml

from imdb_rnn.errors import ParamsError
from imdb_rnn.params import SECTIONS, EmbedParams, TokenizeParams, load_section, parse_section
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
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_section("tokenize", TokenizeParams, broken)


# Keys a stage reads from another stage's section: the baseline is scored at evaluate's threshold.
READ_ACROSS_SECTIONS = {"baseline": {"evaluate.threshold"}}


def test_dvc_yaml_lists_exactly_the_keys_each_stage_reads():
    """A key a stage reads but dvc.yaml omits would change results without rerunning the stage."""
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    for section, model in SECTIONS.items():
        declared = set(stages[section]["params"])
        own = {f"{section}.{field}" for field in model.model_fields}
        assert declared == own | READ_ACROSS_SECTIONS.get(section, set()), section
