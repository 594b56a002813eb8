"""Deterministic discrete-event simulator that runs unmodified protocol cores.

The whole mesh lives in one thread: a virtual clock, one event heap ordered by
``(time, sequence)``, one seeded ``random.Random`` for the network. Cores get their own
seeded RNGs from the experiment. The network draws per-message one-way latency from the
measured inter-region RTT matrix (half the RTT, jittered by its measured deviation), and
applies loss, partitions (``cut``/``isolate``/``heal``) and crashes. Same seed and same
code give the same run, event for event: ``trace_digest`` fingerprints it.

The simulator owns virtual time and the simulated network; it knows nothing about what
a core does beyond the ``Core`` contract and the ``Send``/``Notify`` effects.
"""

from __future__ import annotations

import gc
import hashlib
import heapq
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hyperion.core import Core, Effect, Notify, Send
from hyperion.sim.rtt import RttMatrix

_DELIVER = 0
_TIMER = 1
_CALL = 2
_INF = float("inf")


@dataclass(slots=True)
class NetStats:
    sent: int = 0
    delivered: int = 0
    lost: int = 0  # random loss
    cut: int = 0  # dropped by a partition
    to_down: int = 0  # destination crashed
    unroutable: int = 0  # address not in the simulation
    by_type: dict[str, int] = field(default_factory=dict)


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the duration of a run.

    A run allocates tens of millions of short-lived objects (messages, effects, heap
    entries) beside millions of long-lived ones (the cores' state), and the collector
    keeps re-scanning the long-lived ones: about a quarter of the CPU time of a 10,000-node
    run. The simulated run makes no reference cycles (a collection right after a paused
    10,000-node ``sim.run`` finds nothing it allocated), so reference counting frees what
    it allocates and peak memory stays about where it was.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Simulator:
    """Runs many cores against one virtual clock and one simulated network."""

    def __init__(
        self,
        seed: int,
        rtt: RttMatrix | None = None,
        *,
        loss: float = 0.0,
        trace: bool = False,
        count_types: bool = False,
    ) -> None:
        if not 0.0 <= loss < 1.0:
            raise ValueError("loss must be in [0, 1)")
        self.seed = seed
        self.rng = random.Random(seed)
        self.now = 0.0
        self.loss = loss
        self.rtt = rtt
        self.stats = NetStats()
        self.cores: list[Core | None] = []
        self.up: list[bool] = []
        self.region: list[int] = []
        self.partition: list[int] = []
        self._addr_index: dict[str, int] = {}
        self._timer_at: list[float] = []
        # (time, sequence, kind, a, b): a is the node index (deliver, timer) or the
        # callable (call); b is the message (deliver). Timers wait in their own heap: a
        # node's timer often sits there for seconds (a lease, a reservation), and with
        # 10,000 nodes those would make every message's heap operations deeper and colder.
        # run() takes whichever head comes first, so events run in one (time, sequence)
        # order, exactly as from a single heap.
        self._heap: list[tuple[float, int, int, Any, Any]] = []
        self._timers: list[tuple[float, int, int, Any, Any]] = []
        self._seq = 0
        self._trace = hashlib.sha256() if trace else None
        self._count_types = count_types
        self.on_notify: Callable[[int, object, float], None] | None = None
        self.on_send: Callable[[int, Send, float], None] | None = None

    # ---------------------------------------------------------------- topology

    def add_node(self, addr: str, core: Core | None, *, region: int = 0) -> int:
        i = len(self.cores)
        self.cores.append(core)
        self.up.append(core is not None)
        self.region.append(region)
        self.partition.append(0)
        self._addr_index[addr] = i
        self._timer_at.append(_INF)
        if core is not None:
            self._rearm(i)
        return i

    def index_of(self, addr: str) -> int | None:
        return self._addr_index.get(addr)

    def crash(self, i: int) -> None:
        """Stop node ``i`` dead: no more timers, messages to it are lost."""
        self.up[i] = False
        self.cores[i] = None
        self._timer_at[i] = _INF
        self._record(_CALL, i, "crash")

    def restart(self, i: int, core: Core, effects: list[Effect] | None = None) -> None:
        """Bring node ``i`` back with a fresh core (state is not carried over)."""
        self.cores[i] = core
        self.up[i] = True
        self._record(_CALL, i, "restart")
        if effects:
            self._execute(i, effects)
        self._rearm(i)

    def cut(self, group_a: list[int], group_b: list[int]) -> None:
        """Partition: ``group_a`` and ``group_b`` can no longer reach each other."""
        tag = 1 + max(self.partition, default=0)
        for i in group_b:
            self.partition[i] = tag
        del group_a  # everything not in group_b keeps its tag

    def isolate(self, i: int) -> None:
        self.partition[i] = 1 + max(self.partition, default=0)

    def heal(self) -> None:
        for i in range(len(self.partition)):
            self.partition[i] = 0

    # -------------------------------------------------------------- scheduling

    def at(self, t: float, fn: Callable[[], None], *, seq: int | None = None) -> None:
        """Run ``fn`` at virtual time ``t`` (fault injection, checkers). ``seq``, from
        ``reserve``, orders it among same-time events as if it had been scheduled when
        the number was reserved."""
        if seq is None:
            self._push(t, _CALL, fn, None)
        else:
            heapq.heappush(self._heap, (t, seq, _CALL, fn, None))

    def reserve(self, n: int) -> int:
        """Reserve ``n`` event sequence numbers; returns the first. A long stream of
        arrivals can then be scheduled one at a time (each scheduling the next, keeping
        the heap small) and still run exactly as if all had been scheduled now."""
        first = self._seq + 1
        self._seq += n
        return first

    def inject(self, i: int, effects: list[Effect]) -> None:
        """Execute effects as if node ``i`` had emitted them now (e.g. a join)."""
        self._execute(i, effects)
        self._rearm(i)

    def run(self, until: float) -> None:
        # The hot loop (10k SWIM nodes: ~4.5 million events a minute): _execute and
        # _rearm are inlined, and what the loop touches is bound to locals. The sequence
        # counter lives in ``seq`` and is written back around every callback, which may
        # schedule events itself.
        heap = self._heap
        timers = self._timers
        cores = self.cores
        timer_at = self._timer_at
        stats = self.stats
        tracing = self._trace is not None
        pop = heapq.heappop
        push = heapq.heappush
        addr_index = self._addr_index.get
        partition = self.partition
        region = self.region
        rand = self.rng.random
        loss = self.loss
        m = self.rtt
        avg_ms = m.avg_ms if m is not None else ()
        mdev_ms = m.mdev_ms if m is not None else ()
        count_types = self._count_types
        on_send = self.on_send
        on_notify = self.on_notify
        seq = self._seq
        try:
            while True:
                if timers and (not heap or timers[0] < heap[0]):
                    event = pop(timers)
                elif heap:
                    event = pop(heap)
                else:
                    break
                t, _, kind, a, b = event
                if t > until:
                    push(timers if kind == _TIMER else heap, event)
                    break
                self.now = t
                if kind == _DELIVER:
                    i = a
                    core = cores[i]
                    if core is None:
                        stats.to_down += 1
                        continue
                    stats.delivered += 1
                    if tracing:
                        self._record(_DELIVER, i, type(b).__name__)
                    effects = core.handle(b, t)
                elif kind == _TIMER:
                    i = a
                    core = cores[i]
                    if core is None or timer_at[i] != t:
                        continue  # stale timer entry
                    timer_at[i] = _INF
                    if tracing:
                        self._record(_TIMER, i, "")
                    d = core.next_deadline()
                    if d is not None and d > t:  # the work this timer was for is done (an
                        timer_at[i] = d  # ack came): skip the idle tick, wake at the new one
                        seq += 1
                        push(timers, (d, seq, _TIMER, i, None))
                        continue
                    effects = core.tick(t)
                else:
                    self._seq = seq
                    a()
                    seq = self._seq
                    on_send = self.on_send
                    on_notify = self.on_notify
                    continue
                if effects:  # the sender's side of every send, looked up once
                    ri = region[i]
                    avg_i = avg_ms[ri] if m is not None else ()
                    mdev_i = mdev_ms[ri] if m is not None else ()
                for eff in effects:
                    if type(eff) is Send:  # inlined _send: same checks, same RNG draws
                        stats.sent += 1
                        if count_types:
                            name = type(eff.msg).__name__
                            stats.by_type[name] = stats.by_type.get(name, 0) + 1
                        if on_send is not None:
                            self._seq = seq
                            on_send(i, eff, t)
                            seq = self._seq
                        j = addr_index(eff.addr)
                        if j is None:
                            stats.unroutable += 1
                            continue
                        if partition[i] != partition[j]:
                            stats.cut += 1
                            continue
                        if loss and rand() < loss:
                            stats.lost += 1
                            continue
                        if m is None:
                            delay = 0.0005
                        else:  # half the measured RTT, jittered by its measured deviation
                            rj = region[j]
                            rtt_ms = avg_i[rj] + mdev_i[rj] * (2.0 * rand() - 1.0)
                            delay = (0.2 if rtt_ms < 0.2 else rtt_ms) / 2000.0  # max(rtt, 0.2)
                        seq += 1
                        push(heap, (t + delay, seq, _DELIVER, j, eff.msg))
                    elif type(eff) is Notify and on_notify is not None:
                        self._seq = seq
                        on_notify(i, eff.event, t)
                        seq = self._seq
                # Re-arm the node's timer if its deadline moved earlier (inlined _rearm). A
                # deadline that moved later costs one early, idle tick; pushing a fresh heap
                # entry on every such move measured slower.
                d = core.next_deadline()
                if d is not None and d < timer_at[i]:
                    if d < t:
                        d = t
                    timer_at[i] = d
                    seq += 1
                    push(timers, (d, seq, _TIMER, i, None))
        finally:
            self._seq = seq
        self.now = max(self.now, until)

    def trace_digest(self) -> str:
        if self._trace is None:
            raise RuntimeError("simulator was created without trace=True")
        return self._trace.hexdigest()

    # --------------------------------------------------------------- internals

    def _execute(self, i: int, effects: list[Effect]) -> None:
        # The same checks and RNG draws as the inlined copy in run (a tender is 8 sends).
        st = self.stats
        now = self.now
        heap = self._heap
        addr_index = self._addr_index.get
        partition = self.partition
        rand = self.rng.random
        loss = self.loss
        m = self.rtt
        region = self.region
        for eff in effects:
            if type(eff) is Send:
                st.sent += 1
                if self._count_types:
                    name = type(eff.msg).__name__
                    st.by_type[name] = st.by_type.get(name, 0) + 1
                if self.on_send is not None:
                    self.on_send(i, eff, now)
                j = addr_index(eff.addr)
                if j is None:
                    st.unroutable += 1
                    continue
                if partition[i] != partition[j]:
                    st.cut += 1
                    continue
                if loss and rand() < loss:
                    st.lost += 1
                    continue
                if m is None:
                    delay = 0.0005
                else:  # half the measured RTT, jittered by its measured deviation
                    ri, rj = region[i], region[j]
                    rtt_ms = m.avg_ms[ri][rj] + m.mdev_ms[ri][rj] * (2.0 * rand() - 1.0)
                    delay = (0.2 if rtt_ms < 0.2 else rtt_ms) / 2000.0  # max(rtt, 0.2)
                self._seq = seq = self._seq + 1
                heapq.heappush(heap, (now + delay, seq, _DELIVER, j, eff.msg))
            elif type(eff) is Notify and self.on_notify is not None:
                self.on_notify(i, eff.event, now)

    def _rearm(self, i: int) -> None:
        core = self.cores[i]
        if core is None:
            return
        d = core.next_deadline()
        if d is not None and d < self._timer_at[i]:
            d = max(d, self.now)
            self._timer_at[i] = d
            self._push(d, _TIMER, i, None)

    def _push(self, t: float, kind: int, a: object, b: object) -> None:
        self._seq += 1
        heapq.heappush(self._timers if kind == _TIMER else self._heap, (t, self._seq, kind, a, b))

    def _record(self, kind: int, i: int, what: str) -> None:
        if self._trace is not None:
            self._trace.update(f"{self.now!r} {kind} {i} {what}\n".encode())
