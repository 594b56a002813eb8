"""One member of one ephemeral Raft group (DESIGN §8, strong state). Sans-I/O.

A workload marked stateful keeps its strong state in a Raft group formed by its
replicas. This module owns one member's protocol state: its term and vote, its log and
the snapshot that replaced the log's prefix, the group configuration, and, while it
leads, the replication progress of every other member and the pending linearizable
reads. It owns no bytes on disk, no sockets and no clock: durable writes leave as
``Notify(Persist(...))`` effects, messages as ``Send`` effects, time comes in as ``now``
and randomness from an injected ``random.Random``. ``raft_host`` multiplexes many groups
on one node. Driven by the simulator in tests and, on a node, by ``raft_driver``.

Theory of operation
===================

This is Raft as in the paper (Ongaro & Ousterhout 2014) and the thesis (Ongaro 2014),
shaped like etcd/raft: roles are per-role handlers, followers are tracked by a progress
state machine, and the ordering contract is *persist before you send*.

*The effect-ordering rule.* ``Persist(group, term, vote, snapshot, truncate_from,
entries)`` is emitted (inside ``Notify``) whenever the term, the vote or the log
changes. A driver must make it durable, applying its parts in this order — replace the
snapshot (dropping log entries at or below its index), drop entries at or above
``truncate_from`` (0: none), append ``entries`` — before it executes any later effect
of the same list: a vote or an append acknowledgement may only leave once what it
promises is on disk. ``MemoryStorage`` is the reference implementation.
``Committed``, ``ConfigCommitted`` and ``SnapshotRestored`` are to be applied in list
order too: the core counts an entry applied once it has emitted it, and a
``ReadReady`` is emitted only after everything it must observe.

*Elections (§5.2, thesis §9.6).* A follower that hears nothing from a leader for its
randomized election timeout (uniform in [T, 2T)) first runs a *pre-vote*: it asks the
voters whether they would vote for it at ``term + 1`` without anyone changing term. A
voter grants a pre-vote only if the candidate's log is at least as up to date as its
own (§5.4.1) and it has not heard from a leader within T. Only with a pre-vote quorum
does it increment its term and ask for real votes. A voter that has heard from a leader
within T ignores (real) vote requests altogether, so a node that was cut off, or one
that was removed and does not know it (thesis §4.2.3), cannot depose a healthy leader.
A member that accepts a leader of a term in which it has not voted records that leader
as its vote (durably): the leader has won the term, so this promises nothing new, and a
late vote request of that term finds the vote taken even after a restart. A member that
knows no configuration (created empty, waiting to be added; its state may have been
dissolved after it voted in this very term) grants no vote at all.

*Check-quorum.* A leader that has not heard from a quorum of voters within T steps
down: a leader stranded in a minority stops accepting writes and reads.

*Replication (§5.3).* ``AppendEntries`` carries the previous entry's (index, term); a
follower that lacks it rejects with a hint (the last index at or below the probed one
whose term is at most the probed term, and that term), and the leader skips a whole
term at a time. An entry that conflicts with a new one is truncated with everything
after it; a committed entry is never truncated (asserted). A follower is probed (one
append in flight) until it acknowledges, then replicated optimistically, at most
``max_inflight_msgs`` appends in flight. Heartbeats carry ``min(commit, match)`` so a
follower never commits entries it has not matched. A leader commits only entries of
its own term by counting replicas (§5.4.2) and appends an empty entry when it takes
office, so its term gets an entry to commit.

*Membership (thesis §4.1).* One server at a time: add a learner, promote a learner to
voter (only once it has caught up to the commit index), or remove a member. A
configuration entry carries the whole new configuration and takes effect on a member
as soon as it is in its log (and is undone if it is truncated). A leader proposes a
change only after an entry of its term has committed and the previous change has
committed. A leader that removes itself keeps leading without counting itself until the
change commits, then steps down.

*Snapshots (§7).* The application compacts the log at an index it has applied by
handing over the state at that index (``compact``). A follower whose next entry has
been compacted is sent the snapshot (``InstallSnapshot``); it replaces its log unless
its log already holds the snapshot's last entry, and the application is told with
``SnapshotRestored``.

*Linearizable reads (thesis §6.4, ReadIndex).* The leader records its commit index,
confirms it is still leader by a heartbeat round that a quorum acknowledges, and
answers ``ReadReady(read, index)`` once it has applied that index. A leader that has
not yet committed an entry of its term waits for it first. A read that cannot be
confirmed (the leader stepped down) ends with ``ReadAborted``.

Bad input from a peer never raises out of ``handle``: messages from other groups,
unknown members or stale terms are dropped and counted in ``stats``.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from dataclasses import dataclass, field
from typing import TypeAlias

from hyperion.core import Effect, Notify, Send

# ---------------------------------------------------------------------- config


@dataclass(frozen=True, slots=True)
class RaftConfig:
    """Tunables, the same on every member of a group."""

    heartbeat_s: float = 0.1
    # T: elections time out uniformly in [T, 2T); also the check-quorum and lease period.
    # Ten heartbeats, as etcd's defaults (100 ms heartbeat, 1 s election).
    election_timeout_s: float = 1.0
    max_inflight_msgs: int = 64  # appends in flight per follower (etcd's default 256)
    max_entries_per_msg: int = 64  # entries in one AppendEntries
    max_uncommitted_entries: int = 4096  # a leader refuses proposals beyond this backlog
    max_pending_reads: int = 1024  # ReadIndex requests awaiting confirmation

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat_s < self.election_timeout_s:
            raise ValueError("need 0 < heartbeat_s < election_timeout_s")
        if min(self.max_inflight_msgs, self.max_entries_per_msg) < 1:
            raise ValueError("limits must be positive")


# -------------------------------------------------------------------- log data


class EntryKind(enum.IntEnum):
    NORMAL = 1  # application data
    NOOP = 2  # a new leader's first entry
    CONFIG = 3  # the whole new configuration in voters/learners


@dataclass(frozen=True, slots=True)
class Entry:
    index: int
    term: int
    kind: EntryKind = EntryKind.NORMAL
    data: bytes = b""
    voters: tuple[str, ...] = ()  # CONFIG only, sorted
    learners: tuple[str, ...] = ()  # CONFIG only, sorted


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state machine at ``index`` (term ``term``) and the configuration in force there."""

    index: int
    term: int
    voters: tuple[str, ...]
    learners: tuple[str, ...] = ()
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class DurableState:
    """What a member must find again after a restart."""

    term: int
    vote: str  # "" = none
    snapshot: Snapshot
    entries: tuple[Entry, ...]  # indexes snapshot.index + 1, + 2, ...

    @staticmethod
    def bootstrap(voters: tuple[str, ...] | list[str]) -> DurableState:
        """A founding member of a new group, or (``voters=()``) one that will be added.

        Founders start with the same first entry, the founding configuration at term 1
        (as etcd's bootstrap), so a member added later learns the configuration in force
        at every index from the log itself. The first leader commits it."""
        empty = Snapshot(0, 0, ())
        if not voters:
            return DurableState(0, "", empty, ())
        first = Entry(1, 1, EntryKind.CONFIG, voters=tuple(sorted(voters)))
        return DurableState(1, "", empty, (first,))


# --------------------------------------------------------------------- effects


@dataclass(frozen=True, slots=True)
class Persist:
    """Make durable before any later effect (see the module docstring for the order)."""

    group: str
    term: int
    vote: str
    snapshot: Snapshot | None = None  # replaces the snapshot; drops entries <= its index
    truncate_from: int = 0  # then drop entries with index >= this (0: none)
    entries: tuple[Entry, ...] = ()  # then append these


@dataclass(frozen=True, slots=True)
class Committed:
    """Apply ``data``: entry ``index`` of the group is committed. Delivered in index order."""

    group: str
    index: int
    term: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ConfigCommitted:
    group: str
    index: int
    voters: tuple[str, ...]
    learners: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SnapshotRestored:
    """Replace the application state by ``snapshot.data`` (the state at its index)."""

    group: str
    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class ReadReady:
    """Read ``read`` may now be served from local state: it reflects index ``index``."""

    group: str
    read: int
    index: int


@dataclass(frozen=True, slots=True)
class ReadAborted:
    group: str
    read: int


@dataclass(frozen=True, slots=True)
class LeaderChanged:
    group: str
    term: int
    leader: str  # "" = none known


# --------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class VoteRequest:
    group: str
    src: str
    term: int  # for a pre-vote: the term the sender would campaign in
    last_index: int
    last_term: int
    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class VoteResponse:
    group: str
    src: str
    term: int
    granted: bool
    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class AppendEntries:
    group: str
    src: str
    term: int
    prev_index: int
    prev_term: int
    entries: tuple[Entry, ...]
    commit: int


@dataclass(frozen=True, slots=True)
class AppendResponse:
    group: str
    src: str
    term: int
    success: bool
    index: int  # success: the last index now known to match; else the rejected prev_index
    hint_index: int = 0  # rejection: where the leader should probe next, and its term
    hint_term: int = 0


@dataclass(frozen=True, slots=True)
class Heartbeat:
    group: str
    src: str
    term: int
    commit: int
    ctx: int  # the leader's latest ReadIndex round; echoed back


@dataclass(frozen=True, slots=True)
class HeartbeatResponse:
    group: str
    src: str
    term: int
    ctx: int


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    group: str
    src: str
    term: int
    snapshot: Snapshot


Message: TypeAlias = (
    VoteRequest
    | VoteResponse
    | AppendEntries
    | AppendResponse
    | Heartbeat
    | HeartbeatResponse
    | InstallSnapshot
)
MESSAGE_TYPES = (
    VoteRequest,
    VoteResponse,
    AppendEntries,
    AppendResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
)

# ------------------------------------------------------------------ API results


@dataclass(frozen=True, slots=True)
class Accepted:
    """Appended at (index, term); it is committed iff ``Committed`` with both arrives."""

    index: int
    term: int


@dataclass(frozen=True, slots=True)
class ReadId:
    read: int


@dataclass(frozen=True, slots=True)
class NotLeader:
    leader: str  # hint: "" when unknown


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


ProposeResult: TypeAlias = Accepted | NotLeader | Refused
ReadResult: TypeAlias = ReadId | NotLeader | Refused


class ChangeOp(enum.Enum):
    ADD_LEARNER = "add-learner"
    PROMOTE = "promote"  # learner -> voter, once caught up
    REMOVE = "remove"


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class RaftError(Exception):
    """Base of local errors: the caller broke the API's rules (a peer's never raises)."""


# ------------------------------------------------------------------ internals


class _Flow(enum.Enum):
    PROBE = 0  # one append in flight until the follower answers
    REPLICATE = 1  # pipelined, at most max_inflight_msgs in flight
    SNAPSHOT = 2  # a snapshot is on its way


@dataclass(slots=True)
class _Progress:
    match: int
    next: int
    flow: _Flow = _Flow.PROBE
    paused: bool = False  # PROBE: an append is in flight
    inflight: deque[int] = field(default_factory=deque)  # last index of each append
    pending_snapshot: int = 0
    snapshot_sent_s: float = 0.0
    active: bool = False  # heard from since the last check-quorum
    read_ctx: int = 0  # highest heartbeat ctx it acknowledged

    def become_probe(self) -> None:
        if self.flow is _Flow.SNAPSHOT:
            self.next = max(self.match + 1, self.pending_snapshot + 1)
        else:
            self.next = self.match + 1
        self.flow = _Flow.PROBE
        self.paused = False
        self.inflight.clear()

    def become_replicate(self) -> None:
        self.flow = _Flow.REPLICATE
        self.next = self.match + 1
        self.paused = False
        self.inflight.clear()


@dataclass(slots=True)
class _Read:
    read: int
    index: int = -1  # -1 until the leader has committed an entry of its term
    ctx: int = 0
    confirmed: bool = False


@dataclass(slots=True)
class RaftStats:
    stale_term: int = 0  # messages from an older term
    foreign: int = 0  # wrong group, unknown member, or not a message
    ignored_in_lease: int = 0  # vote requests ignored while a leader is known
    rejected_appends: int = 0
    elections: int = 0
    pre_votes: int = 0
    snapshots_sent: int = 0
    snapshots_installed: int = 0


def _quorum(n: int) -> int:
    return n // 2 + 1


# ------------------------------------------------------------------------ node


class RaftNode:
    """Member ``me`` of group ``group``; see the module docstring."""

    def __init__(
        self,
        group: str,
        me: str,
        state: DurableState,
        rng: random.Random,
        now: float,
        cfg: RaftConfig | None = None,
    ) -> None:
        self.group = group
        self.me = me
        self.cfg = cfg or RaftConfig()
        self.rng = rng
        self.stats = RaftStats()
        self.term = state.term
        self.vote = state.vote
        self._snap = state.snapshot
        self._log: list[Entry] = list(state.entries)
        for k, e in enumerate(self._log):
            assert e.index == self._snap.index + 1 + k, "log must be contiguous"
        self.commit = self._snap.index
        self.applied = self._snap.index
        self.role = Role.FOLLOWER
        self.leader = ""
        self.voters: frozenset[str] = frozenset()
        self.learners: frozenset[str] = frozenset()
        self._config_index = 0
        self._load_config()
        self._out: list[Effect] = []
        self._votes: dict[str, bool] = {}
        self._progress: dict[str, _Progress] = {}
        self._term_start = 0  # index of this leader's no-op
        self._reads: deque[_Read] = deque()
        self._next_read = 1
        self._read_ctx = 0
        self._leader_contact_s = -1e18
        self._election_deadline = 0.0
        self._heartbeat_deadline = 0.0
        self._check_quorum_deadline = 0.0
        self._now = now
        self._reset_election_timer(now)

    # ------------------------------------------------------------- log access

    @property
    def last_index(self) -> int:
        return self._snap.index + len(self._log)

    @property
    def last_term(self) -> int:
        return self._log[-1].term if self._log else self._snap.term

    @property
    def snapshot(self) -> Snapshot:
        return self._snap

    def term_at(self, index: int) -> int | None:
        """The term of entry ``index``; None if compacted away or beyond the log."""
        if index == self._snap.index:
            return self._snap.term
        if self._snap.index < index <= self.last_index:
            return self._log[index - self._snap.index - 1].term
        return None

    def entry(self, index: int) -> Entry:
        return self._log[index - self._snap.index - 1]

    def entries(self) -> tuple[Entry, ...]:
        return tuple(self._log)

    def _load_config(self) -> None:
        for e in reversed(self._log):
            if e.kind is EntryKind.CONFIG:
                self._set_config(e.voters, e.learners, e.index)
                return
        self._set_config(self._snap.voters, self._snap.learners, self._snap.index)

    def _set_config(self, voters: tuple[str, ...], learners: tuple[str, ...], index: int) -> None:
        self.voters, self.learners = frozenset(voters), frozenset(learners)
        self._config_index = index

    def _config_at(self, index: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        for e in reversed(self._log[: index - self._snap.index]):
            if e.kind is EntryKind.CONFIG:
                return e.voters, e.learners
        return self._snap.voters, self._snap.learners

    # -------------------------------------------------------------- core API

    def next_deadline(self) -> float:
        if self.role is Role.LEADER:
            return min(self._heartbeat_deadline, self._check_quorum_deadline)
        return self._election_deadline

    def tick(self, now: float) -> list[Effect]:
        self._now = now
        if self.role is Role.LEADER:
            if now >= self._check_quorum_deadline:
                self._check_quorum(now)
            if self.role is Role.LEADER and now >= self._heartbeat_deadline:
                self._heartbeat_deadline = now + self.cfg.heartbeat_s
                self._broadcast_heartbeat(now)
        elif now >= self._election_deadline:
            if self.me in self.voters:
                self._pre_campaign(now)
            else:
                self._reset_election_timer(now)  # a learner or a removed member never campaigns
        return self._flush()

    def handle(self, msg: object, now: float) -> list[Effect]:
        self._now = now
        if not isinstance(msg, MESSAGE_TYPES) or msg.group != self.group or msg.src == self.me:
            self.stats.foreign += 1
            return []
        self._step(msg, now)
        return self._flush()

    def propose(self, data: bytes, now: float) -> tuple[ProposeResult, list[Effect]]:
        """Append ``data`` if this member leads (leader-only writes)."""
        self._now = now
        if self.role is not Role.LEADER:
            return NotLeader(self.leader), []
        if self.last_index - self.commit >= self.cfg.max_uncommitted_entries:
            return Refused("too many uncommitted entries"), []
        e = self._append_local(EntryKind.NORMAL, data=data)
        return Accepted(e.index, e.term), self._flush()

    def change_membership(
        self, op: ChangeOp, member: str, now: float
    ) -> tuple[ProposeResult, list[Effect]]:
        """Propose a single-server configuration change (thesis §4.1)."""
        self._now = now
        if self.role is not Role.LEADER:
            return NotLeader(self.leader), []
        if self._config_index > self.commit or self.commit < self._term_start:
            return Refused("a configuration change is in progress"), []
        voters, learners = set(self.voters), set(self.learners)
        if op is ChangeOp.ADD_LEARNER:
            if member in voters or member in learners:
                return Refused(f"{member} is already a member"), []
            learners.add(member)
        elif op is ChangeOp.PROMOTE:
            pr = self._progress.get(member)
            if member not in learners or pr is None:
                return Refused(f"{member} is not a learner"), []
            if pr.match < self.commit:
                return Refused(f"{member} has not caught up"), []
            learners.discard(member)
            voters.add(member)
        else:
            if member not in voters and member not in learners:
                return Refused(f"{member} is not a member"), []
            if voters == {member}:
                return Refused("cannot remove the last voter"), []
            voters.discard(member)
            learners.discard(member)
        e = self._append_local(
            EntryKind.CONFIG, voters=tuple(sorted(voters)), learners=tuple(sorted(learners))
        )
        return Accepted(e.index, e.term), self._flush()

    def read_index(self, now: float) -> tuple[ReadResult, list[Effect]]:
        """Start a linearizable read; ``ReadReady`` or ``ReadAborted`` follows."""
        self._now = now
        if self.role is not Role.LEADER:
            return NotLeader(self.leader), []
        if len(self._reads) >= self.cfg.max_pending_reads:
            return Refused("too many pending reads"), []
        r = _Read(self._next_read)
        self._next_read += 1
        self._reads.append(r)
        if self.commit >= self._term_start:
            r.index = self.commit
            self._start_read_round(now)
        return ReadId(r.read), self._flush()

    def compact(self, index: int, data: bytes, now: float) -> list[Effect]:
        """Replace the log up to ``index`` (applied) by ``data``, the state at ``index``."""
        self._now = now
        if not self._snap.index < index <= self.applied:
            raise RaftError(f"compact({index}): need {self._snap.index} < index <= applied")
        term = self.term_at(index)
        assert term is not None
        voters, learners = self._config_at(index)
        snap = Snapshot(index, term, voters, learners, data)
        del self._log[: index - self._snap.index]
        self._snap = snap
        self._persist(snapshot=snap)
        return self._flush()

    # -------------------------------------------------------------- plumbing

    def _flush(self) -> list[Effect]:
        out, self._out = self._out, []
        return out

    def _send(self, to: str, msg: Message) -> None:
        self._out.append(Send(to, to, msg))

    def _notify(self, event: object) -> None:
        self._out.append(Notify(event))

    def _persist(
        self,
        snapshot: Snapshot | None = None,
        truncate_from: int = 0,
        entries: tuple[Entry, ...] = (),
    ) -> None:
        self._notify(Persist(self.group, self.term, self.vote, snapshot, truncate_from, entries))

    def _reset_election_timer(self, now: float) -> None:
        t = self.cfg.election_timeout_s
        self._election_deadline = now + t + t * self.rng.random()

    def _in_lease(self, now: float) -> bool:
        if self.role is Role.LEADER:
            return True
        return bool(self.leader) and now - self._leader_contact_s < self.cfg.election_timeout_s

    def _set_leader(self, leader: str) -> None:
        if leader != self.leader:
            self.leader = leader
            self._notify(LeaderChanged(self.group, self.term, leader))

    # ------------------------------------------------------------- role changes

    def _become_follower(self, term: int, leader: str, now: float) -> None:
        was_leader = self.role is Role.LEADER
        if term != self.term:
            self.term, self.vote = term, leader
            self._persist()
        elif leader and not self.vote:
            self.vote = leader
            self._persist()
        self.role = Role.FOLLOWER
        self._set_leader(leader)
        self._reset_election_timer(now)
        if was_leader:
            self._progress.clear()
            while self._reads:
                self._notify(ReadAborted(self.group, self._reads.popleft().read))

    def _pre_campaign(self, now: float) -> None:
        self.stats.pre_votes += 1
        self.role = Role.PRE_CANDIDATE
        self._set_leader("")
        self._reset_election_timer(now)
        self._votes = {self.me: True}
        if not self._tally(now):
            for v in sorted(self.voters - {self.me}):
                self._send(
                    v,
                    VoteRequest(
                        self.group, self.me, self.term + 1, self.last_index, self.last_term, True
                    ),
                )

    def _campaign(self, now: float) -> None:
        self.stats.elections += 1
        self.role = Role.CANDIDATE
        self.term += 1
        self.vote = self.me
        self._persist()
        self._set_leader("")
        self._reset_election_timer(now)
        self._votes = {self.me: True}
        if not self._tally(now):
            for v in sorted(self.voters - {self.me}):
                self._send(
                    v,
                    VoteRequest(self.group, self.me, self.term, self.last_index, self.last_term),
                )

    def _tally(self, now: float) -> bool:
        """Count the votes; True if the campaign ended (won or lost)."""
        granted = sum(1 for v, g in self._votes.items() if g and v in self.voters)
        rejected = sum(1 for v, g in self._votes.items() if not g and v in self.voters)
        q = _quorum(len(self.voters))
        if granted >= q:
            if self.role is Role.PRE_CANDIDATE:
                self._campaign(now)
            else:
                self._become_leader(now)
            return True
        if rejected > len(self.voters) - q:
            self._become_follower(self.term, "", now)
            return True
        return False

    def _become_leader(self, now: float) -> None:
        self.role = Role.LEADER
        self._set_leader(self.me)
        self._progress = {}
        self._sync_progress()
        self._heartbeat_deadline = now + self.cfg.heartbeat_s
        self._check_quorum_deadline = now + self.cfg.election_timeout_s
        self._term_start = self._append_local(EntryKind.NOOP).index

    def _sync_progress(self) -> None:
        members = (self.voters | self.learners) - {self.me}
        for m in list(self._progress):
            if m not in members:
                del self._progress[m]
        for m in sorted(members):
            if m not in self._progress:
                self._progress[m] = _Progress(match=0, next=self.last_index + 1)

    def _check_quorum(self, now: float) -> None:
        self._check_quorum_deadline = now + self.cfg.election_timeout_s
        active = sum(1 for m, pr in self._progress.items() if pr.active and m in self.voters)
        active += self.me in self.voters
        for pr in self._progress.values():
            pr.active = False
        if active < _quorum(len(self.voters)):
            self._become_follower(self.term, "", now)

    # ------------------------------------------------------------- log changes

    def _append_local(
        self,
        kind: EntryKind,
        data: bytes = b"",
        voters: tuple[str, ...] = (),
        learners: tuple[str, ...] = (),
    ) -> Entry:
        e = Entry(self.last_index + 1, self.term, kind, data, voters, learners)
        self._log.append(e)
        self._persist(entries=(e,))
        if kind is EntryKind.CONFIG:
            self._set_config(voters, learners, e.index)
            self._sync_progress()
        self._maybe_commit()  # a single voter commits at once; a shrunk quorum may too
        for peer in sorted(self._progress):
            self._send_append(peer, self._now)
        return e

    def _truncate_and_append(self, truncate_from: int, entries: tuple[Entry, ...]) -> None:
        if truncate_from:
            assert truncate_from > self.commit, "would truncate a committed entry"
            del self._log[truncate_from - self._snap.index - 1 :]
        self._log.extend(entries)
        self._persist(truncate_from=truncate_from, entries=entries)
        if truncate_from and self._config_index >= truncate_from:
            self._load_config()
        for e in entries:
            if e.kind is EntryKind.CONFIG:
                self._set_config(e.voters, e.learners, e.index)

    def _commit_to(self, index: int) -> None:
        if index > self.commit:
            self.commit = index
            self._apply()

    def _apply(self) -> None:
        while self.applied < self.commit:
            self.applied += 1
            e = self.entry(self.applied)
            if e.kind is EntryKind.NORMAL:
                self._notify(Committed(self.group, e.index, e.term, e.data))
            elif e.kind is EntryKind.CONFIG:
                self._notify(ConfigCommitted(self.group, e.index, e.voters, e.learners))
        self._serve_reads()

    def _maybe_commit(self) -> bool:
        if self.role is not Role.LEADER:
            return False
        matches = [pr.match for m, pr in self._progress.items() if m in self.voters]
        if self.me in self.voters:
            matches.append(self.last_index)
        q = _quorum(len(self.voters))
        if len(matches) < q:
            return False
        matches.sort(reverse=True)
        index = matches[q - 1]
        if index <= self.commit or self.term_at(index) != self.term:  # §5.4.2
            return False
        first_read = self.commit < self._term_start <= index
        self._commit_to(index)
        if first_read:  # reads that waited for this term's first commit
            for r in self._reads:
                if r.index < 0:
                    r.index = self.commit
            if self._reads:
                self._start_read_round(self._now)
        removed = self.me not in self.voters and self._config_index <= self.commit
        if self.role is Role.LEADER and removed:  # our own removal committed: step down
            self._become_follower(self.term, "", self._now)
        return True

    # ------------------------------------------------------------- replication

    def _send_append(self, peer: str, now: float, allow_empty: bool = False) -> None:
        pr = self._progress[peer]
        if pr.flow is _Flow.SNAPSHOT or (pr.flow is _Flow.PROBE and pr.paused):
            return
        sent = False
        while True:
            if pr.flow is _Flow.REPLICATE and len(pr.inflight) >= self.cfg.max_inflight_msgs:
                return
            prev = pr.next - 1
            prev_term = self.term_at(prev)
            if prev_term is None:  # compacted: only a snapshot can catch it up
                self._send_snapshot(peer, pr, now)
                return
            hi = min(self.last_index, prev + self.cfg.max_entries_per_msg)
            ents = tuple(self._log[prev - self._snap.index : hi - self._snap.index])
            if not ents and (sent or not allow_empty):
                return
            self._send(
                peer,
                AppendEntries(self.group, self.me, self.term, prev, prev_term, ents, self.commit),
            )
            sent = True
            if pr.flow is _Flow.PROBE:
                pr.paused = True
                return
            if ents:
                pr.inflight.append(ents[-1].index)
                pr.next = ents[-1].index + 1
            if pr.next > self.last_index:
                return

    def _send_snapshot(self, peer: str, pr: _Progress, now: float) -> None:
        self.stats.snapshots_sent += 1
        pr.flow = _Flow.SNAPSHOT
        pr.pending_snapshot = self._snap.index
        pr.snapshot_sent_s = now
        pr.inflight.clear()
        self._send(peer, InstallSnapshot(self.group, self.me, self.term, self._snap))

    def _broadcast_heartbeat(self, now: float) -> None:
        for peer in sorted(self._progress):
            pr = self._progress[peer]
            if (
                pr.flow is _Flow.SNAPSHOT
                and now - pr.snapshot_sent_s >= self.cfg.election_timeout_s
            ):
                pr.become_probe()  # the snapshot (or its answer) was lost: offer it again
                self._send_append(peer, now)
            commit = min(self.commit, pr.match)
            self._send(peer, Heartbeat(self.group, self.me, self.term, commit, self._read_ctx))

    def _start_read_round(self, now: float) -> None:
        self._read_ctx += 1
        for r in self._reads:
            if r.index >= 0 and not r.confirmed and r.ctx == 0:
                r.ctx = self._read_ctx
        self._confirm_reads()
        if self._reads:
            self._broadcast_heartbeat(now)

    def _confirm_reads(self) -> None:
        q = _quorum(len(self.voters))
        for r in self._reads:
            if r.confirmed or r.ctx == 0:
                continue
            acks = int(self.me in self.voters) + sum(
                1 for m, pr in self._progress.items() if m in self.voters and pr.read_ctx >= r.ctx
            )
            if acks >= q:
                r.confirmed = True
        self._serve_reads()

    def _serve_reads(self) -> None:
        while self._reads and self._reads[0].confirmed and self._reads[0].index <= self.applied:
            r = self._reads.popleft()
            self._notify(ReadReady(self.group, r.read, r.index))

    # --------------------------------------------------------------- messages

    def _step(self, m: Message, now: float) -> None:
        if m.term > self.term:
            if isinstance(m, VoteRequest):
                if self._in_lease(now):
                    self.stats.ignored_in_lease += 1
                    if m.pre_vote:
                        self._send(m.src, VoteResponse(self.group, self.me, self.term, False, True))
                    return
                if not m.pre_vote:
                    self._become_follower(m.term, "", now)
            elif isinstance(m, VoteResponse) and m.pre_vote and m.granted:
                pass  # a pre-vote grant carries the term we would campaign in
            elif isinstance(m, AppendEntries | Heartbeat | InstallSnapshot):
                self._become_follower(m.term, m.src, now)
            else:
                self._become_follower(m.term, "", now)
        elif m.term < self.term:
            self.stats.stale_term += 1
            if isinstance(m, AppendEntries | Heartbeat | InstallSnapshot):
                # tell a deposed leader about the newer term (it would otherwise wait
                # for check-quorum), as etcd does with pre-vote and check-quorum on
                self._send(m.src, AppendResponse(self.group, self.me, self.term, False, 0))
            elif isinstance(m, VoteRequest) and m.pre_vote:
                self._send(m.src, VoteResponse(self.group, self.me, self.term, False, True))
            return

        if isinstance(m, VoteRequest):
            self._on_vote_request(m, now)
        elif isinstance(m, VoteResponse):
            if (
                self.role is Role.PRE_CANDIDATE
                and m.pre_vote
                or self.role is Role.CANDIDATE
                and not m.pre_vote
            ):
                self._votes[m.src] = m.granted
                self._tally(now)
        elif isinstance(m, AppendEntries | Heartbeat | InstallSnapshot):
            if self.role is Role.LEADER:
                self.stats.foreign += 1  # two leaders in one term: impossible, drop it
                return
            if self.role is not Role.FOLLOWER or self.leader != m.src:
                self._become_follower(self.term, m.src, now)
            self._leader_contact_s = now
            self._reset_election_timer(now)
            if isinstance(m, AppendEntries):
                self._on_append(m)
            elif isinstance(m, Heartbeat):
                self._commit_to(min(m.commit, self.last_index))
                self._send(m.src, HeartbeatResponse(self.group, self.me, self.term, m.ctx))
            else:
                self._on_snapshot(m)
        elif self.role is Role.LEADER:
            pr = self._progress.get(m.src)
            if pr is None:
                self.stats.foreign += 1
                return
            pr.active = True
            if isinstance(m, AppendResponse):
                self._on_append_response(m, pr, now)
            else:
                self._on_heartbeat_response(m, pr, now)

    def _on_vote_request(self, m: VoteRequest, now: float) -> None:
        up_to_date = (m.last_term, m.last_index) >= (self.last_term, self.last_index)
        if m.pre_vote:
            grant = up_to_date and m.term > self.term
            term = m.term if grant else self.term
            self._send(m.src, VoteResponse(self.group, self.me, term, grant, True))
            return
        # A member that knows no configuration (created empty, waiting for its leader)
        # votes for nobody: it holds no log to compare, and may have voted in this term
        # before its state was dissolved.
        can_vote = bool(self.voters) and (self.vote == m.src or (not self.vote and not self.leader))
        grant = can_vote and up_to_date
        if grant:
            self.vote = m.src
            self._persist()
            self._reset_election_timer(now)
        self._send(m.src, VoteResponse(self.group, self.me, self.term, grant))

    def _on_append(self, m: AppendEntries) -> None:
        if m.prev_index < self.commit:
            self._send(m.src, AppendResponse(self.group, self.me, self.term, True, self.commit))
            return
        if self.term_at(m.prev_index) != m.prev_term:
            self.stats.rejected_appends += 1
            hint = min(m.prev_index, self.last_index)
            hint = self._find_conflict_by_term(hint, m.prev_term)
            hint_term = self.term_at(hint) or 0
            self._send(
                m.src,
                AppendResponse(
                    self.group, self.me, self.term, False, m.prev_index, hint, hint_term
                ),
            )
            return
        new = m.entries
        for k, e in enumerate(m.entries):
            t = self.term_at(e.index)
            if t != e.term:
                new = m.entries[k:]
                break
        else:
            new = ()
        if new:
            first = new[0].index
            self._truncate_and_append(first if first <= self.last_index else 0, new)
        last_new = m.prev_index + len(m.entries)
        self._commit_to(min(m.commit, last_new))
        self._send(m.src, AppendResponse(self.group, self.me, self.term, True, last_new))

    def _find_conflict_by_term(self, index: int, term: int) -> int:
        """The largest index <= ``index`` whose term is <= ``term`` (or the snapshot's)."""
        while index > self._snap.index:
            t = self.term_at(index)
            if t is None or t <= term:
                break
            index -= 1
        return index

    def _on_snapshot(self, m: InstallSnapshot) -> None:
        s = m.snapshot
        if s.index <= self.commit:
            self._send(m.src, AppendResponse(self.group, self.me, self.term, True, self.commit))
            return
        if self.term_at(s.index) == s.term:  # our log already has it: just commit
            self._commit_to(s.index)
            self._send(m.src, AppendResponse(self.group, self.me, self.term, True, s.index))
            return
        self.stats.snapshots_installed += 1
        self._log.clear()
        self._snap = s
        self._persist(snapshot=s, truncate_from=s.index + 1)
        self._load_config()
        self.commit = self.applied = s.index
        self._notify(SnapshotRestored(self.group, s))
        self._serve_reads()
        self._send(m.src, AppendResponse(self.group, self.me, self.term, True, s.index))

    def _on_append_response(self, m: AppendResponse, pr: _Progress, now: float) -> None:
        if not m.success:
            if m.index == 0 and m.hint_index == 0:
                return  # a stale-term notice answered at equal term: nothing to do
            hint = m.hint_index
            if m.hint_term > 0:
                hint = self._find_conflict_by_term(m.hint_index, m.hint_term)
            if pr.flow is _Flow.REPLICATE:
                if m.index <= pr.match:
                    return  # stale
                pr.become_probe()
            elif pr.flow is _Flow.PROBE:
                if pr.next - 1 != m.index:
                    return  # stale
                pr.next = max(min(m.index, hint + 1), pr.match + 1)
                pr.paused = False
            else:
                return
            self._send_append(m.src, now)
            return
        if m.index > pr.match:
            pr.match = m.index
            pr.next = max(pr.next, m.index + 1)
            updated = True
        else:
            updated = False
        while pr.inflight and pr.inflight[0] <= m.index:
            pr.inflight.popleft()
        if pr.flow is _Flow.PROBE and (updated or m.index == pr.match):
            pr.become_replicate()
        elif pr.flow is _Flow.SNAPSHOT and pr.match >= pr.pending_snapshot:
            pr.become_probe()
            pr.become_replicate()
        if updated and self._maybe_commit():
            if self.role is not Role.LEADER:
                return
            for peer in sorted(self._progress):
                self._send_append(peer, now, allow_empty=True)
        elif m.src in self._progress:
            self._send_append(m.src, now)

    def _on_heartbeat_response(self, m: HeartbeatResponse, pr: _Progress, now: float) -> None:
        pr.paused = False
        if pr.flow is _Flow.REPLICATE and len(pr.inflight) >= self.cfg.max_inflight_msgs:
            pr.inflight.popleft()  # an append was probably lost: let one more through
        if pr.match < self.last_index:
            self._send_append(m.src, now, allow_empty=True)
        if m.ctx > pr.read_ctx:
            pr.read_ctx = m.ctx
            self._confirm_reads()


# --------------------------------------------------------------------- storage


class MemoryStorage:
    """Reference ``Persist`` executor: what a member would find on disk after a restart."""

    def __init__(self, state: DurableState) -> None:
        self.term = state.term
        self.vote = state.vote
        self.snapshot = state.snapshot
        self.entries: list[Entry] = list(state.entries)

    def apply(self, p: Persist) -> None:
        self.term, self.vote = p.term, p.vote
        if p.snapshot is not None:
            self.snapshot = p.snapshot
            self.entries = [e for e in self.entries if e.index > p.snapshot.index]
        if p.truncate_from:
            self.entries = [e for e in self.entries if e.index < p.truncate_from]
        self.entries.extend(p.entries)
        first = self.snapshot.index + 1
        assert all(e.index == first + k for k, e in enumerate(self.entries)), "log gap"

    def state(self) -> DurableState:
        return DurableState(self.term, self.vote, self.snapshot, tuple(self.entries))
