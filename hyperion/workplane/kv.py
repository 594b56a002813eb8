"""The key-value state machine of a strong workload's Raft group (DESIGN §8). Sans-I/O.

Every member applies the same committed entries in the same order and so holds the
same map ``key -> (value, version)``. A key's *version* is the log index of the entry
that last wrote it: it only grows, it is the same on every member, and a client can
hand it back as an ETag (Dapr's first-write-wins / optimistic concurrency) with
``expect_version``. This module owns the command encoding, the apply rule, the
snapshot format and the client request/reply messages a follower forwards to the
leader; it owns no Raft state, no bytes on disk and no I/O.

Theory of operation
===================

*Commands* are canonical JSON (sorted keys, value in base64), so the bytes a leader
proposes are the bytes every member applies. ``put`` and ``delete`` carry an optional
``expect`` version: ``None`` writes unconditionally, ``0`` requires that the key does
not exist, ``n > 0`` requires that its current version is ``n``. A failed condition
changes nothing and yields ``CONFLICT`` on every member alike (the entry still takes
its index: the rule is deterministic, so it is applied, not rejected). A command that
does not decode — impossible from our own proposers, so a bug or a newer version —
is applied as a no-op and counted, never raised: one member must not diverge from the
others by crashing on an entry they skipped.

*Snapshots* are canonical JSON of the whole map with the index they reflect;
``restore`` replaces the map. The driver compacts the Raft log with them.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from dataclasses import dataclass

MAX_KEY_CHARS = 1024  # Dapr keys are "<app-id>||<key>"; etcd's default limit is 1.5 MiB
MAX_VALUE_BYTES = 512 << 10  # base64 grows it by a third, under raft_codec.MAX_ENTRY_BYTES


class StoreOp(enum.IntEnum):
    GET = 1
    PUT = 2
    DELETE = 3


class StoreCode(enum.IntEnum):
    OK = 1
    NOT_FOUND = 2
    CONFLICT = 3  # the expected version did not match
    NOT_LEADER = 4  # ``leader``: the hint, "" when unknown
    UNAVAILABLE = 5  # no quorum within the wait, or the write's outcome is unknown
    FORBIDDEN = 6  # the forwarding node is neither a member nor a replica's node


@dataclass(frozen=True, slots=True)
class StoreRequest:
    """A client request forwarded to the group's leader (``src``: the forwarding node)."""

    group: str
    src: str
    id: int
    op: StoreOp
    key: str
    value: bytes = b""
    expect_version: int | None = None


@dataclass(frozen=True, slots=True)
class StoreReply:
    group: str
    src: str
    id: int
    code: StoreCode
    version: int = 0
    value: bytes = b""
    leader: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class Result:
    """What applying one command did: ``code`` is OK, NOT_FOUND or CONFLICT."""

    code: StoreCode
    version: int = 0  # OK: the key's version now (0 after a delete)
    current: int = 0  # CONFLICT: the key's version when the command applied (0: absent)


@dataclass(slots=True)
class KvStats:
    applied: int = 0
    conflicts: int = 0
    undecodable: int = 0  # entries applied as no-ops (see the module docstring)


class KvError(ValueError):
    """A local caller broke the API's rules (key or value out of bounds)."""


def check_key(key: str) -> None:
    if not 0 < len(key) <= MAX_KEY_CHARS:
        raise KvError(f"a key must be 1..{MAX_KEY_CHARS} characters")


def encode_put(key: str, value: bytes, expect_version: int | None = None) -> bytes:
    check_key(key)
    if len(value) > MAX_VALUE_BYTES:
        raise KvError(f"a value must be at most {MAX_VALUE_BYTES} bytes")
    if expect_version is not None and expect_version < 0:
        raise KvError("expect_version must be >= 0")
    doc = {"op": "put", "k": key, "v": base64.b64encode(value).decode(), "e": expect_version}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def encode_delete(key: str, expect_version: int | None = None) -> bytes:
    check_key(key)
    if expect_version is not None and expect_version < 0:
        raise KvError("expect_version must be >= 0")
    doc = {"op": "del", "k": key, "e": expect_version}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


class KvStore:
    """The map of one group's member; ``apply`` committed entries in index order."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, int]] = {}
        self.index = 0  # the last index applied (or restored)
        self.stats = KvStats()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> tuple[bytes, int] | None:
        """(value, version), or None when absent. Linearizable only after a ReadIndex."""
        return self._data.get(key)

    def items(self) -> list[tuple[str, bytes, int]]:
        return [(k, v, ver) for k, (v, ver) in sorted(self._data.items())]

    def apply(self, index: int, data: bytes) -> Result:
        """Apply committed entry ``index``. Indexes must increase (asserted)."""
        assert index > self.index, f"apply({index}) after {self.index}"
        self.index = index
        self.stats.applied += 1
        cmd = _decode(data)
        if cmd is None:
            self.stats.undecodable += 1
            return Result(StoreCode.NOT_FOUND)
        op, key, value, expect = cmd
        cur = self._data.get(key)
        current = 0 if cur is None else cur[1]
        if expect is not None and expect != current:
            self.stats.conflicts += 1
            return Result(StoreCode.CONFLICT, current=current)
        if op == "put":
            self._data[key] = (value, index)
            return Result(StoreCode.OK, version=index)
        if cur is None:
            return Result(StoreCode.NOT_FOUND)
        del self._data[key]
        return Result(StoreCode.OK, version=0)

    def mark(self, index: int) -> None:
        """An entry that is not a command (no-op, configuration) took ``index``."""
        assert index > self.index
        self.index = index

    def snapshot(self) -> bytes:
        doc = {
            "index": self.index,
            "keys": [
                [k, base64.b64encode(v).decode(), ver] for k, (v, ver) in sorted(self._data.items())
            ],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def restore(self, index: int, data: bytes) -> None:
        """Replace everything by snapshot ``data`` taken at ``index`` (b"": empty)."""
        self._data = {}
        self.index = index
        if not data:
            return
        doc = json.loads(data)
        for k, v, ver in doc["keys"]:
            self._data[str(k)] = (base64.b64decode(v), int(ver))


def _decode(data: bytes) -> tuple[str, str, bytes, int | None] | None:
    try:
        doc = json.loads(data)
        op, key, expect = doc["op"], doc["k"], doc["e"]
        value = base64.b64decode(doc["v"], validate=True) if op == "put" else b""
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    if op not in ("put", "del") or not isinstance(key, str) or not key:
        return None
    if expect is not None and (not isinstance(expect, int) or expect < 0):
        return None
    return op, key, value, expect
