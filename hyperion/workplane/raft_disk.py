"""Durable state of the Raft groups a node hosts: executes ``raft.Persist``, reloads it.

One directory per group under ``DIR/nodes/NAME/raft/`` (named by a hash of the group
id, which ``meta.json`` spells out). It holds:

* ``meta.json`` — group id and workload uid, written once when the group is created;
* ``hard.json`` — term and vote, replaced atomically (write a temporary file, fsync,
  rename, fsync the directory);
* ``snapshot.bin`` — the latest snapshot (``raft_pb2.Snapshot``), replaced atomically;
* ``log.bin`` — the entries after the snapshot, appended as records
  ``length (4 bytes) | crc32 (4 bytes) | raft_pb2.Entry`` and fsynced. A truncation or
  a new snapshot rewrites the file atomically (both are rare: a leader change with a
  divergent tail, a compaction every ``COMPACT_EVERY`` entries).

``apply`` returns only once the change is on disk, so the driver can send what follows
a ``Persist`` (the ordering contract of ``raft.py``). ``load`` tolerates a torn last
record (a crash mid-append: that append was never acknowledged, so dropping it is
safe) and refuses anything else that does not read back (``RaftDiskError``).
``remove`` deletes a group's directory (``Dissolved``).

This module owns these files only; it knows nothing of workloads or the mesh.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError

from hyperion import fsutil
from hyperion.net import raft_pb2 as pb
from hyperion.workplane.raft import DurableState, Entry, EntryKind, Persist, Snapshot
from hyperion.workplane.raft_codec import entry_pb, snapshot_pb

_REC = struct.Struct(">II")  # length, crc32


class RaftDiskError(Exception):
    """A group's files exist but do not read back."""


@dataclass(frozen=True, slots=True)
class Loaded:
    group: str
    uid: str
    state: DurableState


def _entry_bytes(e: Entry) -> bytes:
    body = entry_pb(e).SerializeToString(deterministic=True)
    return _REC.pack(len(body), zlib.crc32(body)) + body


def _entry(body: bytes) -> Entry:
    p = pb.Entry()
    p.ParseFromString(body)
    return Entry(
        p.index, p.term, EntryKind(p.kind), bytes(p.data), tuple(p.voters), tuple(p.learners)
    )


def _snapshot_bytes(s: Snapshot) -> bytes:
    return snapshot_pb(s).SerializeToString(deterministic=True)


class GroupFiles:
    """The files of one group (see the module docstring)."""

    def __init__(self, path: Path, state: DurableState) -> None:
        self.path = path
        self.term = state.term
        self.vote = state.vote
        self.snapshot = state.snapshot
        self.entries: list[Entry] = list(state.entries)
        self.fsyncs = 0

    def apply(self, p: Persist) -> None:
        rewrite = False
        if (p.term, p.vote) != (self.term, self.vote):
            self.term, self.vote = p.term, p.vote
            fsutil.atomic_write(
                self.path / "hard.json", json.dumps({"term": p.term, "vote": p.vote}).encode()
            )
            self.fsyncs += 1
        if p.snapshot is not None:
            self.snapshot = p.snapshot
            self.entries = [e for e in self.entries if e.index > p.snapshot.index]
            fsutil.atomic_write(self.path / "snapshot.bin", _snapshot_bytes(p.snapshot))
            self.fsyncs += 1
            rewrite = True
        if p.truncate_from:
            kept = [e for e in self.entries if e.index < p.truncate_from]
            rewrite = rewrite or len(kept) != len(self.entries)
            self.entries = kept
        if rewrite:
            self.entries.extend(p.entries)
            fsutil.atomic_write(
                self.path / "log.bin", b"".join(_entry_bytes(e) for e in self.entries)
            )
            self.fsyncs += 1
        elif p.entries:
            self.entries.extend(p.entries)
            with open(self.path / "log.bin", "ab") as f:
                f.write(b"".join(_entry_bytes(e) for e in p.entries))
                f.flush()
                os.fsync(f.fileno())
            self.fsyncs += 1
        first = self.snapshot.index + 1
        assert all(e.index == first + k for k, e in enumerate(self.entries)), "log gap"


class RaftDisk:
    """All groups' files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._groups: dict[str, GroupFiles] = {}

    def dir_of(self, group: str) -> Path:
        return self.root / hashlib.sha256(group.encode()).hexdigest()[:32]

    def create(self, group: str, uid: str, state: DurableState) -> GroupFiles:
        """A new group's directory; the ``Persist`` that ``RaftHost.create`` emits fills it."""
        path = self.dir_of(group)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True, mode=0o700)
        (path / "log.bin").touch()
        fsutil.atomic_write(path / "meta.json", json.dumps({"group": group, "uid": uid}).encode())
        fsutil.fsync_dir(self.root)
        files = GroupFiles(path, DurableState(0, "", Snapshot(0, 0, ()), ()))
        self._groups[group] = files
        return files

    def persist(self, p: Persist) -> None:
        self._groups[p.group].apply(p)

    def remove(self, group: str) -> None:
        self._groups.pop(group, None)
        path = self.dir_of(group)
        if path.exists():
            shutil.rmtree(path)
            fsutil.fsync_dir(self.root)

    def groups(self) -> list[str]:
        return sorted(self._groups)

    def fsyncs(self) -> int:
        return sum(g.fsyncs for g in self._groups.values())

    def load(self) -> list[Loaded]:
        """Every group on disk. A directory without ``meta.json`` (a crash while it was
        created, before anything was promised to a peer) is removed."""
        out: list[Loaded] = []
        if not self.root.exists():
            self.root.mkdir(parents=True, mode=0o700)
            return out
        for path in sorted(self.root.iterdir()):
            if not path.is_dir():
                continue
            try:
                meta = json.loads((path / "meta.json").read_text())
            except (OSError, ValueError):
                shutil.rmtree(path)
                continue
            group, uid = str(meta["group"]), str(meta["uid"])
            state = self._read(path)
            self._groups[group] = GroupFiles(path, state)
            out.append(Loaded(group, uid, state))
        return out

    @staticmethod
    def _read(path: Path) -> DurableState:
        try:
            hard = json.loads((path / "hard.json").read_text())
            term, vote = int(hard["term"]), str(hard["vote"])
        except FileNotFoundError:
            term, vote = 0, ""
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise RaftDiskError(f"{path}/hard.json: {err}") from None
        snap = Snapshot(0, 0, ())
        try:
            raw = (path / "snapshot.bin").read_bytes()
        except FileNotFoundError:
            raw = None
        if raw is not None:
            p = pb.Snapshot()
            try:
                p.ParseFromString(raw)
            except DecodeError as err:
                raise RaftDiskError(f"{path}/snapshot.bin: {err}") from None
            snap = Snapshot(p.index, p.term, tuple(p.voters), tuple(p.learners), bytes(p.data))
        entries: list[Entry] = []
        log = path / "log.bin"
        data = log.read_bytes() if log.exists() else b""
        pos = 0
        while pos < len(data):
            if pos + _REC.size > len(data):
                break  # torn header
            n, crc = _REC.unpack_from(data, pos)
            body = data[pos + _REC.size : pos + _REC.size + n]
            if len(body) < n or zlib.crc32(body) != crc:
                if pos + _REC.size + n >= len(data):
                    break  # torn last record
                raise RaftDiskError(f"{log}: corrupt record at byte {pos}")
            try:
                e = _entry(body)
            except (DecodeError, ValueError) as err:
                raise RaftDiskError(f"{log}: {err}") from None
            pos += _REC.size + n
            if e.index > snap.index:
                entries.append(e)
        if pos < len(data):
            with open(log, "r+b") as f:  # drop the torn tail so appends line up
                f.truncate(pos)
                os.fsync(f.fileno())
        first = snap.index + 1
        if any(e.index != first + k for k, e in enumerate(entries)):
            raise RaftDiskError(f"{log}: entries do not follow the snapshot")
        return DurableState(term, vote, snap, tuple(entries))
