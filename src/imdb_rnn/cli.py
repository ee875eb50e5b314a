"""What every command-line entry point shares: logging, timing, and one-line errors."""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Callable

from imdb_rnn.errors import PipelineError

log = logging.getLogger("imdb_rnn")


def run(main: Callable[[], None], name: str, log_level: str = "INFO") -> None:
    """Run ``main``; a PipelineError becomes one line on stderr and exit status 1.

    Other exceptions are bugs, so they keep their traceback.
    """
    logging.basicConfig(
        level=log_level, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    # gensim logs several lines per training epoch at INFO; the stages log their own summaries.
    logging.getLogger("gensim").setLevel(logging.WARNING)
    started = time.perf_counter()
    try:
        main()
    except PipelineError as error:
        message = " ".join(str(error).split())  # one line, even if a library's message had several
        print(f"{name}: error: {message}", file=sys.stderr)
        sys.exit(1)
    # ru_maxrss is the process's peak resident memory, in KiB on Linux (bytes on macOS).
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mib = peak_kib / 2**20 if sys.platform == "darwin" else peak_kib / 2**10
    log.info(
        "%s finished in %.1f s, peak memory %.0f MiB", name, time.perf_counter() - started, peak_mib
    )
