"""Shared fixtures: toy reviews, the repository's own params.yaml, and tiny datasets on disk."""

from __future__ import annotations

import copy
import random
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_IMDB_CACHE = REPO_ROOT.parent / "shared" / "hf" / "datasets"

POSITIVE_WORDS = ["great", "wonderful", "superb", "moving", "brilliant", "loved", "best", "fun"]
NEGATIVE_WORDS = ["awful", "boring", "terrible", "dull", "worst", "waste", "hated", "bad"]
FILLER_WORDS = ["the", "movie", "film", "plot", "actor", "scene", "story", "it", "was", "and"]


def make_reviews(count: int, seed: int = 0) -> pd.DataFrame:
    """Synthetic reviews whose sentiment words follow their label, half positive, half negative."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        label = index % 2
        cue_words = POSITIVE_WORDS if label else NEGATIVE_WORDS
        words = [rng.choice(FILLER_WORDS + cue_words) for _ in range(rng.randint(8, 40))]
        rows.append({"text": " ".join(words).capitalize() + ".<br /><br />", "label": label})
    return pd.DataFrame(rows)


@pytest.fixture
def toy_reviews() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": [
                "A wonderful film.<br /><br />I loved it!",
                "Dull, boring and far too long. I didn't care.",
                "The best acting I've seen this year!",
                "Awful. Just awful?",
            ],
            "label": [1, 0, 1, 0],
        }
    )


@pytest.fixture
def default_params() -> dict:
    """The repository's params.yaml, parsed: tests start from the real defaults."""
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


@pytest.fixture
def tiny_params(default_params, tiny_dataset) -> dict:
    """The defaults shrunk to the tiny dataset: a few seconds per stage."""
    params = copy.deepcopy(default_params)
    params["ingest"]["source"] = str(tiny_dataset)
    params["tokenize"] |= {"vocab_size": 50, "max_length": 16}
    params["embed"] |= {"dimension": 8, "epochs": 1, "min_count": 1}
    params["train"] |= {"units": 4, "epochs": 1}
    return params


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """models/predictor.json of a tiny predictor (tests.predictor_builder), once per module."""
    from tests.predictor_builder import build_predictor  # imports TensorFlow: only when used

    return build_predictor(tmp_path_factory.mktemp("project"))


def make_unlabelled_reviews(count: int, seed: int = 3) -> pd.DataFrame:
    """Reviews as the Hub's split `unsupervised` holds them: labelled -1."""
    return make_reviews(count, seed=seed).assign(label=-1)


def write_tiny_dataset(root: Path) -> Path:
    """``root/imdb``, laid out like the Hub's parquet export:
    plain_text/{train,test,unsupervised}-*.parquet."""
    directory = root / "imdb" / "plain_text"
    directory.mkdir(parents=True)
    make_reviews(200, seed=1).to_parquet(directory / "train-00000-of-00001.parquet")
    make_reviews(100, seed=2).to_parquet(directory / "test-00000-of-00001.parquet")
    make_unlabelled_reviews(60).to_parquet(directory / "unsupervised-00000-of-00001.parquet")
    return directory.parent


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return write_tiny_dataset(tmp_path)


@pytest.fixture(scope="session")
def reproduced_template(tmp_path_factory) -> Path:
    """A tiny project (tests.scratch_project) after its first `dvc repro`, made once per session:
    the tests that start from a reproduced pipeline copy it rather than pay 50 s each for the
    same run."""
    from tests.scratch_project import ALL_STAGES, create_tiny_project

    root = tmp_path_factory.mktemp("template")
    project = create_tiny_project(root / "project", write_tiny_dataset(root))
    ran = project.repro()
    assert ran == ALL_STAGES, ran
    return project.root


@pytest.fixture
def reproduced_project(reproduced_template, tmp_path):
    """A copy of the reproduced tiny project, its git repository and DVC cache included."""
    from tests.scratch_project import Project

    root = tmp_path / "project"
    shutil.copytree(reproduced_template, root, symlinks=True)
    return Project(root)


@pytest.fixture
def slow_dataset(tmp_path) -> Path:
    """Enough reviews that a training epoch takes about a second: time to kill it mid-epoch."""
    directory = tmp_path / "imdb"
    directory.mkdir()
    make_reviews(3000, seed=1).to_parquet(directory / "train.parquet")
    make_reviews(300, seed=2).to_parquet(directory / "test.parquet")
    make_unlabelled_reviews(300).to_parquet(directory / "unsupervised.parquet")
    return directory


def pytest_collection_modifyitems(items) -> None:
    """Under pytest-xdist (`-n 2 --dist loadgroup`, pyproject.toml), run the tests that share an
    expensive module- or session-scoped fixture of this suite on one worker, so that it is built
    once: each worker would otherwise build its own (a reproduced tiny project takes 50 s)."""
    for item in items:
        for name in item.fixturenames:
            definitions = item._fixtureinfo.name2fixturedefs.get(name, ())
            shared = [
                definition
                for definition in definitions
                if definition.scope in ("module", "session")
                and definition.baseid.startswith("tests")  # this suite's, not pytest's own
            ]
            if shared:
                scope = item.module.__name__ if shared[-1].scope == "module" else "session"
                item.add_marker(pytest.mark.xdist_group(f"{name}@{scope}"))
                break
