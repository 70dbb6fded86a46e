"""Large CPU work in another process: a large MISP submission is parsed, validated and
drafted there (``prepared_submission``), a large event released (``hub.sharing.rendered``
through ``run``).

That work is pure Python CPU: about a second for four 3 MB events, done in a request thread
it holds the GIL against every other request of the same API process, whose small answers
then wait in turns of the interpreter's switch interval (L2 measured p99 0.4–1.9 s on one
worker). In a process of its own it competes for a core only. The answer, a ``Prepared``
with its drafts, comes back pickled (~25 ms to read for 3 MB: one pause instead of a second
of contention). Bodies below ``HUB_INGEST_OFFLOAD_BYTES`` are prepared in the request's
thread, as is everything when that setting is 0; a pool that broke (its process died) is
replaced and the body prepared in the thread, so the offload can slow a submission but
never lose or refuse one.

The pool is ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` start method (an
API process has threads: forking one is unsafe), its processes at a lower CPU priority
(``nice`` 10) than the API's, started on the first large body and closed with the app
(``close``).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import tlp
from hub.intel.service import Prepared, draft_identity, prepare_events
from hub.intel.submission import parse_misp_payload

#: A pool process is replaced after this many submissions (the memory of a large parse is
#: kept by the allocator otherwise).
_TASKS_PER_PROCESS = 50

#: The pool's processes yield the cores to the API process: its small answers come first.
_NICENESS = 10

T = TypeVar("T")

_pool: ProcessPoolExecutor | None = None
_guard = threading.Lock()


def prepared_submission(
    body: bytes,
    *,
    default_distribution: int,
    orgc: dict[str, Any] | None,
    policy: tlp.Policy,
    sqlite: bool,
    offload_bytes: int,
    processes: int = 1,
) -> Prepared:
    """The MISP events of a submission's body parsed and normalised (``prepare_events``)
    and, when ``orgc`` (the submitter, read before the unit) is given, drafted as new events
    of it (``draft_new_events``). Raises what parsing raises (a 4xx naming the field)."""
    args = (body, default_distribution, orgc, policy, sqlite)
    if offload_bytes and len(body) >= offload_bytes:
        return run(_prepare, *args, processes=processes)
    return _prepare(*args)


def run(function: Callable[..., T], *args: Any, processes: int = 1) -> T:
    """``function(*args)`` in the pool (a module-level function; arguments and result are
    pickled), or in this thread when the pool broke (it is replaced for the next call)."""
    pool = _the_pool(processes)
    try:
        return pool.submit(function, *args).result()
    except BrokenProcessPool:
        _drop(pool)
    return function(*args)


def _prepare(
    body: bytes,
    default_distribution: int,
    orgc: dict[str, Any] | None,
    policy: tlp.Policy,
    sqlite: bool,
) -> Prepared:
    prepared = prepare_events(parse_misp_payload(body), default_distribution=default_distribution)
    if orgc is not None:
        draft_identity(prepared, orgc=orgc, policy=policy, sqlite=sqlite)
    return prepared


def _the_pool(processes: int) -> ProcessPoolExecutor:
    global _pool
    with _guard:
        if _pool is None:
            _pool = ProcessPoolExecutor(
                max_workers=processes,
                mp_context=multiprocessing.get_context("spawn"),
                max_tasks_per_child=_TASKS_PER_PROCESS,
                initializer=os.nice,
                initargs=(_NICENESS,),
            )
        return _pool


def _drop(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _guard:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def close() -> None:
    """Stop the pool (the app's shutdown); a later large body starts a new one."""
    global _pool
    with _guard:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
