"""The worker-thread hop of the device-protocol routes.

Every device request of a round does its database work in one blocking call, run off the event
loop. ``starlette.concurrency.run_in_threadpool`` (anyio) costs the server about 2.5 times the
CPU of a plain ``ThreadPoolExecutor`` hand-off per call (cancel scopes, a capacity limiter, a
queue of its own; measured 86-115 us against 37 us per call on the demo machine), and these
routes make one call per request, tens of thousands per round. The request's context
variables (the request id of its log lines) go along, as with anyio.

A request holds a database connection only inside its one call, so the pool's size bounds
concurrency, not correctness: no request waits for a worker while holding a connection.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

WORKERS = 32
_executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="lerna-device")


async def run_sync(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` on a worker thread, in a copy of the caller's context."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_executor, call)
