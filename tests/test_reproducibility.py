"""What users rely on across runs, branches and machines, checked with the real git and dvc CLIs.

* Two clean `dvc repro` runs in two clones give byte-identical artifacts (every content hash in
  dvc.lock, the trained model included) and identical metrics.
* `dvc metrics diff` and `dvc params diff` between two branches report what changed.
* `dvc push` to a remote, then `git clone && dvc pull` elsewhere, leaves nothing to rerun: tested
  against an S3 server in test_remote_s3.py.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.scratch_project import ALL_STAGES, Project

pytestmark = pytest.mark.slow

METRICS_FILES = (
    "reports/metrics/rnn.json",
    "reports/metrics/linear.json",
    "reports/metrics/combined.json",
    "reports/train/metrics.json",
)


def output_hashes(project: Project) -> dict[str, str]:
    """Every stage output's content hash, as recorded in dvc.lock."""
    lock = yaml.safe_load((project.root / "dvc.lock").read_text())
    return {
        out["path"]: out["md5"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
    }


def clone(project: Project, destination) -> Project:
    project.run("git", "clone", "-q", str(project.root), str(destination))
    return Project(destination)


# The seed recipes' path: full-length rows in plain random order (no bucketing), padding read
# as input, a random embedding instead of word2vec, an LSTM instead of the default GRU.
RECIPE_LIKE = {
    "tokenize.padding": "pre",
    "embed.method": "random",
    "train.model": "lstm",
    "train.mask_padding": False,
    "train.bucket_by_length": False,
}


def assert_identical_runs(first: Project, second: Project) -> None:
    hashes = output_hashes(first)
    for artifact in (
        "data/raw/train.parquet",
        "data/tokenized/train_ids.npy",
        "data/tokenized/vocabulary.json",
        "data/embedding/matrix.npy",
        "models/model.keras",
    ):
        assert artifact in hashes, f"{artifact} is not a stage output any more"
    assert output_hashes(second) == hashes
    for metrics in METRICS_FILES:
        assert (second.root / metrics).read_text() == (first.root / metrics).read_text()


def test_two_clean_runs_in_two_clones_give_identical_hashes_and_metrics(
    reproduced_project, tmp_path
):
    first = reproduced_project  # a clean run, in the fixture, with a random hash seed
    # A clone of the commit before that run, with its own empty DVC cache: another clean run.
    second = clone(first, tmp_path / "second")
    # Different hash seeds, as two shells would have: Python's str hashing (set and dict order)
    # must not leak into any output.
    first.env["PYTHONHASHSEED"], second.env["PYTHONHASHSEED"] = "1", "2"
    assert second.repro() == ALL_STAGES
    assert_identical_runs(first, second)

    for project in (first, second):
        for key, value in RECIPE_LIKE.items():
            project.set_param(key, value)
        assert project.repro() == {"tokenize", "embed", "train", "evaluate", "combine"}
    assert_identical_runs(first, second)


def test_metrics_and_params_diff_between_branches(reproduced_project):
    project = reproduced_project
    project.commit("reference run")
    reference = project.run("git", "rev-parse", "--abbrev-ref", "HEAD").strip()

    project.run("git", "checkout", "-qb", "wider")
    project.set_param("train.units", 6)
    assert project.repro() == {"train", "evaluate", "combine"}
    project.commit("wider recurrent layer")

    params = json.loads(project.run_process("dvc", "params", "diff", reference, "--json").stdout)
    assert params["params.yaml"] == {"train.units": {"old": 4, "new": 6, "diff": 2}}
    metrics = json.loads(project.run_process("dvc", "metrics", "diff", reference, "--json").stdout)
    log_loss = metrics["reports/metrics/rnn.json"]["test.log_loss"]
    assert log_loss["old"] != log_loss["new"] and log_loss["diff"] != 0
    assert "reports/metrics/linear.json" not in metrics, "the linear member ignores train params"


# `dvc push`, then `git clone && dvc pull` elsewhere: test_remote_s3.py, against a real S3 API.
