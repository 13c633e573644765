"""Work on many attachments in parallel threads, in constant memory: only a
few items are taken ahead of the threads, however long the listing."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

AHEAD = 2  # items taken per thread: one in work, one waiting


def parallel(function: Callable[[T], R], items: Iterable[T], jobs: int,
             ordered: bool = False) -> Iterator[R]:
    """``function(item)`` for each item on `jobs` threads; the results as
    they come (in the items' order if `ordered`).  An exception of
    `function` is raised here: it should return failures, not raise them."""
    if jobs <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(jobs) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= AHEAD * jobs:
                if ordered:
                    yield pending.popleft().result()
                else:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        pending.remove(future)
                        yield future.result()
        while pending:
            yield pending.popleft().result()
