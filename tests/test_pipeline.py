"""End to end: the real `dvc` CLI runs the pipeline in a scratch git repository on tiny data.

This proves what users rely on: `dvc repro` runs every stage once, then reruns exactly the stages
downstream of a changed parameter, and nothing when nothing changed; `dvc plots show` finds the
plots; `dvc exp run -S` reaches the stages; `imdb-predict` scores reviews with what was trained.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
import yaml

from tests.scratch_project import Project, create_tiny_project

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path, tiny_dataset) -> Project:
    return create_tiny_project(tmp_path / "project", tiny_dataset)


def test_repro_reruns_exactly_the_stages_downstream_of_a_change(reproduced_project):
    """The first repro (in the fixture) ran every stage once; this one must run nothing."""
    project = reproduced_project
    assert project.repro() == set(), "a second repro with nothing changed must run nothing"

    for model in ("rnn", "linear", "combined"):  # one schema: the columns line up
        metrics = json.loads((project.root / f"reports/metrics/{model}.json").read_text())
        assert set(metrics) == {"validation", "test"}
        assert set(metrics["test"]) == {
            "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"
        }  # fmt: skip
    for plot in ("confusion_matrix.csv", "roc.csv", "precision_recall.csv"):
        assert (project.root / "reports/plots" / plot).stat().st_size > 0
    train_summary = json.loads((project.root / "reports/train/metrics.json").read_text())
    assert set(train_summary["saved_model"]) == {"epoch", "val_loss", "val_accuracy"}
    history = (project.root / "reports/train/plots/metrics/eval/accuracy.tsv").read_text()
    assert history.splitlines()[0] == "step\taccuracy" and len(history.splitlines()) == 3
    environment = json.loads((project.root / "reports/environment.json").read_text())
    assert environment["versions"]["tensorflow"] and environment["cpu"]["logical_cores"]

    # `dvc exp run -S` in the workspace: the override reaches the stage; only its downstream runs
    project.commit("baseline")
    output = project.run("dvc", "exp", "run", "-n", "narrower", "-S", "train.units=3")
    assert set(re.findall(r"Running stage '(\w+)'", output)) == {"train", "evaluate", "combine"}
    assert experiments(project)["narrower"]["params"]["train"]["units"] == 3

    project.set_param("evaluate.threshold", 0.6)  # every model is scored at the same threshold
    assert project.repro() == {"evaluate", "linear", "combine"}
    assert json.loads((project.root / "models/predictor.json").read_text())["threshold"] == 0.6

    shown = project.run("dvc", "plots", "show", "--json")
    assert "Loss per epoch" in shown and "Confusion matrix (test, combined model)" in shown

    predicted = project.run_process(
        "imdb-predict", "--json", "A great movie.", "Awful film.", "Fun!"
    )
    assert len(json.loads(predicted.stdout)) == 3  # stdout is pure JSON; TensorFlow logs to stderr

    # Which stages read each section: `dvc status` names the stages whose own inputs changed,
    # without running them (the runs above show DVC carrying a change downstream).
    reproduced = (project.root / "params.yaml").read_text()
    for key, value, readers in (
        ("ingest.validation_fraction", 0.2, {"ingest"}),
        ("tokenize.vocab_size", 12, {"tokenize"}),
        ("embed.epochs", 2, {"embed"}),
        ("linear.ngram_max", 1, {"linear"}),
        ("combine.method", "average", {"combine"}),
    ):
        project.set_param(key, value)
        assert project.stages_with_changed_inputs() == readers, key
        (project.root / "params.yaml").write_text(reproduced)

    # A new sequence length rewrites the id matrices but not the vocabulary or the token corpus,
    # so DVC sees embed's inputs unchanged and will skip it (combine records the encoding).
    project.set_param("tokenize.max_length", 12)
    assert project.repro("tokenize") == {"tokenize"}
    assert project.stages_with_changed_inputs() == {"train", "evaluate", "combine"}

    # A misspelled key added to params.yaml: DVC tracks whole sections, so the next repro sees it
    # and the stage refuses it, where tracking single keys would have said "up to date".
    project.set_param("train.unitss", 16)
    assert "train" in project.run("dvc", "status")
    failed = subprocess.run(
        ["dvc", "repro"], cwd=project.root, env=project.env, capture_output=True, text=True
    )
    assert failed.returncode != 0
    assert "unknown key train.unitss (did you mean units?)" in failed.stdout + failed.stderr


def test_the_unlabelled_reviews_on_or_off_rerun_ingest_alone(project):
    """The labelled splits do not depend on the unlabelled reviews, byte for byte, so the stages
    that read them see their inputs unchanged."""
    assert project.repro("tokenize") == {"ingest", "tokenize"}
    project.set_param("ingest.unlabelled", False)
    assert project.repro("tokenize") == {"ingest"}
    assert project.repro("tokenize") == set()


def experiments(project: Project) -> dict[str, dict]:
    """Each experiment's params.yaml values and metrics files, by name, from `dvc exp show`."""
    shown = json.loads(project.run_process("dvc", "exp", "show", "--json").stdout)
    found = {}
    for commit in shown:
        for experiment in commit.get("experiments") or []:
            for rev in experiment["revs"]:
                data = rev.get("data") or {}
                found[rev["name"]] = {
                    "params": data.get("params", {}).get("params.yaml", {}).get("data", {}),
                    "metrics": {
                        path: entry.get("data", {})
                        for path, entry in (data.get("metrics") or {}).items()
                    },
                }
    return found


def test_a_recipe_runs_unchanged_as_a_queued_experiment(project, tiny_dataset):
    """imdb-recipe's plain `dvc exp run --queue -S ...`, nested keys included, run by a queue
    worker in a temporary copy of the repository; only the data and epochs are shrunk."""
    project.run(
        "imdb-recipe", "run", "--queue", "seed-001-lstm",
        "--set", f"ingest.source={tiny_dataset}", "--set", "train.epochs=1", "--suffix=-tiny",
    )  # fmt: skip
    project.run("dvc", "queue", "start")
    deadline = time.monotonic() + 300
    while "seed-001-lstm-tiny" not in experiments(project) or re.search(
        r"Queued|Running", project.run("dvc", "queue", "status")
    ):
        assert time.monotonic() < deadline, project.run("dvc", "queue", "status")
        time.sleep(2)
    assert "Success" in project.run("dvc", "queue", "status")

    recipe = yaml.safe_load((project.root / "recipes/seed-001-lstm.yaml").read_text())["set"]
    ran = experiments(project)["seed-001-lstm-tiny"]
    assert ran["params"]["train"]["model"] == recipe["train.model"] == "lstm"
    assert ran["params"]["train"]["units"] == recipe["train.units"]
    assert (
        ran["params"]["train"]["early_stopping"]["patience"]
        == (recipe["train.early_stopping.patience"])
    )
    assert ran["params"]["train"]["epochs"] == 1
    assert 0 <= ran["metrics"]["reports/metrics/combined.json"]["test"]["accuracy"] <= 1
    assert project.run("git", "status", "--porcelain") == "", "the workspace is left alone"
