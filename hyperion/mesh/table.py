"""Columnar membership view: one integer per member, so 10,000 nodes x 10,000 views fit.

A member's state at one node is a single key

    key = incarnation * 4 + rank        rank: ALIVE=1 < SUSPECT=2 < DEAD=3   (0 = unknown)

and SWIM's override rules (SWIM §4.2: alive(i) beats suspect/dead(j) iff i > j;
suspect(i) beats alive(j) iff i >= j; dead(i) beats both iff i >= j) are exactly
"the larger key wins". The view is therefore a join-semilattice: merging two views is an
element-wise max, which is how push-pull anti-entropy merges whole tables at once.

``Directory`` interns node ids to dense slots and remembers each member's address and
name; it holds no protocol state (no one's opinion about anyone), so simulated nodes may
share one directory to save memory while real nodes each own theirs.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

ALIVE = 1
SUSPECT = 2
DEAD = 3
STATE_NAMES = {ALIVE: "alive", SUSPECT: "suspect", DEAD: "dead"}


def make_key(incarnation: int, rank: int) -> int:
    return (incarnation << 2) | rank


class Directory:
    """Interns node ids to dense slots; keeps the last known address and name of each.

    Also keeps the slots sorted by id (as integers) for range broadcasts; the order is
    rebuilt lazily after new ids arrive.
    """

    __slots__ = ("_slots", "ids", "addrs", "names", "_sorted", "_id_tuple")

    def __init__(self) -> None:
        self._slots: dict[str, int] = {}
        self.ids: list[str] = []
        self.addrs: list[str] = []
        self.names: list[str] = []
        self._sorted: tuple[list[int], list[int]] | None = None
        self._id_tuple: tuple[str, ...] = ()

    def id_tuple(self) -> tuple[str, ...]:
        """Every id in slot order, as one shared tuple (ids only ever get appended)."""
        if len(self._id_tuple) != len(self.ids):
            self._id_tuple = tuple(self.ids)
        return self._id_tuple

    def sorted_index(self) -> tuple[list[int], list[int]]:
        """(id values ascending, their slots) over every id ever seen."""
        if self._sorted is None or len(self._sorted[0]) != len(self.ids):
            order = sorted(range(len(self.ids)), key=lambda s: int(self.ids[s], 16))
            self._sorted = ([int(self.ids[s], 16) for s in order], order)
        return self._sorted

    def __len__(self) -> int:
        return len(self.ids)

    def slot(self, node_id: str, addr: str = "", name: str = "") -> int:
        """The slot of ``node_id``, created on first sight; a non-empty addr/name updates it."""
        s = self._slots.get(node_id)
        if s is None:
            s = len(self.ids)
            self._slots[node_id] = s
            self.ids.append(node_id)
            self.addrs.append(addr)
            self.names.append(name)
            return s
        if addr and self.addrs[s] != addr:
            self.addrs[s] = addr
        if name and self.names[s] != name:
            self.names[s] = name
        return s

    def find(self, node_id: str) -> int | None:
        return self._slots.get(node_id)

    def find_many(self, node_ids: Sequence[str]) -> list[int | None]:
        return list(map(self._slots.get, node_ids))


class MemberTable:
    """One node's view: a growable array of keys indexed by directory slot.

    Keys live in an ``array.array`` (indexing yields plain ints, which the per-message
    paths need to be fast); ``view()`` gives a zero-copy numpy view for the
    whole-table operations (push-pull merges, snapshots).
    """

    __slots__ = (
        "keys",
        "typecode",
        "dtype_max_incarnation",
        "alive",
        "suspect",
        "dead",
        "dead_slots",
    )

    def __init__(self, dtype: npt.DTypeLike = np.uint32, capacity: int = 64) -> None:
        dt = np.dtype(dtype)
        codes = {np.dtype(np.uint16): "H", np.dtype(np.uint32): "I", np.dtype(np.uint64): "Q"}
        if dt not in codes:
            raise ValueError("member table keys must be uint16, uint32 or uint64")
        self.typecode = codes[dt]
        self.keys: array[int] = array(self.typecode, bytes(dt.itemsize * capacity))
        self.dtype_max_incarnation = int(np.iinfo(dt).max) >> 2
        self.alive = 0
        self.suspect = 0
        self.dead = 0
        self.dead_slots: list[int] = []  # ascending; kept by set() and recount()

    def view(self) -> npt.NDArray[np.unsignedinteger]:
        """A numpy view of the keys; invalid after the table grows."""
        return np.frombuffer(self.keys, dtype=self.keys.typecode)

    def ensure(self, n: int) -> None:
        have = len(self.keys)
        if n > have:
            grow = max(n, 2 * have) - have
            self.keys.frombytes(bytes(self.keys.itemsize * grow))

    def get(self, slot: int) -> int:
        return self.keys[slot] if slot < len(self.keys) else 0

    def set(self, slot: int, key: int) -> None:
        """Store ``key`` for ``slot`` and keep the per-state counters right."""
        keys = self.keys
        if slot >= len(keys):
            self.ensure(slot + 1)
            keys = self.keys
        old = keys[slot] & 3
        new = key & 3
        keys[slot] = key
        if old == new:
            return
        # Counted inline: this runs on every state change of every view.
        if old == ALIVE:
            self.alive -= 1
        elif old == SUSPECT:
            self.suspect -= 1
        elif old == DEAD:
            self.dead -= 1
            self.dead_slots.remove(slot)
        if new == ALIVE:
            self.alive += 1
        elif new == SUSPECT:
            self.suspect += 1
        elif new == DEAD:
            self.dead += 1
            bisect.insort(self.dead_slots, slot)

    def recount(self) -> None:
        ranks = self.view() & 3
        self.alive = int(np.count_nonzero(ranks == ALIVE))
        self.suspect = int(np.count_nonzero(ranks == SUSPECT))
        self.dead = int(np.count_nonzero(ranks == DEAD))
        self.dead_slots = np.flatnonzero(ranks == DEAD).tolist() if self.dead else []
