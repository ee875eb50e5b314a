"""What every command-line entry point shares: logging, progress, timing and one-line errors.

Nothing here can change an output (dvc.yaml does not list it as a dependency of any stage): it
decides how a run reports itself and how it ends, never what it computes.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import importlib.util
import json
import logging
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from imdb_rnn.errors import PipelineError

log = logging.getLogger("imdb_rnn")

# If set, each command appends one JSON line about its run (name, wall time, peak memory and the
# figures its main() returns) to this file: what the benchmark reads instead of parsing logs.
RECORD_ENV = "IMDB_RNN_RECORD"

# Set to 1 to see TensorFlow's C++ start-up log again (quiet_tensorflow hides it).
VERBOSE_ENV = "IMDB_RNN_VERBOSE"
# What the C++ libraries log before anything sets up their log, whatever TF_CPP_MIN_LOG_LEVEL says:
# abseil's notice, then lines such as "I0000 00:00:1796156931.083690   8899 cudart_stub.cc:31] ...".
_EARLY_CXX_LOG = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"
    r"|[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.-]+:\d+\] "
)

# What a command whose reader closed the pipe exits with: the status of one that SIGPIPE killed.
SIGPIPE_STATUS = 128 + signal.SIGPIPE

# The file may be the user's own (imdb-predict --file), not only one of the project's.
_PERMISSIONS = (
    "check the permissions of that file and its folders (and, for a stage, of DVC's cache"
    " .dvc/cache)"
)
# Errors of the machine rather than of the code: reported in one line, with what to do.
_ENVIRONMENT_ERRORS = {
    errno.ENOSPC: "free some disk space and run it again",
    errno.EDQUOT: "free some of your disk quota and run it again",
    errno.EROFS: "the file system is read-only; run from a writable copy of the project",
    errno.EACCES: _PERMISSIONS,
    errno.EPERM: _PERMISSIONS,
}


# What the kernel sends a stage when its parent dies: a signal of its own rather than SIGTERM,
# because the parent's process id can outlast it (a multithreaded dvc ends thread by thread, and the
# kernel signals as soon as the thread that started the stage is gone), so a SIGTERM from a user
# and the death of dvc could not otherwise be told apart. Its default action ends the process.
PARENT_ENDED_SIGNAL = getattr(signal, "SIGRTMIN", signal.SIGTERM)

# Set by skip_finalization_on_failure.
_skip_finalization = False
# The parent process when die_with_parent armed the parent-death signal.
_parent_at_start: int | None = None


class Terminated(BaseException):
    """SIGTERM arrived, or the dvc process that started this stage died: stop, but unwind, so
    that temporary files are removed and no half-written output is left."""

    def __init__(self, parent_ended: bool):
        super().__init__(parent_ended)
        self.parent_ended = parent_ended  # or SIGTERM came from a user or a service manager


def run(
    main: Callable[[], Mapping | None],
    name: str,
    log_level: str = "INFO",
    dies_with_parent: bool = True,
) -> None:
    """Run ``main``; a PipelineError becomes one line on stderr and exit status 1.

    Other exceptions are bugs, so they keep their traceback. ``main`` may return figures worth
    recording (see RECORD_ENV). ``dies_with_parent`` is for the stages, which dvc runs: a command
    a user runs (imdb-recipe, imdb-plots, imdb-predict) passes False, so that `nohup` keeps it
    alive after its shell exits.
    """
    logging.basicConfig(
        level=log_level, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    # gensim logs several lines per training epoch at INFO; the stages log their own progress.
    logging.getLogger("gensim").setLevel(logging.WARNING)
    # TensorFlow logs, at INFO and with its traceback, a Ctrl-C or SIGTERM that lands in a
    # replica's step, before the one line below reports it; and its collectives, step by step.
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    stop_on_sigterm(dies_with_parent)
    record = os.environ.get(RECORD_ENV)
    anonymous = AnonymousMemoryPeak() if record else None
    started = time.perf_counter()
    try:
        figures = main() or {}
        sys.stdout.flush()  # a closed pipe shows up here, not in the interpreter's own last flush
    except BrokenPipeError:
        reader_went_away()
    except PipelineError as error:
        fail(name, str(error))
    except MemoryError as error:
        fail(
            name,
            f"out of memory ({error}); use less data (ingest.max_reviews_per_split) or smaller"
            " sizes in params.yaml",
        )
    except OSError as error:
        if error.errno not in _ENVIRONMENT_ERRORS:
            raise
        where = f" ({error.filename})" if error.filename else ""
        fail(name, f"{error.strerror}{where}; {_ENVIRONMENT_ERRORS[error.errno]}")
    except Terminated as stop:
        why = "because its parent process ended" if stop.parent_ended else "by SIGTERM"
        fail(name, f"stopped {why}; no output was written", 143)
    except KeyboardInterrupt:
        fail(name, "interrupted; no output was written (a training resumes where it stopped)", 130)
    seconds = time.perf_counter() - started
    peak = peak_memory_mib()
    log.info("%s finished in %.1f s, peak memory %.0f MiB", name, seconds, peak)
    if record:
        line = {"command": name, "seconds": round(seconds, 2), "peak_memory_mib": round(peak)}
        if anonymous and anonymous.sample() is not None:
            line["peak_anonymous_memory_mib"] = round(anonymous.peak_mib)
        with Path(record).open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(line | dict(figures)) + "\n")


def run_dvc(command: list[str]) -> subprocess.CompletedProcess:
    """Run a dvc command line, its output going to this terminal; a missing dvc is one line."""
    try:
        return subprocess.run(command)
    except FileNotFoundError:
        raise PipelineError(
            "dvc is not on PATH; activate the project's virtual environment"
        ) from None


def fail(name: str, message: str, status: int = 1):
    message = " ".join(message.split())  # one line, even if a library's message had several
    print(f"{name}: error: {message}", file=sys.stderr)
    if _skip_finalization:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


def skip_finalization_on_failure() -> None:
    """Let a failure end the process as soon as its line is printed, without the interpreter's
    finalization: once TensorFlow's multi-worker runtime runs, a signal that interrupts a step
    leaves threads that abort it ("terminate called after throwing ... FATAL: exception not
    rethrown", status -6 instead of 143). The outputs are complete or removed by then (every
    writer is atomic), and the kernel releases the locks."""
    global _skip_finalization
    _skip_finalization = True


def reader_went_away():
    """The reader of the output closed it (`imdb-predict --file big.txt | head -1`): it has what
    it wanted, so stop without a word, with the status 141 (128 + SIGPIPE) that `cat` or `yes`
    end with there, which a shell with `set -o pipefail` reads as output cut short."""
    # What is still buffered for stdout would fail again when the interpreter flushes it at exit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    sys.exit(SIGPIPE_STATUS)


def prefer_arrow_pool_that_returns_memory() -> None:
    """Have pyarrow allocate from jemalloc, on Linux, unless ARROW_DEFAULT_MEMORY_POOL says
    otherwise; read when pyarrow first allocates, hence set before any import of it.

    The stages stream files a chunk at a time. With pyarrow's default pool (mimalloc), as with
    the system's malloc, the fragments of freed chunks stayed in the process: ingest's peak
    anonymous memory grew by 22 to 62 MiB from 20,000 to 80,000 reviews of 2 kB, and by 35 MiB
    between identical runs. jemalloc, which pyarrow sets to return freed pages after a second,
    measured the same peak to 5 MiB up to 160,000 reviews. Allocation only: no byte of output
    changes. Linux only, where that was measured and pyarrow's wheels include jemalloc (a pyarrow
    without it would warn and keep its default).
    """
    if sys.platform.startswith("linux"):
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up log off stderr, unless IMDB_RNN_VERBOSE=1.

    Without a GPU, importing TensorFlow prints eight lines, one of them "E0000 ... failed call to
    cuInit: ... UNKNOWN ERROR (303)", which users read as a failure. TF_CPP_MIN_LOG_LEVEL=3 (read
    when TensorFlow loads, hence before any import of it) silences TensorFlow's own C++ log, fatal
    errors apart; the lines the C++ libraries write before their log is set up ignore it, so
    stderr is filtered of them while TensorFlow is imported. Messages only: no number changes. A
    TF_CPP_MIN_LOG_LEVEL the user set to another level is kept, and then nothing is filtered (3
    is this function's own, which a restarted process inherits).
    """
    if os.environ.get(VERBOSE_ENV) == "1" or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") != "3":
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    hooked = any(isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path)
    if "tensorflow" not in sys.modules and not hooked:
        sys.meta_path.insert(0, _QuietTensorFlowImport())


class _QuietTensorFlowImport:
    """An import hook: TensorFlow's first import runs with stderr filtered of early C++ log lines.

    Hooked here rather than around each `import tensorflow`, because keras, the stages and the
    library import it in a dozen places, each only once it is needed."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once, and not for the lookup below
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            run_module = spec.loader.exec_module

            def exec_module(module):
                with _early_cxx_log_removed():
                    run_module(module)

            spec.loader.exec_module = exec_module
        return spec


@contextlib.contextmanager
def _early_cxx_log_removed() -> Iterator[None]:
    """Everything written to file descriptor 2 in the block (C++ libraries write there, not to
    sys.stderr) goes to a temporary file; afterwards the lines that are not early C++ log lines
    are written to stderr, in their order."""
    sys.stderr.flush()
    stderr = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(stderr, 2)
            os.close(stderr)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not _EARLY_CXX_LOG.match(line)))
            sys.stderr.flush()


def peak_memory_mib() -> float:
    # ru_maxrss is the process's peak resident memory, in KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class AnonymousMemoryPeak:
    """The largest anonymous resident memory (Linux's RssAnon) seen by a thread that samples it
    every ``interval`` seconds.

    Peak RSS also counts the pages of memory-mapped files, which the stages use so that no large
    array is ever in memory at once: those pages belong to the page cache, and the kernel drops
    them (after writing them back) under memory pressure. Anonymous memory is what the process
    itself needs, so this is the figure that shows whether memory grows with the corpus. Sampled,
    so a spike shorter than ``interval`` can be missed. None where /proc is not available.
    """

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak_mib = _anonymous_memory_mib()
        if self.peak_mib is not None:
            threading.Thread(target=self._keep_sampling, daemon=True, name="memory").start()

    def sample(self) -> float | None:
        current = _anonymous_memory_mib()
        if current is not None and (self.peak_mib is None or current > self.peak_mib):
            self.peak_mib = current
        return self.peak_mib

    def _keep_sampling(self) -> None:
        while True:
            time.sleep(self.interval)
            self.sample()


def _anonymous_memory_mib() -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 2**10  # the value is in kB
    except OSError:
        pass
    return None


def stop_on_sigterm(dies_with_parent: bool) -> None:
    """Unwind on SIGTERM; with ``dies_with_parent``, also ask Linux to signal this process when its
    parent dies, and unwind then too.

    `dvc repro` runs each stage as a child; if only the dvc process is killed, an orphaned stage
    would go on writing its outputs while the next `dvc repro` starts a second copy beside it.
    """
    parent = _parent_at_start or os.getppid()

    def terminate(signum, frame):
        raise Terminated(parent_ended=signum == PARENT_ENDED_SIGNAL)

    signal.signal(signal.SIGTERM, terminate)
    if dies_with_parent:
        signal.signal(PARENT_ENDED_SIGNAL, terminate)
        set_parent_death_signal(PARENT_ENDED_SIGNAL)
        # An orphan is adopted by init or a subreaper: the parent died before anything was armed.
        if os.getppid() != parent:
            raise Terminated(parent_ended=True)


def die_with_parent() -> None:
    """Ask the kernel to end this process when its parent (dvc) dies, from the first moment.

    Called by stages/__init__.py before the seconds of importing NumPy and TensorFlow: a dvc killed
    meanwhile must not leave an orphan that goes on to write outputs. Until cli.run installs its
    handler, the signal's default action ends the process, which has written nothing yet."""
    global _parent_at_start
    _parent_at_start = os.getppid()
    set_parent_death_signal(PARENT_ENDED_SIGNAL)


def set_parent_death_signal(signum: int) -> None:
    """The signal Linux sends this process when its parent dies (elsewhere: nothing happens)."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signum, 0, 0, 0)


class ProgressLog:
    """One log line per step of a long task, with an estimate of the time left; a log gets lines
    it can keep, not a progress bar's carriage returns."""

    def __init__(self, what: str, total: int, every_seconds: float = 10.0):
        self.what, self.total, self.every_seconds = what, total, every_seconds
        self.started = self.last = time.perf_counter()

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last < self.every_seconds and done < self.total:
            return
        self.last = now
        elapsed = now - self.started
        left = elapsed / done * (self.total - done) if done else float("nan")
        log.info(
            "%s: %d of %d (%.0f%%) in %.0f s, about %.0f s left",
            self.what,
            done,
            self.total,
            100 * done / self.total if self.total else 100,
            elapsed,
            left,
        )
