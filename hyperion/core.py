"""The protocol-core contract (DESIGN §3) and the closed set of effects cores emit.

Every distributed protocol in Hyperion is a plain state machine:

* ``handle(msg, now) -> list[Effect]`` — one inbound message, already authenticated
  by the driver (the envelope's signer is ``msg.src``);
* ``tick(now) -> list[Effect]`` — timers that are due at ``now``;
* ``next_deadline() -> float | None`` — when ``tick`` should run next.

``now`` is monotonic seconds supplied by the driver; randomness is an injected
``random.Random``. Cores import nothing from asyncio, socket, ssl, time or random
(``tests/test_sans_io.py`` checks the imports). Drivers — the deterministic simulator
and the asyncio + gRPC node — execute effects in list order: anything durable comes
before the sends that depend on it.

This module owns only the contract; it may not import from any other layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeAlias


@dataclass(frozen=True, slots=True)
class Send:
    """Deliver ``msg`` to the node ``dest`` (node id, or "" when only ``addr`` is known)."""

    dest: str
    addr: str
    msg: object


@dataclass(frozen=True, slots=True)
class Notify:
    """Tell the layer above about something that happened (e.g. a member changed state)."""

    event: object


Effect: TypeAlias = Send | Notify


class Core(Protocol):
    """What every sans-I/O protocol core looks like to a driver."""

    def handle(self, msg: object, now: float) -> list[Effect]: ...

    def tick(self, now: float) -> list[Effect]: ...

    def next_deadline(self) -> float | None: ...
