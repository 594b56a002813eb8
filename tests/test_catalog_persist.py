"""The catalog on disk: the core's export/journal/restore, and the store (persist.py).

Core tests drive ``Catalog`` directly with explicit ``now``; store tests use a tmp
directory, a fake wall clock and ``asyncio.run`` for the few coroutines.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import stat
from pathlib import Path
from typing import Any

import pytest
from test_catalog import K1, K2, Net, obj

from hyperion.control.catalog import (
    EVENT_TTL_S,
    Catalog,
    CatalogConfig,
    CatalogDelta,
    CatalogItem,
    Expired,
    Key,
)
from hyperion.control.hlc import Timestamp
from hyperion.control.persist import (
    FORMAT_VERSION,
    SNAPSHOT,
    CatalogStore,
    PersistConfig,
    encode_line,
)

WALL0 = 1_700_000_000.0  # the Net's wall_offset
K3: Key = ("/services", "default", "gone")
K4: Key = ("/services", "default", "never")


def fresh(node: str = "r0", **kw: Any) -> Catalog:
    return Catalog(
        node, f"mem://{node}", rng=random.Random(3), now=0.0, wall_offset=WALL0 + 100.0, **kw
    )


def populated() -> Net:
    """Two nodes with live objects, a delete, and a tombstone n1 never saw live."""
    net = Net(2)
    net.write(0, K1, obj(1))
    net.write(1, K2, obj("web"))
    net.write(0, K3, obj("x"))
    net.deliver()
    net.write(1, K3, None)
    net.write(0, K1, obj(2))
    net.stabilize()
    return net


def state(c: Catalog) -> dict[Key, tuple[Timestamp, Any]]:
    return {it.key: (it.ts, it.obj) for it in c.items()}


# ------------------------------------------------------------------------ core


def test_export_restore_round_trip_gives_equal_digest_get_and_list() -> None:
    src = populated().cores[0]
    dst = fresh(rv_start=5_000)
    items = src.items()
    assert len(items) == 3 and sum(it.obj is None for it in items) == 1
    assert dst.restore(reversed(items), 1.0) == 3  # order does not matter
    assert dst.digest() == src.digest()
    assert state(dst) == state(src)
    for k in (K1, K2, K3):
        a, b = src.get(k), dst.get(k)
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert (a.obj, a.ts) == (b.obj, b.ts)
    for resource in ("/configmaps", "apps/deployments", "/services"):
        assert [(e.key, e.obj) for e in dst.list(resource)] == [
            (e.key, e.obj) for e in src.list(resource)
        ]
    # A fresh start at the new rv: two live objects took an rv each; no change log,
    # so a watch from before the restart is told to relist.
    assert dst.rv == 5_002 and dst.changes_since(dst.rv) == []
    with pytest.raises(Expired):
        dst.changes_since(5_000)
    assert {dst.get(K1).rv, dst.get(K2).rv} == {5_001, 5_002}  # type: ignore[union-attr]
    assert dst.stats()["restored"] == 3 and dst.counters["applied"] == 0


def test_restore_sends_and_journals_nothing_and_later_changes_are_journaled() -> None:
    src = populated().cores[0]
    dst = fresh()
    dst.peer_up("n0", "mem://0")
    dst.track_applied()
    dst.restore(src.items(), 1.0)
    assert dst.applied() == []
    assert dst.next_deadline() is not None  # only the anti-entropy round
    _, fx = dst.write(K4, obj("new"), 2.0)
    assert [it.key for it in dst.applied()] == [K4]
    assert dst.applied() == []  # drained
    # A version won from a peer is journaled too, a silent tombstone included.
    peer = Net(1).cores[0]
    peer.write(("/services", "default", "other"), obj(1), 0.0)
    peer.write(("/services", "default", "other"), None, 0.1)
    dst.handle(CatalogDelta(peer.node_id, peer.addr, False, tuple(peer.items())), 3.0)
    assert [(it.key, it.obj) for it in dst.applied()] == [(("/services", "default", "other"), None)]


def test_restore_ignores_older_and_equal_versions() -> None:
    old = CatalogItem(K1, Timestamp(1_700_000_000_000, 0, "a"), obj("old"), 10)
    new = CatalogItem(K1, Timestamp(1_700_000_000_500, 0, "b"), obj("new"), 10)
    for order in ([old, new], [new, old], [new, new, old]):
        c = fresh()
        c.restore(order, 0.0)
        assert c.get(K1).obj == obj("new")  # type: ignore[union-attr]
        assert c.rv == 1 + (order[0] is old)  # each stored live version took an rv
    c = fresh()
    c.restore([new, old, new], 0.0)
    assert c.counters["restore_ignored_older"] == 2 and c.counters["restored"] == 1


def test_expired_tombstones_are_not_restored_and_fresh_ones_block_older_writes() -> None:
    ttl = 600.0
    c = fresh(config=CatalogConfig(tombstone_ttl_s=ttl))
    wall_ms = int((WALL0 + 100.0) * 1000)
    expired = CatalogItem(K1, Timestamp(wall_ms - int(ttl * 1000) - 1, 0, "a"), None)
    fresh_tomb = CatalogItem(K2, Timestamp(wall_ms - 1000, 0, "a"), None)
    older_live = CatalogItem(K2, Timestamp(wall_ms - 2000, 0, "b"), obj(1), 9)
    assert c.restore([expired, fresh_tomb, older_live], 0.0) == 1
    assert c.entry(K1) is None and c.counters["restore_ignored_expired_tombstone"] == 1
    e = c.entry(K2)
    assert e is not None and e.obj is None and c.get(K2) is None
    assert c.stats()["tombstones"] == 1 and c.rv == 0  # no visible change
    # ... and the restored tombstone is collected at its TTL like any other.
    c.tick(ttl)
    assert c.entry(K2) is None


def test_restored_events_past_their_ttl_come_back_as_their_tombstones() -> None:
    c = fresh()
    wall_ms = int((WALL0 + 100.0) * 1000)
    ttl_ms = int(EVENT_TTL_S * 1000)
    old = CatalogItem(("/events", "default", "old"), Timestamp(wall_ms - ttl_ms, 0, "a"), {}, 2)
    new = CatalogItem(("/events", "default", "new"), Timestamp(wall_ms - 1000, 0, "a"), {}, 2)
    assert c.restore([old, new], 0.0) == 2
    assert c.get(old.key) is None and c.entry(old.key).ts.wall_ms == wall_ms  # type: ignore[union-attr]
    assert c.get(new.key) is not None and c.counters["restore_expired"] == 1
    c.tick(EVENT_TTL_S)  # the live one expires on schedule
    assert c.get(new.key) is None


def test_hlc_after_restore_beats_restored_stamps() -> None:
    c = fresh()
    wall_ms = int((WALL0 + 100.0) * 1000)
    ahead = Timestamp(wall_ms + 30_000, 7, "zz")  # stamped by a node whose clock ran ahead
    c.restore([CatalogItem(K1, ahead, obj("restored"), 9)], 0.0)
    change, _ = c.write(K1, obj("mine"), 0.1)
    assert change is not None and c.get(K1).obj == obj("mine")  # type: ignore[union-attr]
    assert c.get(K1).ts > ahead  # type: ignore[union-attr]
    # A derived write stamped after the restored version applies too.
    d = fresh()
    d.restore([CatalogItem(K1, ahead, obj("restored"), 9)], 0.0)
    change, _ = d.write(K1, obj("status"), 0.1, after=ahead)
    assert change is not None and d.get(K1).ts > ahead  # type: ignore[union-attr]


# ----------------------------------------------------------------------- store


class Wall:
    def __init__(self, t: float = WALL0 + 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def store(path: Path, wall: Wall | None = None, **kw: Any) -> CatalogStore:
    return CatalogStore(
        path, "node-a", tombstone_ttl_s=3600.0, wall=wall or Wall(), config=PersistConfig(**kw)
    )


def segment(path: Path) -> Path:
    segs = sorted(path.glob("log.*"))
    assert segs, "no segment"
    return segs[-1]


def write_some(c: Catalog, n: int = 5, t: float = 1.0) -> None:
    for i in range(n):
        c.write(("/services", "default", f"s{i}"), obj(i), t + i * 0.01)
    c.write(("/services", "default", "s0"), None, t + 1.0)


def run_store_session(path: Path, fn: Any, wall: Wall | None = None) -> Catalog:
    """A node's run: open, ``fn(catalog, store)`` (writes + saves), clean close."""
    c = fresh()
    s = store(path, wall)
    s.open(c, 0.0)
    fn(c, s)
    s.save()
    asyncio.run(s.close())
    return c


def test_write_reopen_replay(tmp_path: Path) -> None:
    path = tmp_path / "catalog"
    c = run_store_session(path, lambda c, s: write_some(c))
    loaded = store(path).load()
    assert loaded.torn == 0 and loaded.corrupt is None and loaded.records == 6
    d = fresh()
    d.restore(loaded.items, 0.0)
    assert d.digest() == c.digest() and state(d) == state(c)
    # The next run appends to a new segment, never to the old one.
    run_store_session(path, lambda c, s: c.write(K1, obj("next"), 5.0))
    assert len(list(path.glob("log.*"))) == 2
    again = fresh()
    store(path).open(again, 0.0)
    assert again.get(K1) is not None and again.get(("/services", "default", "s4")) is not None


def test_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "catalog"
    run_store_session(path, lambda c, s: write_some(c))
    s = store(path)
    c = fresh()
    s.open(c, 0.0)
    asyncio.run(s.compact())
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    for f in path.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_a_torn_last_line_is_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "catalog"
    run_store_session(path, lambda c, s: write_some(c))
    seg = segment(path)
    whole = seg.read_bytes()
    seg.write_bytes(whole + encode_line({"alive_ms": 1})[:7])  # torn mid-line
    loaded = store(path).load()
    assert loaded.torn == 1 and loaded.corrupt is None and loaded.records == 6
    # A complete last line whose checksum fails (zeroed by the crash) is torn too.
    lines = whole.split(b"\n")
    lines[-2] = b"0" * len(lines[-2])
    seg.write_bytes(b"\n".join(lines))
    loaded = store(path).load()
    assert loaded.torn == 1 and loaded.corrupt is None and loaded.records == 5


def test_a_corrupt_record_stops_the_replay_there(tmp_path: Path) -> None:
    path = tmp_path / "catalog"
    run_store_session(path, lambda c, s: write_some(c))
    seg = segment(path)
    lines = seg.read_bytes().split(b"\n")
    assert len(lines) == 1 + 6 + 1  # header, 6 records, the empty tail
    lines[3] = lines[3].replace(b'"v":2', b'"v":9')  # the third record: checksum fails
    seg.write_bytes(b"\n".join(lines))
    loaded = store(path).load()
    assert loaded.records == 2 and loaded.corrupt is not None and "line 4" in loaded.corrupt
    assert [it.key[2] for it in loaded.items] == ["s0", "s1"]
    # A checksummed line that is not a record stops it the same way.
    lines[3] = encode_line({"k": ["no-slash", "", "x"], "t": [1, 0, "a"], "n": 0, "o": None})
    seg.write_bytes(b"\n".join(line.rstrip(b"\n") for line in lines))
    loaded = store(path).load()
    assert loaded.records == 2 and "bad key" in (loaded.corrupt or "")


def test_compaction_keeps_exactly_the_latest_versions(tmp_path: Path) -> None:
    path = tmp_path / "catalog"
    c = fresh()
    s = store(path)
    s.open(c, 0.0)
    for r in range(20):  # 20 versions of each of 5 keys, then two deletes
        for i in range(5):
            c.write(("/services", "default", f"s{i}"), obj(r), 1.0 + r)
        s.save()
    c.write(("/services", "default", "s1"), None, 30.0)
    c.write(("/services", "default", "s2"), None, 30.0)
    s.save()
    first = segment(path)
    assert asyncio.run(s.compact())
    assert not first.exists()  # older segments are gone
    snap = (path / SNAPSHOT).read_bytes().split(b"\n")
    assert len(snap) == 1 + 5 + 1
    loaded = store(path).load()
    assert loaded.records == 5
    assert {it.key: it for it in loaded.items} == {it.key: it for it in c.items()}
    assert {(it.key, it.ts) for it in loaded.items} == {(it.key, it.ts) for it in c.items()}
    # Writes after the compaction go to the new segment and replay after the snapshot.
    c.write(K1, obj("after"), 40.0)
    s.save()
    asyncio.run(s.close())
    d = fresh()
    store(path).open(d, 0.0)
    assert d.digest() == c.digest()


def test_a_crash_between_snapshot_and_segment_deletion_replays_correctly(tmp_path: Path) -> None:
    path = tmp_path / "catalog"
    c = run_store_session(path, lambda c, s: write_some(c))
    kept = segment(path).read_bytes()
    s = store(path)
    c2 = fresh()
    s.open(c2, 0.0)
    c2.write(K1, obj("post"), 9.0)
    asyncio.run(s.compact())
    (path / "log.00000001").write_bytes(kept)  # as if its deletion never reached the disk
    d = fresh()
    loaded = store(path).open(d, 0.0)
    assert loaded.corrupt is None and d.digest() == c2.digest() != c.digest()


def test_a_store_older_than_the_tombstone_ttl_is_discarded(tmp_path: Path) -> None:
    path = tmp_path / "catalog"
    wall = Wall()
    run_store_session(path, lambda c, s: write_some(c), wall)
    wall.t += 3000.0
    assert store(path, wall).load().stale_s is None
    wall.t += 601.0
    loaded = store(path, wall).load()
    assert loaded.stale_s is not None and loaded.stale_s > 3600 and loaded.items == []
    # An alive mark written while the node ran keeps the store fresh.
    wall2 = Wall()
    s = store(path / "b", wall2)
    s.open(fresh(), 0.0)
    wall2.t += 3000.0
    s._mark()
    asyncio.run(s.close())
    wall2.t += 3000.0  # 6,000 s after the header, 3,000 s after the mark
    fresh_store = store(path / "b", wall2)
    assert fresh_store.load().stale_s is None


def test_bad_files_are_refused_without_raising(tmp_path: Path) -> None:
    path = tmp_path / "catalog"
    path.mkdir()
    (path / SNAPSHOT).write_bytes(b"\x00garbage\xff\n" * 3)
    c = fresh()
    s = store(path)
    loaded = s.open(c, 0.0)
    assert loaded.items == [] and loaded.bad_files and (path / "snapshot.bad").exists()
    # Another format version: refused and kept for inspection, not overwritten.
    hdr = {"format": "hyperion-catalog", "version": FORMAT_VERSION + 1, "kind": "snapshot"}
    (path / SNAPSHOT).write_bytes(encode_line({**hdr, "written_ms": 1, "log_seq": 1}))
    loaded = store(path).load()
    assert loaded.items == []
    kept = (path / "snapshot.bad").read_bytes().split(b"\n")[0]
    assert json.loads(kept[9:])["version"] == FORMAT_VERSION + 1
    # A path that is not a directory: empty start, persistence paused, no exception.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    s = store(blocker)
    c = fresh()
    assert s.open(c, 0.0).items == []
    c.write(K1, obj(1), 1.0)
    s.save()
    assert s.stats()["failed"] == 1 and s.stats()["errors"] >= 1
    assert asyncio.run(s.compact()) is False
    asyncio.run(s.close())


def test_a_failed_write_pauses_and_a_compaction_recovers(tmp_path: Path) -> None:
    path = tmp_path / "catalog"
    c = fresh()
    s = store(path)
    s.open(c, 0.0)
    c.write(K1, obj(1), 1.0)
    s.save()
    assert s._fd is not None
    os.close(s._fd)  # the next write fails with EBADF
    c.write(K2, obj(2), 2.0)
    s.save()
    assert s.stats()["failed"] == 1
    s._fd = None
    assert asyncio.run(s.compact())
    assert s.stats()["failed"] == 0
    asyncio.run(s.close())
    d = fresh()
    store(path).open(d, 0.0)
    assert d.digest() == c.digest()


def test_run_compacts_at_start_then_fsyncs_and_marks(tmp_path: Path) -> None:
    path = tmp_path / "catalog"
    run_store_session(path, lambda c, s: write_some(c))

    async def go() -> CatalogStore:
        c = fresh()
        s = store(path, tick_s=0.01, fsync_s=0.02, mark_s=0.03, compact_bytes_min=1)
        s.open(c, 0.0)
        task = asyncio.create_task(s.run())
        await asyncio.sleep(0.05)
        assert s.counters.get("compactions", 0) >= 1 and (path / SNAPSHOT).exists()
        c.write(K1, obj("x"), 1.0)  # journaled; the loop writes it
        await asyncio.sleep(0.2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await s.close()
        return s

    s = asyncio.run(go())
    assert s.counters.get("fsyncs", 0) >= 1
    loaded = store(path).load()
    assert K1 in {it.key for it in loaded.items}


# ------------------------------------------------------- the control loop after a restore


def test_a_restored_node_holds_until_the_nodes_of_its_pods_rejoin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Alone after a restore, a node would replace the replicas of peers it has not
    relearnt yet; it waits for them (and one exchange with a peer), or REJOIN_HOLD_S."""
    from types import SimpleNamespace

    from hyperion.control import driver as drv

    def pod(name: str, node: str, phase: str = "Running") -> dict[str, Any]:
        return {"metadata": {"name": name}, "spec": {"nodeName": node}, "status": {"phase": phase}}

    c = fresh()
    c.restore(
        [
            CatalogItem(("/pods", "default", n), Timestamp(1, 0, "a"), p, 9)
            for n, p in [
                ("a", pod("a", "node-1")),
                ("b", pod("b", "node-2")),
                ("c", pod("c", "node-3", "Failed")),  # finished: no need to wait for node-3
            ]
        ],
        0.0,
    )
    live: dict[str, str] = {}
    d = drv.ControlDriver(
        core=SimpleNamespace(node_id="n1", catalog=c),  # type: ignore[arg-type]
        scheduler=None,  # type: ignore[arg-type]
        node_name="node-1",
        execute=lambda fx: None,
        pods=None,  # type: ignore[arg-type]
        live_members=lambda: live,
        key=None,  # type: ignore[arg-type]
    )
    clock = [100.0]
    monkeypatch.setattr(drv.time, "monotonic", lambda: clock[0])
    d.hold_after_restore()
    assert d._hold == (100.0 + drv.REJOIN_HOLD_S, frozenset({"node-2"}))
    assert d._held()  # node-2 not live yet
    live["id2"] = "node-2"
    assert d._held()  # live, but the catalog has not been compared with a peer yet
    c.counters["in_sync"] += 1
    assert not d._held() and d._hold is None
    # Without the peer, the hold ends after REJOIN_HOLD_S.
    live.clear()
    d.hold_after_restore()
    clock[0] += drv.REJOIN_HOLD_S
    assert not d._held()
    # Nothing restored on other nodes: no hold at all.
    e = fresh()
    d2 = drv.ControlDriver(
        core=SimpleNamespace(node_id="n1", catalog=e),  # type: ignore[arg-type]
        scheduler=None,  # type: ignore[arg-type]
        node_name="node-1",
        execute=lambda fx: None,
        pods=None,  # type: ignore[arg-type]
        live_members=lambda: live,
        key=None,  # type: ignore[arg-type]
    )
    d2.hold_after_restore()
    assert d2._hold is None and not d2._held()
