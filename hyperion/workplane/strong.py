"""Which Raft groups a node should host, found, change or dissolve (DESIGN §8). Sans-I/O.

A HyperionWorkload with ``spec.policy.consistency: strong`` gets one ephemeral Raft
group whose members are the nodes that run its replicas. This module owns the
decisions — given what the node's catalog says about strong workloads (``WorkloadView``)
and what its hosted members say about themselves (``MemberView``) — and nothing else:
no Raft state, no files, no clock (``now`` comes in), no randomness (the driver draws
the group id's suffix).

Theory of operation
===================

*Group ids.* ``<workload uid>.<16 random hex digits>``, drawn by the one node that
founds the group. A second founding — by mistake, see below — makes a *different*
group, never a second initial configuration of the same one: two ids collide with
probability 2^-64. So Raft's election safety (one leader per term per group) holds by
construction, whatever the custodians do.

*Founding.* Only the workload's custodian (the live node closest to its key,
``hyperion.control.custodian``: one per workload in a stable view) founds, and only
when the workload's status names no group yet, it hosts no member of the workload's
groups, at least one replica is bound, and it has been custodian for
``BOOTSTRAP_HOLD_S`` (so a founder that just died has had time to get its status
written and spread). It bootstraps a single voter, itself (``DurableState.bootstrap``).

*Membership follows replicas.* The leader of a group makes one single-server change at
a time (thesis §4.1), in this order: promote a learner that runs a replica (the core
refuses until it has caught up; then the next candidate is tried); remove a learner,
then a voter, that runs none (a voter only while another voter that runs a replica
stays); add a node that runs a replica as a learner. A founder that runs no replica
thus hands the group over to the replica nodes and removes itself. A node that runs a
replica but is no member yet hosts nothing until the leader contacts it: then the
driver creates an empty member (``may_join``), which learns everything from the log.

*Dissolving.* A member is dissolved (files deleted) when its workload is gone (after
``START_GRACE_S`` from the node's start, while a restored catalog catches up), when the
status names another group (the loser of a double founding), or when this node runs
no replica and is no member of the configuration (removed, or never contacted).

Failure modes (documented in the README):

* The custodian changes before the first leader wrote ``status.consistency`` (the
  founder died within about a second of founding, or views of who is custodian
  differed): two groups may be founded. The status (last writer wins) names one; the
  members of the other dissolve, and what was written to it is lost. Writes are only
  acknowledged after commit, so a client saw them succeed: this is the window to know.
* A single-voter group whose founder dies before adding anyone is lost with it; the
  next custodian founds a new one only if the status named none.
* All members' disks lost: the group's state is lost; nothing re-founds a group the
  status names (an operator deletes and re-creates the workload).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hyperion.workplane.raft import ChangeOp

BOOTSTRAP_HOLD_S = 1.0  # a new custodian waits this long for a previous founder's status
START_GRACE_S = 5.0  # after a start, groups are not dissolved for a missing workload


def group_id(uid: str, rng: random.Random) -> str:
    return f"{uid}.{rng.getrandbits(64):016x}"


def group_uid(group: str) -> str:
    return group.rsplit(".", 1)[0]


@dataclass(frozen=True, slots=True)
class WorkloadView:
    """A strong workload as this node's catalog shows it."""

    uid: str
    namespace: str
    name: str
    replicas: frozenset[str]  # node ids bound to a replica that may run
    group: str  # the group its status names, "" if none yet
    custodian: bool  # this node is its custodian


@dataclass(frozen=True, slots=True)
class MemberView:
    """A group member this node hosts."""

    group: str
    uid: str
    leader: bool
    voters: frozenset[str]
    learners: frozenset[str]


@dataclass(frozen=True, slots=True)
class Found:
    workload: WorkloadView


@dataclass(frozen=True, slots=True)
class Dissolve:
    group: str
    reason: str


@dataclass(frozen=True, slots=True)
class Change:
    """Candidate changes of one group, best first: the driver makes the first the core
    accepts (at most one per group and step)."""

    group: str
    changes: tuple[tuple[ChangeOp, str], ...]


Action = Found | Dissolve | Change


def may_join(me: str, group: str, workloads: dict[str, WorkloadView]) -> bool:
    """Whether to create an empty member of ``group`` when its leader contacts us."""
    w = workloads.get(group_uid(group))
    return w is not None and me in w.replicas and w.group in ("", group)


def may_request(
    src: str, group: str, members: frozenset[str], workloads: dict[str, WorkloadView]
) -> bool:
    """Whether the leader serves a store request that node ``src`` forwarded: ``src`` is
    one of the group's members (``members``: voters and learners, as the leader's
    configuration has them) or runs a replica of its workload (a node whose replica was
    just placed, before it is added). Any other mesh node, authenticated or not, is
    refused: a workload's state is its replicas' business."""
    return src in members or may_join(src, group, workloads)


def changes(me: str, m: MemberView, desired: frozenset[str]) -> tuple[tuple[ChangeOp, str], ...]:
    """The leader's candidate membership changes, best first (see the docstring)."""
    if not desired:
        return ()
    out: list[tuple[ChangeOp, str]] = []
    out += [(ChangeOp.PROMOTE, n) for n in sorted(m.learners & desired)]
    out += [(ChangeOp.REMOVE, n) for n in sorted(m.learners - desired)]
    if m.voters & desired:
        # others first, then ourselves (the core steps a leader down once that commits)
        gone = sorted(m.voters - desired, key=lambda n: (n == me, n))
        out += [(ChangeOp.REMOVE, n) for n in gone]
    out += [(ChangeOp.ADD_LEARNER, n) for n in sorted(desired - m.voters - m.learners)]
    return tuple(out)


class Lifecycle:
    """The decisions of node ``me`` (see the module docstring)."""

    def __init__(self, me: str, started: float) -> None:
        self.me = me
        self.started = started
        self._custodian_since: dict[str, float] = {}

    def plan(
        self, workloads: dict[str, WorkloadView], members: list[MemberView], now: float
    ) -> list[Action]:
        out: list[Action] = []
        for uid, w in workloads.items():
            if w.custodian:
                self._custodian_since.setdefault(uid, now)
            else:
                self._custodian_since.pop(uid, None)
        for uid in list(self._custodian_since):
            if uid not in workloads:
                del self._custodian_since[uid]
        hosted = set()
        for m in members:
            mw = workloads.get(m.uid)
            if mw is None:
                if now - self.started >= START_GRACE_S:
                    out.append(Dissolve(m.group, "workload deleted"))
                continue
            w = mw
            if w.group and w.group != m.group:
                out.append(Dissolve(m.group, f"status names group {w.group}"))
                continue
            hosted.add(m.uid)
            if self.me not in w.replicas and self.me not in m.voters | m.learners:
                out.append(Dissolve(m.group, "no replica here and not a member"))
                continue
            if m.leader:
                cs = changes(self.me, m, w.replicas)
                if cs:
                    out.append(Change(m.group, cs))
        for uid, w in sorted(workloads.items()):
            since = self._custodian_since.get(uid)
            if (
                since is not None
                and now - since >= BOOTSTRAP_HOLD_S
                and not w.group
                and w.replicas
                and uid not in hosted
            ):
                out.append(Found(w))
        return out
