"""The real driver: runs a sans-I/O core on asyncio over the mutual-TLS transport.

It is deliberately thin (STYLE §7): decode inbound envelopes into core messages, call
``handle``/``tick`` with monotonic ``now``, execute the effects in order (seal and send,
or notify), and sleep until ``next_deadline()`` or the next inbound message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

from hyperion import PROTOCOL_VERSION
from hyperion.core import Core, Effect, Notify, Send
from hyperion.identity.keys import NodeKey
from hyperion.net import codec
from hyperion.net.envelope import NONCE_BYTES, Opened, seal
from hyperion.net.loop import pump
from hyperion.net.transport import Counters, Transport

INBOUND_MAX = 4096  # decoded messages waiting for the core; a burst of a few rounds
log = logging.getLogger(__name__)


class CoreDriver:
    """Owns one core's event loop on a real node."""

    def __init__(
        self,
        core: Core,
        key: NodeKey,
        transport: Transport,
        counters: Counters,
        on_notify: Callable[[object], None] | None = None,
        version: int = PROTOCOL_VERSION,
        routes: dict[type, Callable[[object, str], None]] | None = None,
    ) -> None:
        """``version``: the protocol version this node speaks (see ``codec``).
        ``routes``: decoded messages of these types go to their handler with the
        envelope's signer instead of to the core (the Raft groups' payloads); the
        handler must check the signer itself."""
        self.core = core
        self.version = version
        self.key = key
        self.transport = transport
        self.counters = counters
        self.on_notify = on_notify
        self._inbound: asyncio.Queue[object] = asyncio.Queue(INBOUND_MAX)
        self.routes = dict(routes or {})

    def deliver(self, opened: Opened) -> None:
        """Called by the transport for every verified envelope."""
        try:
            msg = codec.decode(opened.body, self.version)
        except codec.WireError:
            self.counters.inc("rejected_malformed_body")
            return
        route = self.routes.get(type(msg))
        if route is not None:
            route(msg, opened.sender)
            return
        if getattr(msg, "src", None) != opened.sender:
            self.counters.inc("rejected_src_mismatch")
            return
        try:
            self._inbound.put_nowait(msg)
        except asyncio.QueueFull:
            self.counters.inc("dropped_inbound_full")

    def execute(self, effects: list[Effect]) -> None:
        for eff in effects:
            if isinstance(eff, Send):
                body = codec.encode(eff.msg, self.version)
                env = seal(
                    self.key,
                    body,
                    now_ms=int(time.time() * 1000),
                    nonce=os.urandom(NONCE_BYTES),
                    version=self.version,
                )
                if not eff.addr:
                    self.counters.inc("dropped_no_address")
                    continue
                self.transport.send(eff.addr, env)
            elif isinstance(eff, Notify) and self.on_notify is not None:
                self.on_notify(eff.event)

    async def run(self) -> None:
        core = self.core

        def failed() -> None:  # a core bug must not kill the node silently
            log.exception("core raised")
            self.counters.inc("core_errors")

        await pump(
            self._inbound,
            core.next_deadline,
            lambda msg, now: self.execute(core.handle(msg, now)),
            lambda now: self.execute(core.tick(now)),
            failed,
        )
