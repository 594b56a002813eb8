"""Many Raft groups on one node, over one transport (DESIGN §8). Sans-I/O.

A node hosts one member of every stateful workload it runs a replica of; the groups
share the node's mesh connection (no port per group). This module owns the table
``group id -> RaftNode`` of one node and nothing else: it routes each inbound message
by its ``group`` field, creates and dissolves members, and keeps one deadline heap so
that ``tick`` wakes only the groups that are due. Driven by the simulator in tests and,
on a node, by ``raft_driver``.

Theory of operation
===================

*Routing.* Every Raft message names its group. A message for a group this node does
not host (never created, already dissolved, or not yet created here) is dropped and
counted in ``dropped_unknown_group``: Raft tolerates loss, and a member that is added
later catches up from the leader.

*Timers.* Each member has exactly one deadline (``RaftNode.next_deadline``). The host
keeps a heap of ``(deadline, sequence, group)``; an entry is pushed only when a group's
deadline moves earlier than the one already armed (a deadline that moves later, as a
follower's election timer does on every heartbeat, costs one early, idle look at the
heap top instead of a push per message). ``next_deadline`` is the heap top, so a
thousand idle groups cost a thousand heap entries and no work until one is due.

*Dissolution.* ``dissolve(group)`` forgets the member and everything it held, and tells
the driver with ``Notify(Dissolved(group))`` so it deletes the group's durable state.
Its heap entries are skipped lazily.

Addresses: members are node ids and a ``Send`` goes to ``addr = dest``; the driver
resolves a node id to a transport address (the simulator uses node ids as addresses).
The driver must have checked that a message's ``src`` is the envelope's signer.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass

from hyperion.core import Effect, Notify
from hyperion.workplane.raft import (
    MESSAGE_TYPES,
    ChangeOp,
    DurableState,
    Persist,
    ProposeResult,
    RaftConfig,
    RaftNode,
    ReadResult,
)


@dataclass(frozen=True, slots=True)
class Dissolved:
    """The group is gone from this node: delete its durable state."""

    group: str


@dataclass(slots=True)
class HostStats:
    dropped_unknown_group: int = 0
    dropped_malformed: int = 0
    created: int = 0
    dissolved: int = 0


class RaftHost:
    """The Raft groups of node ``node_id``."""

    def __init__(self, node_id: str, rng: random.Random, cfg: RaftConfig | None = None) -> None:
        self.node_id = node_id
        self.rng = rng
        self.cfg = cfg or RaftConfig()
        self.stats = HostStats()
        self._groups: dict[str, RaftNode] = {}
        self._armed: dict[str, float] = {}  # earliest heap entry per group
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._groups)

    def __contains__(self, group: str) -> bool:
        return group in self._groups

    def groups(self) -> list[str]:
        return sorted(self._groups)

    def node(self, group: str) -> RaftNode:
        return self._groups[group]

    def create(
        self, group: str, state: DurableState, now: float, *, new: bool = True
    ) -> list[Effect]:
        """Host a member of ``group`` starting from ``state``: ``DurableState.bootstrap``
        for a new member (``new``: the returned effects persist it), or what storage
        holds after a restart (``new=False``: nothing to persist)."""
        if group in self._groups:
            raise ValueError(f"group {group!r} already hosted")
        node = RaftNode(group, self.node_id, state, self.rng, now, self.cfg)
        self._groups[group] = node
        self.stats.created += 1
        self._rearm(group, node)
        if not new:
            return []
        return [Notify(Persist(group, state.term, state.vote, state.snapshot, 0, state.entries))]

    def dissolve(self, group: str) -> list[Effect]:
        """Forget ``group`` entirely (the workload was deleted or its job completed)."""
        if self._groups.pop(group, None) is None:
            return []
        self._armed.pop(group, None)
        self.stats.dissolved += 1
        return [Notify(Dissolved(group))]

    # ------------------------------------------------------------- core API

    def handle(self, msg: object, now: float) -> list[Effect]:
        if not isinstance(msg, MESSAGE_TYPES):
            self.stats.dropped_malformed += 1
            return []
        node = self._groups.get(msg.group)
        if node is None:
            self.stats.dropped_unknown_group += 1
            return []
        effects = node.handle(msg, now)
        self._rearm(msg.group, node)
        return effects

    def tick(self, now: float) -> list[Effect]:
        out: list[Effect] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            t, _, group = heapq.heappop(heap)
            node = self._groups.get(group)
            if node is None or self._armed.get(group) != t:
                continue  # dissolved, or superseded by an earlier entry
            del self._armed[group]
            if node.next_deadline() <= now:
                out.extend(node.tick(now))
            self._rearm(group, node)
        return out

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2] not in self._groups:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    # --------------------------------------------------- client API, per group

    def propose(self, group: str, data: bytes, now: float) -> tuple[ProposeResult, list[Effect]]:
        node = self._groups[group]
        result, effects = node.propose(data, now)
        self._rearm(group, node)
        return result, effects

    def read_index(self, group: str, now: float) -> tuple[ReadResult, list[Effect]]:
        node = self._groups[group]
        result, effects = node.read_index(now)
        self._rearm(group, node)
        return result, effects

    def change_membership(
        self, group: str, op: ChangeOp, member: str, now: float
    ) -> tuple[ProposeResult, list[Effect]]:
        node = self._groups[group]
        result, effects = node.change_membership(op, member, now)
        self._rearm(group, node)
        return result, effects

    def compact(self, group: str, index: int, data: bytes, now: float) -> list[Effect]:
        node = self._groups[group]
        effects = node.compact(index, data, now)
        self._rearm(group, node)
        return effects

    def _rearm(self, group: str, node: RaftNode) -> None:
        d = node.next_deadline()
        armed = self._armed.get(group)
        if armed is None or d < armed:
            self._armed[group] = d
            self._seq += 1
            heapq.heappush(self._heap, (d, self._seq, group))
