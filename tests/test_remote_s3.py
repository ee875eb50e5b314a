"""Artifacts on object storage: dvc push / pull / exp push against a real S3 API.

The test starts moto's S3-compatible server on 127.0.0.1 (the `dvc-s3` plugin, the `s3` extra,
speaks to it exactly as to AWS), pushes a tiny pipeline's data, models and an experiment there,
and a colleague's clone pulls them back: nothing to rerun, the experiment's metrics intact.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.scratch_project import Project

pytestmark = pytest.mark.slow

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def s3_endpoint():
    """moto's S3 server on a free local port, with an empty bucket."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline and server.poll() is None, "moto did not start"
            time.sleep(0.2)
    import boto3

    boto3.client("s3", endpoint_url=endpoint, **_boto_credentials()).create_bucket(Bucket="team")
    yield endpoint
    server.terminate()
    server.wait(timeout=30)


def _boto_credentials() -> dict:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    }


def with_s3(project: Project, endpoint: str) -> Project:
    project.env |= CREDENTIALS
    project.run("dvc", "remote", "add", "--default", "team", "s3://team/imdb-rnn")
    project.run("dvc", "remote", "modify", "team", "endpointurl", endpoint)
    return project


def test_push_pull_and_an_experiment_round_trip_through_s3(
    tmp_path, reproduced_project, s3_endpoint
):
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    project = with_s3(reproduced_project, s3_endpoint)
    project.run("git", "remote", "add", "origin", str(origin))
    project.commit("reference run, S3 remote")
    project.run("dvc", "push")
    project.run("git", "push", "-q", "origin", "HEAD:main")
    project.run("dvc", "exp", "run", "-n", "narrower", "-S", "train.units=3")
    project.run("dvc", "exp", "push", "origin", "narrower")

    import boto3

    stored = boto3.client("s3", endpoint_url=s3_endpoint, **_boto_credentials()).list_objects_v2(
        Bucket="team", Prefix="imdb-rnn/"
    )
    assert stored["KeyCount"] > 10, "data, models and the experiment's outputs are in the bucket"

    colleague_root = tmp_path / "colleague"
    subprocess.run(
        ["git", "clone", "-q", "-b", "main", str(origin), str(colleague_root)], check=True
    )
    colleague = Project(colleague_root)
    colleague.env |= CREDENTIALS
    assert not (colleague.root / "models/model.keras").exists()
    colleague.run("dvc", "pull")
    # up to date: every pulled file hashes as the pushed dvc.lock says
    assert "Data and pipelines are up to date" in colleague.run("dvc", "status")
    assert colleague.repro() == set()
    # The pulled model is the pushed one, and the colleague's tools can use it at once.
    predicted = colleague.run_process("imdb-predict", "--json", "A great movie.")
    assert len(json.loads(predicted.stdout)) == 1

    colleague.run("dvc", "exp", "pull", "origin", "narrower")
    shown = json.loads(colleague.run_process("dvc", "exp", "show", "--json").stdout)
    names = {
        rev["name"]
        for commit in shown
        for experiment in commit.get("experiments") or []
        for rev in experiment["revs"]
    }
    assert "narrower" in names
    colleague.run("dvc", "exp", "apply", "narrower")
    colleague.run("dvc", "checkout")  # the experiment's model, fetched from S3 by exp pull
    assert Path(colleague.root / "models/model.keras").exists()
    assert "Data and pipelines are up to date" in colleague.run("dvc", "status")
