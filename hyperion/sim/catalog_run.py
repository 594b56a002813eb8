"""``hyperion sim catalog``: the object catalog at scale, through a partition and its heal.

Catalog cores alone (no membership, no API) on the simulated network: nodes spread
round-robin (in seeded random order) over the measured regions, one-way latency from
the measured RTTs, random ``loss`` on every message. Every node has the same static,
full peer list (one shared ``PeerSet``): as if membership had converged and never
changed. So during the partition about half of the rounds pick a peer on the other
side and are cut (a real node would have marked those peers dead and would have to
meet them again after the heal; this run measures the catalog, not that rejoin).

Workload: ``writes`` writes at evenly spaced times over ``[0, heal_at)``, each by a
random node on a random key of a pool of ``keys`` ConfigMaps (about 150 bytes of JSON
each); a ``delete_fraction`` of them are deletes (a delete on a node that does not hold
the key live is a no-op, reported as ``deletes_noop``). From ``partition_at`` to
``heal_at`` the nodes are split into two random halves. The pool is small (100 keys
by default for 1,000 writes) so both halves write the same keys: ``conflicts`` counts
the keys written on both sides during the partition.

Checker: the expected final catalog is the last-writer-wins state over every write
(each writer's timestamp is read back right after its write), as a digest. After the
heal, every ``check_s`` the run compares every node's digest; ``converged_s_after_heal``
is the first check at which all are identical (the run stops there: no write comes
after the heal, so it stays so), ``identical`` whether that happened within
``tail_s``, and ``correct`` whether the common digest is the expected one.

``messages`` counts every message sent (cut and lost ones included);
``bytes_per_node_per_s`` is sealed envelope bytes sent per node per simulated second
over the whole run, computed exactly from the protobuf encoding. Memory: each core
keeps at least ``log_max`` = 64 changes (the daemon keeps 100,000 for watches; 10,000
nodes x 1,000 changes would be ~1 GiB of log that no one reads here).
"""

from __future__ import annotations

import gc
import random
import time
from dataclasses import dataclass
from typing import Any

from hyperion.control.catalog import (
    Catalog,
    CatalogConfig,
    CatalogDelta,
    CatalogDigest,
    CatalogItem,
    Key,
    PeerSet,
    entry_hash,
)
from hyperion.control.hlc import Timestamp
from hyperion.core import Send
from hyperion.net.codec import catalog_body_size, catalog_item_size, envelope_size
from hyperion.sim import rtt as rtt_mod
from hyperion.sim.engine import Simulator
from hyperion.sim.membership_run import sim_node_id
from hyperion.sim.metrics import peak_rss_mib

RESOURCE = "/configmaps"
NAMESPACE = "default"
SIM_LOG_MAX = 64  # changes kept per core (see the module docstring)


@dataclass
class CatalogExperiment:
    nodes: int
    seed: int
    writes: int = 1000
    loss: float = 0.0
    partition_at: float = 10.0
    heal_at: float = 30.0
    keys: int = 100
    delete_fraction: float = 0.2
    round_s: float = CatalogConfig().round_s
    tail_s: float = 30.0  # longest wait for convergence after the heal
    check_s: float = 0.05
    trace: bool = False

    def __post_init__(self) -> None:
        if self.nodes < 2:
            raise ValueError("--nodes must be at least 2")
        if self.writes < 1:
            raise ValueError("--writes must be at least 1")
        if self.keys < 1:
            raise ValueError("--keys must be at least 1")
        if not 0.0 <= self.loss < 1.0:
            raise ValueError("--loss must be in [0, 1)")
        if not 0.0 <= self.partition_at <= self.heal_at or self.heal_at <= 0:
            raise ValueError("need 0 <= --partition-at <= --heal-at and --heal-at > 0")
        if not 0.0 <= self.delete_fraction <= 1.0:
            raise ValueError("--delete-fraction must be in [0, 1]")
        if self.round_s <= 0:
            raise ValueError("--round-s must be positive")

    def run(self) -> dict[str, object]:
        wall0 = time.perf_counter()
        n = self.nodes
        rng = random.Random(self.seed)
        matrix = rtt_mod.load()
        sim = Simulator(self.seed, matrix, loss=self.loss, trace=self.trace)
        regions = list(range(len(matrix.regions)))
        rng.shuffle(regions)
        config = CatalogConfig(round_s=self.round_s, log_max=SIM_LOG_MAX)
        peers = PeerSet()
        cores: list[Catalog] = []
        for i in range(n):
            c = Catalog(
                sim_node_id(self.seed, i),
                f"sim://{i}",
                rng=random.Random(self.seed * 7919 + i),
                now=0.0,
                config=config,
                peers=peers,
            )
            cores.append(c)
            peers.add(c.node_id, c.addr)
            sim.add_node(c.addr, c, region=regions[i % len(regions)])

        order = list(range(n))
        rng.shuffle(order)
        side = [0] * n
        for i in order[n // 2 :]:
            side[i] = 1
        sim.at(
            self.partition_at,
            lambda: sim.cut([i for i in range(n) if not side[i]], [i for i in range(n) if side[i]]),
        )
        sim.at(self.heal_at, sim.heal)

        # Workload, with the LWW expectation and the conflicts it creates.
        pool: list[Key] = [(RESOURCE, NAMESPACE, f"cm-{k}") for k in range(self.keys)]
        latest: dict[Key, tuple[Timestamp, bool]] = {}
        written_by: dict[Key, set[int]] = {}
        tally = {"puts": 0, "deletes": 0, "deletes_noop": 0}
        spacing = self.heal_at / self.writes
        for q in range(self.writes):
            i = rng.randrange(n)
            key = rng.choice(pool)
            delete = rng.random() < self.delete_fraction

            def go(q: int = q, i: int = i, key: Key = key, delete: bool = delete) -> None:
                c = cores[i]
                obj: dict[str, Any] | None = None
                if not delete:
                    obj = {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": key[2], "namespace": key[1]},
                        "data": {"write": str(q), "writer": c.node_id[:12]},
                    }
                change, effects = c.write(key, obj, sim.now)
                if change is None:
                    tally["deletes_noop"] += 1
                    return
                tally["deletes" if delete else "puts"] += 1
                e = c.entry(key)
                assert e is not None
                if key not in latest or e.ts > latest[key][0]:
                    latest[key] = (e.ts, delete)
                if self.partition_at <= sim.now < self.heal_at:
                    written_by.setdefault(key, set()).add(side[i])
                sim.inject(i, effects)

            sim.at(q * spacing, go)

        sent_bytes = [0]
        last: list[Any] = [None, 0]
        # Versions travel as shared objects: size each once (kept alive here, so ids stay
        # unique).
        sizes: dict[int, tuple[CatalogItem, int]] = {}

        def item_size(it: CatalogItem) -> int:
            got = sizes.get(id(it))
            if got is None:
                got = sizes[id(it)] = (it, catalog_item_size(it))
            return got[1]

        def on_send(i: int, eff: Send, now: float) -> None:
            msg = eff.msg
            if msg is not last[0]:  # a push goes to push_fanout peers as one object
                last[0] = msg
                assert type(msg) is CatalogDigest or type(msg) is CatalogDelta
                last[1] = envelope_size(catalog_body_size(msg, item_size))
            sent_bytes[0] += last[1]

        sim.on_send = on_send

        # Nothing here makes reference cycles: reference counting frees everything, and
        # the cyclic collector's passes over millions of live objects cost ~20 % of a
        # 10,000-node run. Results are the same either way.
        gc_was = gc.isenabled()
        gc.disable()
        try:
            return self._finish(sim, cores, latest, written_by, tally, sent_bytes, wall0)
        finally:
            if gc_was:
                gc.enable()

    def _finish(
        self,
        sim: Simulator,
        cores: list[Catalog],
        latest: dict[Key, tuple[Timestamp, bool]],
        written_by: dict[Key, set[int]],
        tally: dict[str, int],
        sent_bytes: list[int],
        wall0: float,
    ) -> dict[str, object]:
        n = self.nodes
        sim.run(self.heal_at)
        expected = 0
        for key, (ts, tomb) in latest.items():
            expected ^= entry_hash(key, ts, tomb)
        want = expected.to_bytes(8, "big")
        converged_at: float | None = None
        t = self.heal_at
        end = self.heal_at + self.tail_s
        while t <= end:
            sim.run(t)
            first = cores[0].digest()
            if all(c.digest() == first for c in cores):
                converged_at = t
                break
            t += self.check_s
        first = cores[0].digest()
        identical = all(c.digest() == first for c in cores)
        duration = sim.now
        totals: dict[str, int] = {}
        for c in cores:
            for k, v in c.stats().items():
                totals[k] = totals.get(k, 0) + v
        result: dict[str, object] = {
            "nodes": n,
            "seed": self.seed,
            "writes": self.writes,
            "keys": self.keys,
            "loss": self.loss,
            "partition_at": self.partition_at,
            "heal_at": self.heal_at,
            "round_s": self.round_s,
            "puts": tally["puts"],
            "deletes": tally["deletes"],
            "deletes_noop": tally["deletes_noop"],
            "conflicts": sum(1 for s in written_by.values() if len(s) == 2),
            "converged_s_after_heal": (
                None if converged_at is None else round(converged_at - self.heal_at, 3)
            ),
            "identical": identical,
            "correct": identical and first == want,
            "entries": cores[0].stats()["entries"],
            "tombstones": cores[0].stats()["tombstones"],
            "messages": sim.stats.sent,
            "lost": sim.stats.lost,
            "cut": sim.stats.cut,
            "bytes_per_node_per_s": round(sent_bytes[0] / n / duration, 1),
            "deferred_items": totals["deferred_items"],
            "rejected": totals["rejected"],
            "simulated_s": round(duration, 3),
            "wall_s": round(time.perf_counter() - wall0, 3),
            "peak_rss_mib": round(peak_rss_mib(), 1),
        }
        if self.trace:
            result["trace"] = sim.trace_digest()
        return result


def sim_catalog(
    nodes: int,
    seed: int = 1,
    *,
    writes: int = 1000,
    loss: float = 0.0,
    partition_at: float = 10.0,
    heal_at: float = 30.0,
    keys: int = 100,
    trace: bool = False,
) -> dict[str, object]:
    """Run one catalog experiment (see the module docstring) and return its metrics."""
    return CatalogExperiment(
        nodes=nodes,
        seed=seed,
        writes=writes,
        loss=loss,
        partition_at=partition_at,
        heal_at=heal_at,
        keys=keys,
        trace=trace,
    ).run()
