"""The exceptions a stage turns into a one-line message and a non-zero exit.

Anything else that escapes a stage is a bug and keeps its traceback.
"""


class PipelineError(Exception):
    """A problem the user can fix: the message names it and says how."""


class ParamsError(PipelineError):
    """A section of params.yaml is missing, misspelled, mistyped or out of range."""


class DataError(PipelineError):
    """Input data is malformed: missing columns, bad labels, empty splits."""


class SourceUnavailableError(PipelineError):
    """A dataset or vector source cannot be reached (no network, no local copy)."""


class TrainingDivergedError(PipelineError):
    """The training loss became NaN or infinite: the model is useless, so nothing is saved."""


class ClusterError(PipelineError):
    """The workers of a multi-worker training cannot form their cluster: a port in use, a worker
    that does not answer."""
