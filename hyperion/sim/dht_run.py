"""``hyperion sim dht``: Kademlia lookups at scale on the measured inter-region RTTs.

Every node has a real Ed25519 key (derived from the seed) and its id is the key's hash.
The run starts from formed routing tables: each k-bucket holds the k lowest-RTT members
among up to 200 it has seen in its id range — proximity neighbour selection (Kademlia
§4.1, as Kad and Coral do), as after a completed join and a few refreshes. Each
looked-up record is a node record signed by its node and placed at the k nodes closest
to its key, as a publish would. A ``dead_fraction`` of the nodes is crashed and *not*
removed from anyone's table (dead and not yet detected), so lookups must time out past
them. Lookups start 5 ms
apart from random live nodes and look up random live nodes' records (FIND_VALUE).
"""

from __future__ import annotations

import bisect
import hashlib
import random
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hyperion.identity.keys import NodeKey
from hyperion.mesh.crypto import node_record_policy, signed_record, verify_record
from hyperion.mesh.dht import ID_BITS, Contact, Dht, LookupDone
from hyperion.sim import rtt as rtt_mod
from hyperion.sim.engine import Simulator
from hyperion.sim.metrics import peak_rss_mib, percentile, rounded

LOOKUP_SPACING_S = 0.005
PNS_CANDIDATES = 200  # contacts a node has seen per bucket when it picks the nearest k
RECORD_TTL_S = 3600.0


def sim_key(seed: int, i: int) -> NodeKey:
    raw = hashlib.sha256(f"hyperion-sim-key:{seed}:{i}".encode()).digest()
    return NodeKey(Ed25519PrivateKey.from_private_bytes(raw))


@dataclass
class DhtExperiment:
    nodes: int
    seed: int
    lookups: int = 1000
    dead_fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.nodes < 2:
            raise ValueError("--nodes must be at least 2")
        if self.lookups < 1:
            raise ValueError("--lookups must be at least 1")
        if not 0.0 <= self.dead_fraction < 1.0:
            raise ValueError("--dead-fraction must be in [0, 1)")

    def run(self) -> dict[str, object]:
        wall0 = time.perf_counter()
        n = self.nodes
        rng = random.Random(self.seed)
        matrix = rtt_mod.load()
        sim = Simulator(self.seed, matrix)
        keys = [sim_key(self.seed, i) for i in range(n)]
        ids = [k.node_id for k in keys]
        contacts = [Contact(ids[i], f"sim://{i}") for i in range(n)]
        regions = list(range(len(matrix.regions)))
        rng.shuffle(regions)
        cores: list[Dht] = []
        for i in range(n):
            c = Dht(
                ids[i],
                contacts[i].addr,
                rng=random.Random(self.seed * 7919 + i),
                verify=verify_record,
                may_write=node_record_policy,
            )
            cores.append(c)
            sim.add_node(c.addr, c, region=regions[i % len(regions)])
        # Formed routing tables: up to k random members of each bucket's id range.
        order = sorted(range(n), key=lambda i: int(ids[i], 16))
        values = [int(ids[i], 16) for i in order]
        region_of = [regions[i % len(regions)] for i in range(n)]
        rtt_ms = matrix.avg_ms
        for i, core in enumerate(cores):
            own = core.id_int
            for b in range(ID_BITS):
                lo = ((own >> b) ^ 1) << b
                hi = lo + (1 << b) - 1
                a, z = bisect.bisect_left(values, lo), bisect.bisect_right(values, hi)
                if z <= a:
                    continue
                span = range(a, z)
                if len(span) <= core.config.k:
                    picks = list(span)
                else:  # proximity neighbour selection: the k lowest-RTT candidates
                    cand = rng.sample(span, min(len(span), PNS_CANDIDATES))
                    cand.sort(key=lambda p: rtt_ms[region_of[i]][region_of[order[p]]])
                    picks = cand[: core.config.k]
                for pos in picks:
                    core.add_contact(contacts[order[pos]])
        dead = set(rng.sample(range(n), int(round(self.dead_fraction * n))))
        live = [i for i in range(n) if i not in dead]
        for i in dead:
            sim.crash(i)
        # Publish the looked-up records at their k closest nodes.
        targets = [rng.choice(live) for _ in range(self.lookups)]
        for t in set(targets):
            rec = signed_record(keys[t], b'{"kind":"node"}', 1, RECORD_TTL_S)
            key_int = int(ids[t], 16)
            pos = bisect.bisect_left(values, key_int)
            window = [order[p] for p in range(max(0, pos - 40), min(n, pos + 40))]
            window.sort(key=lambda j: int(ids[j], 16) ^ key_int)
            for j in window[: cores[t].config.k]:
                cores[j].records[rec.key] = rec
        results: list[LookupDone] = []

        def on_notify(i: int, ev: object, now: float) -> None:
            if isinstance(ev, LookupDone):
                results.append(ev)

        sim.on_notify = on_notify
        for q, t in enumerate(targets):
            origin = rng.choice(live)

            def go(origin: int = origin, t: int = t) -> None:
                _, effects = cores[origin].lookup(ids[t], sim.now, want_value=True)
                sim.inject(origin, effects)

            sim.at(q * LOOKUP_SPACING_S, go)
        sim.run(self.lookups * LOOKUP_SPACING_S + 60.0)
        ok = [r for r in results if r.record is not None]
        lat = [(r.finished_at - r.started_at) * 1000 for r in ok]
        hops = [float(r.hops) for r in ok]
        return {
            "nodes": n,
            "seed": self.seed,
            "lookups": self.lookups,
            "dead_fraction": self.dead_fraction,
            "success_rate": round(len(ok) / self.lookups, 4),
            "hops_p50": rounded(percentile(hops, 50)),
            "hops_p99": rounded(percentile(hops, 99)),
            "latency_ms_p50": rounded(percentile(lat, 50)),
            "latency_ms_p99": rounded(percentile(lat, 99)),
            "timeouts_per_lookup": round(sum(r.timeouts for r in results) / self.lookups, 3),
            "queried_per_lookup": round(sum(r.queried for r in results) / self.lookups, 3),
            "messages": sim.stats.sent,
            "wall_s": round(time.perf_counter() - wall0, 3),
            "peak_rss_mib": round(peak_rss_mib(), 1),
        }
