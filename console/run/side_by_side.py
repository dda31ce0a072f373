"""A stage's benchmarks side by side: each benchmark's smoke (or full run) in its own thread against the cell's
one server, so the stage takes as long as its slowest benchmark rather than the sum of all of them.

Why: an eval framework spends most of a short stage starting up (inspect-ai ≈ 10 s, lm-eval ≈ 4 s on a quiet
2-core box) while the server idles; on a GPU box the server batches the benchmarks' requests together. Answers
do not depend on what else is in the batch beyond vLLM's usual batch nondeterminism, which a sequential run has
too. Every item is still committed through the run's one sink (`EventSink.apply` holds a lock).

A stop (Ctrl-C, SIGTERM, SIGHUP: a KeyboardInterrupt in the main thread) calls `on_abort`, which stops the
framework subprocesses, and is raised again: the runner then stops its servers as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
ABORT_JOIN_S = 2.0
"""How long a stop waits for the benchmark threads once their subprocesses are stopped (they are daemons: a
built-in eval still sending requests ends with the process)."""


def side_by_side(jobs: Sequence[Callable[[], T]], on_abort: Callable[[], object] = lambda: None,
                 names: Sequence[str] = ()) -> list[T | Exception]:
    """Run the jobs at once; each one's result, or the exception it raised, in the jobs' order."""
    results: list[T | Exception] = [RuntimeError("did not finish")] * len(jobs)
    if len(jobs) == 1:
        try:
            results[0] = jobs[0]()
        except Exception as exc:  # noqa: BLE001 - the caller decides what a failed job means
            results[0] = exc
        return results

    fatal: list[BaseException] = []

    def work(i: int, job: Callable[[], T]) -> None:
        try:
            results[i] = job()
        except Exception as exc:  # noqa: BLE001
            results[i] = exc
        except BaseException as exc:  # noqa: BLE001 - a stop inside a job stops the stage, as in one thread
            fatal.append(exc)

    threads = [threading.Thread(target=work, args=(i, job), daemon=True,
                                name=f"bench-{names[i] if i < len(names) else i}")
               for i, job in enumerate(jobs)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    except BaseException:
        on_abort()
        for t in threads:
            if t.ident is not None:
                t.join(ABORT_JOIN_S)
        raise
    if fatal:
        on_abort()
        raise fatal[0]
    return results
