"""Hybrid logical clocks (Kulkarni, Demirbas et al., "Logical Physical Clocks", OPODIS 2014).

A timestamp is ``(wall_ms, logical, node)``: the largest wall-clock millisecond this
node has seen (its own clock or any timestamp it received), a counter that orders
events within that millisecond, and the node id as the final tie-break, so two
timestamps from different nodes are never equal. Timestamps order lexicographically.

Theory of operation (the paper's Fig. 5, with the send/receive cases split):

* ``now(wall_s)`` — a local event: if the physical clock moved past the last timestamp,
  take it with ``logical = 0``; otherwise keep the last wall value and count up.
* ``observe(ts, wall_s)`` — a received timestamp: remember it if it is later than
  anything held. The next ``now`` is then strictly greater than ``ts`` whatever the
  local clock says, which is what makes a write after a read win under last-writer-wins.

A remote clock far ahead drags this clock with it (that is the price of HLC's bounded
divergence). It is still merged — refusing it would stall the object it stamps — but
every timestamp more than ``max_skew_ms`` ahead of the local wall clock is counted in
``skewed``, and the largest lead seen is kept in ``max_ahead_ms``, so the drift shows.

The clock reads no time itself: callers pass ``wall_s`` (seconds since the epoch).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_SKEW_MS = 60_000  # a minute: NTP-synced hosts are within tens of ms; this flags broken ones


@dataclass(frozen=True, order=True, slots=True)
class Timestamp:
    wall_ms: int
    logical: int
    node: str  # tie-break: the node id that stamped it


class Hlc:
    """One node's hybrid logical clock (see the module docstring)."""

    __slots__ = ("node", "max_skew_ms", "wall_ms", "logical", "skewed", "max_ahead_ms")

    def __init__(self, node: str, *, max_skew_ms: int = MAX_SKEW_MS) -> None:
        self.node = node
        self.max_skew_ms = max_skew_ms
        self.wall_ms = 0
        self.logical = 0
        self.skewed = 0  # remote timestamps more than max_skew_ms ahead of our wall clock
        self.max_ahead_ms = 0

    def now(self, wall_s: float) -> Timestamp:
        """A timestamp for a local event, later than every timestamp made or observed."""
        pt = int(wall_s * 1000)
        if pt > self.wall_ms:
            self.wall_ms = pt
            self.logical = 0
        else:
            self.logical += 1
        return Timestamp(self.wall_ms, self.logical, self.node)

    def observe(self, ts: Timestamp, wall_s: float) -> None:
        """Merge a timestamp received from another node."""
        ahead = ts.wall_ms - int(wall_s * 1000)
        if ahead > self.max_skew_ms:
            self.skewed += 1
            self.max_ahead_ms = max(self.max_ahead_ms, ahead)
        if ts.wall_ms > self.wall_ms or (ts.wall_ms == self.wall_ms and ts.logical > self.logical):
            self.wall_ms = ts.wall_ms
            self.logical = ts.logical
