"""IMDB sentiment with recurrent networks: the library behind the DVC stages in ``stages/``.

tests/test_dvc_yaml.py states, for each module, which stages an edit to it reruns.
"""

# Modules that cannot change any output: error types and their one-line messages, logging and
# progress, the validation of values DVC already tracks as params, the description of the
# machine, and the multi-worker cluster's wait for its workers. dvc.yaml lists them as no stage's
# dependency (tests/test_dvc_yaml.py), and a saved training state survives an edit to them
# (imdb_rnn.resume).
CANNOT_CHANGE_RESULTS = frozenset({"errors", "cli", "params", "environment", "cluster"})
