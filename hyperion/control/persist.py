"""A node's copy of its object catalog on disk, so that objects survive a whole-mesh restart.

This module owns the directory ``DIR/nodes/NAME/catalog/`` (0700, files 0600) and all
the I/O of keeping the catalog there. It may not change the catalog except through
``Catalog.restore`` at start; the catalog core (``catalog.py``) stays sans-I/O and only
hands versions out (``items``, ``applied``).

Files
=====

* ``snapshot``: every version the catalog held at one moment (tombstones included).
* ``log.<seq>``: the versions applied after that moment, appended as they are applied:
  local writes and versions won from peers alike. A node never appends to a segment
  it did not create in this run (a crash may have torn its tail); it starts a new one.

Each file is JSON lines. Every line is ``<crc32 of the rest, 8 hex digits> <JSON>\\n``,
so a line torn by a crash, or damaged, is recognized. The first line is a header
(``{"format": "hyperion-catalog", "version": 1, "kind": "snapshot" | "log", "node",
"written_ms", and "log_seq" (snapshot: the first segment not in it) or "seq" (log)}``);
then a record per version, ``{"k": [resource, namespace, name], "t": [wall_ms,
logical, node], "n": bytes, "o": object or null}``, or an alive mark ``{"alive_ms":
N}`` (written every ``mark_s``, so the store knows how long the node has been down).

Loading (``load``) reads the snapshot, then the segments from its ``log_seq`` on, in
order. Since last-writer-wins is order-independent, replaying a version twice or an
older one after a newer is harmless; ``Catalog.restore`` keeps the largest stamp per key.

* A bad *last* line of a file (no newline, or a checksum that fails) is a write torn
  by a crash: it is skipped, counted and logged, and replay goes on.
* A bad line followed by more lines, or a checksummed line that is not a record, is
  corruption: replay stops there with a warning, keeping what came before. Peers refill
  the rest by anti-entropy.
* A file whose header is missing, not ours or of another format version is renamed to
  ``NAME.bad`` (kept for inspection) and the store is not used; an unreadable file is
  logged and skipped the same way. A bad file never stops the node.
* A store whose newest header or alive mark is older than ``tombstone_ttl_s`` is
  discarded with a log line: tombstones held by peers may have been collected while
  the node was down, so its old versions could resurrect deleted objects (the catalog's
  module docstring: such a node rejoins with an empty catalog).

Compaction (``compact``): start a new segment, take ``Catalog.items()``, write them to
``snapshot.tmp`` in a worker thread, fsync, ``os.replace`` it over ``snapshot``, fsync
the directory, then delete the older segments. A crash at any point leaves either the
old snapshot with all segments, or the new one (older segments left behind are below
its ``log_seq`` and skipped). It runs once at
every start (so a torn or corrupt file is gone once the node is up) and whenever the
segments written since the last snapshot exceed ``compact_bytes_min`` and
``compact_ratio`` times the snapshot.

Durability
==========

``save`` writes the versions applied so far with one ``write`` to the operating system;
the daemon calls it whenever the catalog reports a change, which for a local write is
before the API answers. So **a write the API acknowledged survives a crash of the node
process** (``kill -9``). The file is fsynced at most every ``fsync_s`` when something
was written (and on a clean stop), in a worker thread so the event loop does not wait:
**a write acknowledged more than fsync_s + tick_s + one fsync (0.25 s plus 0.1–7 ms on
the project's machine) before a crash of the machine or a power loss survives it.**
(An fsync before each answer would cost that fsync on every write; the README has the
numbers.) A fresh write is also pushed to 3 peers at once, so only a crash of every
holder within that window loses it. Versions applied silently (a tombstone for a key
never seen live) are written within ``tick_s``.

If writing fails (disk full, I/O error), the error is logged and counted, persistence
pauses, and a compaction (which writes the whole catalog again) is retried every
``retry_s``; the node keeps serving from memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperion import fsutil
from hyperion.control.catalog import Catalog, CatalogItem, key_error
from hyperion.control.hlc import Timestamp

log = logging.getLogger(__name__)

FORMAT = "hyperion-catalog"
FORMAT_VERSION = 1
SNAPSHOT = "snapshot"
LOG_PREFIX = "log."


@dataclass(frozen=True, slots=True)
class PersistConfig:
    tick_s: float = 0.05  # the background loop: silent versions, fsync and mark checks
    fsync_s: float = 0.2  # at most this long between a write and its fsync (plus a tick)
    mark_s: float = 60.0  # alive marks: the store's age is known to within this
    compact_bytes_min: int = 8 << 20  # segments smaller than this are never compacted
    compact_ratio: float = 2.0  # ... nor those under this many times the snapshot
    retry_s: float = 5.0  # after a write error, a compaction is retried this often

    def __post_init__(self) -> None:
        if min(self.tick_s, self.fsync_s, self.mark_s, self.retry_s) <= 0:
            raise ValueError("tick_s, fsync_s, mark_s and retry_s must be positive")


class StoreFormatError(Exception):
    """A line or header that is not what this module writes."""


@dataclass
class Loaded:
    """What ``load`` found: the versions to restore and what went wrong on the way."""

    items: list[CatalogItem] = field(default_factory=list)
    files: int = 0  # files read (snapshot and segments)
    records: int = 0  # version records read (before ``Catalog.restore`` picks)
    torn: int = 0  # torn last lines skipped
    corrupt: str | None = None  # where replay stopped, if it did
    bad_files: list[str] = field(default_factory=list)  # refused (renamed .bad or unreadable)
    stale_s: float | None = None  # set when the store was discarded as too old
    last_mark_ms: int | None = None  # the newest header or alive mark


# ------------------------------------------------------------------------ lines


def encode_line(payload: dict[str, Any]) -> bytes:
    """One checksummed line: ``<crc32 hex> <compact JSON>\\n``."""
    raw = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return b"%08x %s\n" % (zlib.crc32(raw), raw)


def record_payload(it: CatalogItem) -> dict[str, Any]:
    ts = it.ts
    return {"k": it.key, "t": [ts.wall_ms, ts.logical, ts.node], "n": it.nbytes, "o": it.obj}


def decode_line(line: bytes) -> dict[str, Any] | None:
    """The JSON object of a line without its newline; None if the checksum fails."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    try:
        crc = int(line[:8], 16)
    except ValueError:
        return None
    raw = line[9:]
    if zlib.crc32(raw) != crc:
        return None
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise StoreFormatError(f"checksummed line is not JSON: {e}") from None
    if type(obj) is not dict:
        raise StoreFormatError("checksummed line is not a JSON object")
    return obj


def _is_int(x: object) -> bool:
    return type(x) is int


def decode_record(rec: dict[str, Any]) -> CatalogItem | int:
    """A record line's version, or an alive mark's wall_ms; StoreFormatError otherwise."""
    if rec.keys() == {"alive_ms"} and _is_int(rec["alive_ms"]):
        return int(rec["alive_ms"])
    if rec.keys() != {"k", "t", "n", "o"}:
        raise StoreFormatError(f"not a record: fields {sorted(rec)}")
    k, t, n, o = rec["k"], rec["t"], rec["n"], rec["o"]
    if type(k) is not list or key_error(tuple(k)) is not None:
        raise StoreFormatError(f"bad key {k!r}")
    if not (
        type(t) is list
        and len(t) == 3
        and _is_int(t[0])
        and _is_int(t[1])
        and type(t[2]) is str
        and t[0] >= 0
        and t[1] >= 0
    ):
        raise StoreFormatError(f"bad timestamp {t!r}")
    if not (_is_int(n) and n >= 0) or not (o is None or type(o) is dict):
        raise StoreFormatError("bad object or size")
    return CatalogItem((k[0], k[1], k[2]), Timestamp(t[0], t[1], t[2]), o, n)


def _check_header(hdr: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    if hdr is None:
        raise StoreFormatError("missing or damaged header")
    if hdr.get("format") != FORMAT:
        raise StoreFormatError("not a catalog store")
    if hdr.get("version") != FORMAT_VERSION:
        raise StoreFormatError(
            f"format version {hdr.get('version')!r}, this node reads {FORMAT_VERSION}"
        )
    seq_field = "log_seq" if kind == "snapshot" else "seq"
    if hdr.get("kind") != kind or not _is_int(hdr.get("written_ms")):
        raise StoreFormatError(f"header is not a {kind} header")
    if not _is_int(hdr.get(seq_field)):
        raise StoreFormatError(f"header lacks {seq_field}")
    return hdr


# ----------------------------------------------------------------------- store


class CatalogStore:
    """The on-disk copy of one node's catalog (see the module docstring).

    Use: ``open(catalog, now)`` (= ``load``, ``Catalog.restore``, ``start``) before any
    peer traffic; ``save()`` whenever the catalog reports a change; ``run()`` as a
    task; ``await close()`` on a clean stop.
    """

    def __init__(
        self,
        path: Path,
        node_id: str,
        *,
        tombstone_ttl_s: float,
        config: PersistConfig | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.node_id = node_id
        self.tombstone_ttl_s = tombstone_ttl_s
        self.config = config or PersistConfig()
        self._wall = wall
        self.counters: dict[str, int] = {}
        self._catalog: Catalog | None = None
        self._fd: int | None = None  # the current segment, opened by this run
        self._seq = 0  # the current segment's number
        self._buf: list[bytes] = []
        self._dirty = False  # written since the last fsync
        self._failed = False  # a write failed: paused until a compaction succeeds
        self._log_bytes = 0  # segments written since the last snapshot
        self._snapshot_bytes = 0
        self._last_fsync = 0.0
        self._last_mark = 0.0
        self._lock = asyncio.Lock()  # the current segment's fd: rotation vs fsync

    def _inc(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def stats(self) -> dict[str, int]:
        out = dict(self.counters)
        out["log_bytes"] = self._log_bytes
        out["snapshot_bytes"] = self._snapshot_bytes
        out["failed"] = int(self._failed)
        return out

    # ---------------------------------------------------------------- loading

    def _segments(self) -> list[tuple[int, Path]]:
        out = []
        with contextlib.suppress(FileNotFoundError):
            for p in self.path.iterdir():
                if p.name.startswith(LOG_PREFIX) and p.name[len(LOG_PREFIX) :].isdigit():
                    out.append((int(p.name[len(LOG_PREFIX) :]), p))
        return sorted(out)

    def load(self) -> Loaded:
        """Read the store (never raises for what is in it; see the module docstring)."""
        out = Loaded()
        try:
            self._load(out)
        except OSError as e:  # the directory itself is unreadable
            log.warning("catalog store %s unreadable, starting empty: %s", self.path, e)
            out.bad_files.append(str(self.path))
            out.items = []
        except Exception:  # a bug here must not stop the node: start empty, say why
            log.exception("catalog store %s could not be loaded, starting empty", self.path)
            out.bad_files.append(str(self.path))
            out.items = []
        if out.items and out.last_mark_ms is not None:
            age_s = self._wall() - out.last_mark_ms / 1000.0
            if age_s > self.tombstone_ttl_s:
                log.warning(
                    "catalog store %s last written %.0f s ago, more than the tombstone TTL "
                    "(%.0f s): discarded, the node rejoins with an empty catalog",
                    self.path,
                    age_s,
                    self.tombstone_ttl_s,
                )
                out.stale_s = age_s
                out.items = []
        self._inc("load_records", out.records)
        self._inc("load_torn", out.torn)
        self._inc("load_corrupt", out.corrupt is not None)
        self._inc("load_stale", out.stale_s is not None)
        if out.items:
            log.info(
                "catalog store %s: %d records from %d files (%d torn lines skipped)",
                self.path,
                len(out.items),
                out.files,
                out.torn,
            )
        return out

    def _load(self, out: Loaded) -> None:
        if not self.path.exists():
            return
        first_seq = 0
        snap = self.path / SNAPSHOT
        if snap.exists():
            hdr = self._read(snap, "snapshot", out)
            if hdr is None:
                out.items = []  # without its snapshot the segments are not the catalog
                return
            first_seq = int(hdr["log_seq"])
            self._snapshot_bytes = snap.stat().st_size
        for seq, seg in self._segments():
            if seq < first_seq or out.corrupt is not None:
                continue
            if self._read(seg, "log", out) is None:
                return  # a refused segment stops the replay like a corrupt record

    def _read(self, path: Path, kind: str, out: Loaded) -> dict[str, Any] | None:
        """Append ``path``'s versions to ``out``; its header, or None if refused."""
        try:
            data = path.read_bytes()
        except OSError as e:
            log.warning("catalog store file %s unreadable, not used: %s", path, e)
            out.bad_files.append(str(path))
            return None
        lines = data.split(b"\n")  # the last element is b"" iff the file ends with \n
        if kind == "log" and len(lines) == 1:  # created, header not (fully) written
            self._torn(path, 0, out)
            return {}
        try:
            hdr = _check_header(decode_line(lines[0]) if len(lines) > 1 else None, kind)
        except StoreFormatError as e:
            bad = path.with_name(path.name + ".bad")
            log.warning("catalog store file %s refused (%s); kept as %s", path, e, bad.name)
            with contextlib.suppress(OSError):
                os.replace(path, bad)
            out.bad_files.append(str(path))
            return None
        out.files += 1
        mark = int(hdr["written_ms"])
        last = len(lines) - 1  # index of the part after the final newline
        for i in range(1, len(lines)):
            line = lines[i]
            if i == last:
                if line:  # no newline at the end: a torn write
                    self._torn(path, i, out)
                break
            try:
                rec = decode_line(line)
                if rec is None:
                    if i == last - 1:  # the final line: torn (or zeroed) by a crash
                        self._torn(path, i, out)
                        break
                    raise StoreFormatError("checksum mismatch")
                got = decode_record(rec)
            except StoreFormatError as e:
                out.corrupt = f"{path.name} line {i + 1}: {e}"
                log.warning(
                    "catalog store %s corrupt at line %d (%s): replay stops there; "
                    "peers refill the rest",
                    path,
                    i + 1,
                    e,
                )
                break
            if type(got) is int:
                mark = max(mark, got)
            else:
                assert isinstance(got, CatalogItem)
                out.items.append(got)
                out.records += 1
        out.last_mark_ms = mark if out.last_mark_ms is None else max(out.last_mark_ms, mark)
        return hdr

    def _torn(self, path: Path, i: int, out: Loaded) -> None:
        out.torn += 1
        log.warning("catalog store %s: torn last line %d skipped", path, i + 1)

    def open(self, catalog: Catalog, now: float) -> Loaded:
        """A node's start: ``load``, ``catalog.restore`` what was found, ``start``."""
        loaded = self.load()
        self._inc("restored", catalog.restore(loaded.items, now))
        self.start(catalog)
        return loaded

    # ---------------------------------------------------------------- writing

    def start(self, catalog: Catalog) -> None:
        """Begin logging ``catalog``'s applied versions into a new segment."""
        self._catalog = catalog
        catalog.track_applied()
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.path, 0o700)
            self._seq = max((s for s, _ in self._segments()), default=0) + 1
            self._fd = self._open_segment(self._seq)
        except OSError as e:
            self._fail("open", e)
        self._last_mark = self._last_fsync = time.monotonic()

    def _header(self, kind: str, seq: int) -> bytes:
        seq_field = "log_seq" if kind == "snapshot" else "seq"
        return encode_line(
            {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "kind": kind,
                "node": self.node_id,
                "written_ms": int(self._wall() * 1000),
                seq_field: seq,
            }
        )

    def _open_segment(self, seq: int) -> int:
        p = self.path / f"{LOG_PREFIX}{seq:08d}"
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            hdr = self._header("log", seq)
            os.write(fd, hdr)
        except OSError:
            os.close(fd)
            raise
        self._log_bytes += len(hdr)
        self._dirty = True
        return fd

    def save(self) -> None:
        """Write the versions the catalog applied since the last call (one ``write``)."""
        cat = self._catalog
        if cat is None:
            return
        items = cat.applied()
        if self._failed:
            return  # the compaction being retried will write the whole catalog
        if items:
            self._buf.extend(encode_line(record_payload(it)) for it in items)
            self._inc("records", len(items))
        if self._buf:
            self._write()

    def _write(self) -> None:
        data = b"".join(self._buf)
        self._buf.clear()
        if self._fd is None:
            return
        try:
            n = 0
            while n < len(data):
                n += os.write(self._fd, data[n:])
        except OSError as e:
            self._fail("write", e)
            return
        self._log_bytes += len(data)
        self._inc("bytes_written", len(data))
        self._dirty = True

    def _fail(self, what: str, e: OSError) -> None:
        self._inc("errors")
        if not self._failed:
            log.error(
                "catalog store %s: %s failed (%s); persistence paused, retrying a "
                "compaction every %.0f s",
                self.path,
                what,
                e,
                self.config.retry_s,
            )
        self._failed = True
        self._buf.clear()

    async def fsync(self) -> None:
        """Make what was written durable (in a worker thread)."""
        async with self._lock:
            fd = self._fd
            if fd is None or not self._dirty:
                return
            self._dirty = False
            self._last_fsync = time.monotonic()
            try:
                await asyncio.to_thread(os.fsync, fd)
            except OSError as e:
                self._fail("fsync", e)
                return
            self._inc("fsyncs")

    def _mark(self) -> None:
        self._buf.append(encode_line({"alive_ms": int(self._wall() * 1000)}))
        self._write()

    def due_for_compaction(self) -> bool:
        c = self.config
        return self._log_bytes > max(c.compact_bytes_min, c.compact_ratio * self._snapshot_bytes)

    async def compact(self) -> bool:
        """Write the whole catalog as the new snapshot and drop the older segments."""
        cat = self._catalog
        assert cat is not None, "start() first"
        t0 = time.monotonic()
        try:
            async with self._lock:
                # No await until the new segment is current: every version applied
                # before it is in ``items``, every later one goes to segment ``seq``.
                self.save()
                self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
                seq = max((s for s, _ in self._segments()), default=0) + 1
                new_fd = self._open_segment(seq)
                old_fd, self._fd, self._seq = self._fd, new_fd, seq
                self._log_bytes = 0
                items = cat.items()
                header = self._header("snapshot", seq)
                if old_fd is not None:
                    try:
                        await asyncio.to_thread(os.fsync, old_fd)
                    finally:
                        os.close(old_fd)
            size = await asyncio.to_thread(self._write_snapshot, header, items)
            for s, p in self._segments():
                if s < seq:
                    p.unlink(missing_ok=True)
        except OSError as e:
            self._fail("compaction", e)
            return False
        self._snapshot_bytes = size
        if self._failed:
            log.info("catalog store %s: writing again", self.path)
        self._failed = False
        self._inc("compactions")
        log.info(
            "catalog store %s compacted: %d versions, %d bytes in %.3f s",
            self.path,
            len(items),
            size,
            time.monotonic() - t0,
        )
        return True

    def _write_snapshot(self, header: bytes, items: list[CatalogItem]) -> int:
        tmp = self.path / (SNAPSHOT + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        size = 0
        try:
            with os.fdopen(fd, "wb", buffering=1 << 20, closefd=False) as f:
                f.write(header)
                size += len(header)
                for it in items:  # one line at a time: the GIL passes to the event loop
                    line = encode_line(record_payload(it))
                    f.write(line)
                    size += len(line)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path / SNAPSHOT)
        fsutil.fsync_dir(self.path)  # the rename and the new segment's entry, before deletes
        return size

    async def run(self) -> None:
        """Compact once at start, then write silent versions, fsync, mark and compact."""
        c = self.config
        await self.compact()
        last_try = time.monotonic()
        while True:
            await asyncio.sleep(c.tick_s)
            now = time.monotonic()
            self.save()
            if self._failed:
                if now - last_try >= c.retry_s:
                    last_try = now
                    await self.compact()
                continue
            if now - self._last_mark >= c.mark_s:
                self._last_mark = now
                self._mark()
            if self._dirty and now - self._last_fsync >= c.fsync_s:
                await self.fsync()
            if self.due_for_compaction():
                await self.compact()

    async def close(self) -> None:
        """Write and fsync what is pending, then close (a clean stop)."""
        if self._catalog is None:
            return
        self.save()
        if self._failed:
            await self.compact()  # one more try to leave the whole catalog behind
        await self.fsync()
        async with self._lock:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = None
        self._catalog = None
