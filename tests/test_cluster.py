"""TF_CONFIG read before TensorFlow, and the bounded wait for the other workers (loopback only)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

import pytest

from imdb_rnn.cluster import Cluster, Worker, claimed_port, read_cluster, wait_for_workers
from imdb_rnn.errors import ClusterError, ParamsError


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tf_config(cluster: dict, task: dict) -> str:
    return json.dumps({"cluster": cluster, "task": task})


TWO_WORKERS = {"worker": ["127.0.0.1:12345", "127.0.0.1:12346"]}


def test_tf_config_names_this_worker_and_the_others():
    cluster = read_cluster(tf_config(TWO_WORKERS, {"type": "worker", "index": 1}))
    assert cluster.me == Worker("worker 2 of 2", "127.0.0.1", 12346)
    assert cluster.others == (Worker("worker 1 of 2", "127.0.0.1", 12345),)


@pytest.mark.parametrize(
    ("tf_config_text", "expected"),
    [
        (None, "train.distribution is multi_worker, but TF_CONFIG is not set; on every worker"),
        ("", "TF_CONFIG is not set"),
        ("{'cluster': {}}", "TF_CONFIG is not JSON"),
        ('["host0:12345"]', "TF_CONFIG needs a 'cluster' and a 'task'"),
        (json.dumps({"cluster": TWO_WORKERS}), "TF_CONFIG needs a 'cluster' and a 'task'"),
        (tf_config(TWO_WORKERS, {"type": "worker", "index": 2}), "is not in its cluster"),
        (tf_config(TWO_WORKERS, {"type": "chief", "index": 0}), "is not in its cluster"),
        (tf_config(TWO_WORKERS, {"type": "worker"}), "is not in its cluster"),
        (
            tf_config({"worker": ["host0:12345", "host1"]}, {"type": "worker", "index": 0}),
            'gives worker 2 of 2 the address "host1", not host:port',
        ),
        (
            tf_config({"worker": ["host0:123456"]}, {"type": "worker", "index": 0}),
            "not host:port with a port from 1 to 65535",
        ),
    ],
)
def test_a_tf_config_tensorflow_cannot_use_is_one_line(tf_config_text, expected):
    with pytest.raises(ParamsError, match=expected) as refused:
        read_cluster(tf_config_text)
    assert "\n" not in str(refused.value)


def test_a_port_in_use_is_named():
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        me = Worker("worker 1 of 2", "127.0.0.1", other.getsockname()[1])
        with pytest.raises(ClusterError, match="is in use by another process"), claimed_port(me):
            pass


def test_a_worker_that_never_answers_is_named_after_the_timeout(caplog):
    missing = Worker("worker 2 of 2", "127.0.0.1", free_port())
    cluster = Cluster(me=Worker("worker 1 of 2", "127.0.0.1", free_port()), others=(missing,))
    started = time.monotonic()
    with caplog.at_level(logging.INFO), pytest.raises(ClusterError) as refused:
        wait_for_workers(cluster, timeout_seconds=1)
    assert 1 <= time.monotonic() - started < 10
    assert str(refused.value).startswith(
        f"worker 2 of 2 (127.0.0.1:{missing.port}) did not answer within"
        " train.peer_timeout_seconds (1 s)"
    )
    assert f"waiting for worker 2 of 2 at 127.0.0.1:{missing.port}" in caplog.text


def test_the_wait_ends_when_the_last_worker_starts_listening():
    late = Worker("worker 2 of 2", "127.0.0.1", free_port())
    cluster = Cluster(me=Worker("worker 1 of 2", "127.0.0.1", free_port()), others=(late,))

    def start_late_worker():
        time.sleep(1)
        with claimed_port(late):
            time.sleep(2)

    starting = threading.Thread(target=start_late_worker)
    starting.start()
    started = time.monotonic()
    wait_for_workers(cluster, timeout_seconds=30)
    assert 1 <= time.monotonic() - started < 3
    starting.join()


def test_two_workers_that_wait_for_each_other_both_go_on():
    """Each worker listens while it waits: workers waiting for TensorFlow's ports, which open
    only after the wait, would wait for each other for ever."""
    ports = [free_port(), free_port()]
    config = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    clusters = [read_cluster(tf_config(config, {"type": "worker", "index": i})) for i in (0, 1)]
    errors = []

    def wait(cluster):
        try:
            with claimed_port(cluster.me):
                wait_for_workers(cluster, timeout_seconds=10)
                time.sleep(1)  # the other may still be probing
        except ClusterError as error:
            errors.append(error)

    waits = [threading.Thread(target=wait, args=(cluster,)) for cluster in clusters]
    for each in waits:
        each.start()
    for each in waits:
        each.join(timeout=20)
    assert not errors
