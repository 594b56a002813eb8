"""``hyperion sim gossip``: gossip pub/sub at scale on the measured inter-region RTTs.

Every node has a real Ed25519 key (derived from the seed), is spread over the real
regions, and is connected to ``peers`` random others on average (a symmetric random
graph, as a connection manager would keep). The run is honest from the start: at time 0
every node subscribes to one topic, announces that to its peers, and the meshes form by
GRAFT at the heartbeats. After ``warmup_s``, ``messages`` messages are published 100 ms
apart by random nodes; the run continues ``tail_s`` so lazy repair (IHAVE/IWANT) can
finish. Loss applies to every message, control traffic included.

Signatures are real; since verifying one signature is a pure function of the message,
the run verifies each distinct message once and reuses the answer for the other nodes
(that saves ~n Ed25519 verifications per message of wall time and changes nothing else).

Reported: ``reach99_s`` — per message, the time from publish until 99% of the other
subscribers delivered it; ``delivery_ratio`` over all (message, subscriber) pairs;
``duplicates_per_delivery`` — copies received after the first, per first receipt;
``bytes_per_node_per_s`` — sealed envelope bytes sent during the measurement window
(publish to end of tail), computed exactly from the protobuf encoding.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from hyperion.core import Send
from hyperion.mesh.crypto import verify_message
from hyperion.mesh.pubsub import Delivery, Message, PubSub, Rpc
from hyperion.net.codec import envelope_size, rpc_body_size
from hyperion.sim import rtt as rtt_mod
from hyperion.sim.dht_run import sim_key
from hyperion.sim.engine import Simulator
from hyperion.sim.metrics import peak_rss_mib, percentile, rounded

TOPIC = "hyperion/bench"
PUBLISH_SPACING_S = 0.1


@dataclass
class GossipExperiment:
    nodes: int
    seed: int
    messages: int = 20
    loss: float = 0.0
    peers: int = 20
    message_bytes: int = 256
    warmup_s: float = 4.0
    tail_s: float = 5.0

    def __post_init__(self) -> None:
        if self.nodes < 2:
            raise ValueError("--nodes must be at least 2")
        if self.messages < 1:
            raise ValueError("--messages must be at least 1")
        if not 0.0 <= self.loss < 1.0:
            raise ValueError("--loss must be in [0, 1)")
        if self.peers < 1:
            raise ValueError("--peers must be at least 1")

    def run(self) -> dict[str, object]:
        wall0 = time.perf_counter()
        n = self.nodes
        rng = random.Random(self.seed)
        matrix = rtt_mod.load()
        sim = Simulator(self.seed, matrix, loss=self.loss)
        regions = list(range(len(matrix.regions)))
        rng.shuffle(regions)
        keys = [sim_key(self.seed, i) for i in range(n)]
        verified: dict[Message, bool] = {}

        def verify(m: Message) -> bool:
            ok = verified.get(m)
            if ok is None:
                ok = verified[m] = verify_message(m)
            return ok

        cores: list[PubSub] = []
        for i, key in enumerate(keys):
            core = PubSub(
                key.node_id,
                f"sim://{i}",
                public_key=key.public_bytes,
                sign=key.sign,
                verify=verify,
                rng=random.Random(self.seed * 7919 + i),
                now=0.0,
            )
            cores.append(core)
            sim.add_node(core.addr, core, region=regions[i % len(regions)])
        # Connections: each node dials peers/2 random others; links are symmetric.
        half = max(1, self.peers // 2)
        for i, core in enumerate(cores):
            for j in rng.sample(range(n - 1), min(half, n - 1)):
                j = j + 1 if j >= i else j
                core.add_peer(cores[j].node_id, cores[j].addr)
                cores[j].add_peer(core.node_id, core.addr)
        for i, core in enumerate(cores):
            sim.at(
                rng.random(), lambda i=i, core=core: sim.inject(i, core.subscribe(TOPIC, sim.now))
            )

        published: dict[tuple[str, int], int] = {}
        pub_time: list[float] = []
        got: list[list[float]] = [[] for _ in range(self.messages)]

        def on_notify(i: int, ev: object, now: float) -> None:
            if type(ev) is Delivery and ev.from_peer != cores[i].node_id:
                q = published.get(ev.message.mid)
                if q is not None:
                    got[q].append(now)

        sim.on_notify = on_notify
        window_start = self.warmup_s
        sent_bytes = [0]
        last: list[object] = [None, 0]

        def on_send(i: int, eff: Send, now: float) -> None:
            if now < window_start:
                return
            msg = eff.msg
            if msg is not last[0]:  # a forward goes to ~d peers as one object
                last[0] = msg
                last[1] = envelope_size(rpc_body_size(msg)) if type(msg) is Rpc else 0
            sent_bytes[0] += last[1]  # type: ignore[operator]

        sim.on_send = on_send
        payload = bytes(self.message_bytes)
        for q in range(self.messages):
            origin = rng.randrange(n)

            def go(q: int = q, origin: int = origin) -> None:
                msg, effects = cores[origin].publish(TOPIC, payload, sim.now)
                published[msg.mid] = q
                pub_time.append(sim.now)
                sim.inject(origin, effects)

            sim.at(self.warmup_s + q * PUBLISH_SPACING_S, go)
        end = self.warmup_s + self.messages * PUBLISH_SPACING_S + self.tail_s
        sim.run(end)

        others = n - 1
        need = math.ceil(0.99 * others)
        reach = []
        for q, times in enumerate(got):
            times.sort()
            reach.append(times[need - 1] - pub_time[q] if len(times) >= need else math.inf)
        delivered = sum(len(t) for t in got)
        dups = sum(c.counters.get("duplicates", 0) for c in cores)
        finite = [r for r in reach if math.isfinite(r)]
        mesh_sizes = [float(len(c.mesh.get(TOPIC, ()))) for c in cores]
        return {
            "nodes": n,
            "seed": self.seed,
            "messages": self.messages,
            "loss": self.loss,
            "peers": self.peers,
            "reach99_s_p50": rounded(percentile(reach, 50)) if finite else None,
            "reach99_s_p99": rounded(percentile(reach, 99)) if len(finite) == len(reach) else None,
            "reached99": f"{len(finite)}/{len(reach)}",
            "delivery_ratio": round(delivered / (self.messages * others), 6),
            "duplicates_per_delivery": round(dups / max(1, delivered), 3),
            "bytes_per_node_per_s": round(sent_bytes[0] / n / (end - window_start), 1),
            "mesh_degree_p50": rounded(percentile(mesh_sizes, 50)),
            "iwant_served": sum(c.counters.get("iwant_served", 0) for c in cores),
            "sim_messages": sim.stats.sent,
            "wall_s": round(time.perf_counter() - wall0, 3),
            "peak_rss_mib": round(peak_rss_mib(), 1),
        }
