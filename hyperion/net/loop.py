"""The asyncio event loop of a sans-I/O core (DESIGN §3), shared by the mesh driver
(``hyperion.net.driver``) and the Raft groups' driver (``hyperion.workplane.raft_driver``):
wait for the next inbound message or the core's next deadline, whichever comes first,
hand the message to the core, tick it when due. Owns only that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TypeVar, cast

M = TypeVar("M")


async def pump(
    inbound: asyncio.Queue[M],
    next_deadline: Callable[[], float | None],
    handle: Callable[[M, float], None],
    tick: Callable[[float], None],
    failed: Callable[[], None],
) -> None:
    """Run until cancelled: ``handle`` each message of ``inbound`` as it comes, and
    ``tick`` whenever ``next_deadline()`` has passed. An exception in either goes to
    ``failed`` (called inside the ``except``, so it may log the traceback) and the loop
    goes on."""
    while True:
        deadline = next_deadline()
        got = False
        msg: M | None = None
        if inbound.empty():
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            with contextlib.suppress(TimeoutError):
                # asyncio.timeout, not wait_for: on Python 3.11, wait_for returns the
                # message when it and a cancellation arrive together, swallowing the
                # cancellation, and this loop (so the node's shutdown) never ends
                async with asyncio.timeout(timeout):
                    msg, got = await inbound.get(), True
        else:
            msg, got = inbound.get_nowait(), True
        now = time.monotonic()
        try:
            if got:
                handle(cast(M, msg), now)
            deadline = next_deadline()
            if deadline is not None and deadline <= now:
                tick(now)
        except Exception:
            failed()
