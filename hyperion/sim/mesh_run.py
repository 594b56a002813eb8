"""Whole machine-plane nodes (``MeshNode``) on the simulated network, versions mixed.

``WireVersion`` wraps a core so that the simulator hands it, and takes from it, exactly
what crosses the wire between nodes of different protocol versions: every message is
encoded with the sender's schema and decoded with the receiver's (``codec`` with
``version``), so fields a version-1 node does not know are really dropped.

``build_mesh`` makes a mesh of ``MeshNode``s with real keys, SPIFFE ids and node
records (a ``versions`` list picks each node's protocol version; version-1 nodes also
behave like release 0.1 in pub/sub: no CHOKE, no IDONTWANT). Tests and the mixed-version
checks use it; the large-scale experiments drive the individual cores directly.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from hyperion import PROTOCOL_VERSION, protocols_spoken, software_version
from hyperion.core import Core, Effect, Send
from hyperion.identity.keys import NodeKey
from hyperion.identity.spiffe import node_spiffe_id
from hyperion.mesh.crypto import node_record_policy, verify_message, verify_record
from hyperion.mesh.membership import PROFILES
from hyperion.mesh.node import MeshNode, RecordEvent, RevocationCheck
from hyperion.mesh.pubsub import PubSubConfig
from hyperion.mesh.records import NodeRecord, build_record
from hyperion.net import codec
from hyperion.sim import rtt as rtt_mod
from hyperion.sim.dht_run import sim_key
from hyperion.sim.engine import Simulator

TRUST_DOMAIN = "sim.hyperion"


class WireVersion:
    """A core as a node of protocol ``version`` runs it: messages pass its schema."""

    def __init__(self, core: Core, version: int) -> None:
        self.core = core
        self.version = version

    def handle(self, msg: object, now: float) -> list[Effect]:
        seen = codec.decode(codec.encode(msg), version=self.version)
        return self.outbound(self.core.handle(seen, now))

    def tick(self, now: float) -> list[Effect]:
        return self.outbound(self.core.tick(now))

    def next_deadline(self) -> float | None:
        return self.core.next_deadline()

    def outbound(self, effects: list[Effect]) -> list[Effect]:
        out: list[Effect] = []
        for e in effects:
            if type(e) is Send:
                wire = codec.decode(codec.encode(e.msg, version=self.version))
                e = Send(e.dest, e.addr, wire)
            out.append(e)
        return out


@dataclass
class SimMesh:
    sim: Simulator
    keys: list[NodeKey]
    nodes: list[MeshNode]
    versions: list[int]
    records: list[NodeRecord]
    events: list[tuple[float, int, RecordEvent]] = field(default_factory=list)

    def start(self, i: int, at: float, seed_node: int = 0) -> None:
        """Node ``i`` joins through ``seed_node`` and publishes its record at ``at``."""

        def go() -> None:
            node = self.nodes[i]
            seeds = [] if i == seed_node else [self.nodes[seed_node].addr]
            fx = node.join(seeds, self.sim.now)
            fx += node.set_record(self.records[i].to_bytes(self.versions[i]), self.sim.now)
            self.sim.inject(i, self._wrap(i, fx))

        self.sim.at(at, go)

    def _wrap(self, i: int, fx: list[Effect]) -> list[Effect]:
        core = self.sim.cores[i]
        return core.outbound(fx) if isinstance(core, WireVersion) else fx

    def knows(self, i: int) -> set[str]:
        return set(self.nodes[i].directory)


def build_mesh(
    n: int,
    *,
    seed: int = 1,
    versions: Sequence[int] | None = None,
    loss: float = 0.0,
    check_revocation: RevocationCheck | None = None,
) -> SimMesh:
    matrix = rtt_mod.load()
    sim = Simulator(seed, matrix, loss=loss)
    versions = list(versions or [PROTOCOL_VERSION] * n)
    keys = [sim_key(seed, i) for i in range(n)]
    nodes: list[MeshNode] = []
    records: list[NodeRecord] = []
    for i, key in enumerate(keys):
        v = versions[i]
        addr = f"sim://{i}"
        node = MeshNode(
            key.node_id,
            addr,
            name=f"node-{i}",
            public_key=key.public_bytes,
            sign=key.sign,
            verify_record=verify_record,
            verify_message=verify_message,
            may_write=node_record_policy,
            encode_record=codec.encode_record,
            decode_record=codec.decode_record,
            rng=random.Random(seed * 7919 + i),
            now=0.0,
            swim=PROFILES["lan"],
            pubsub=PubSubConfig.for_version(v),
            check_revocation=check_revocation,
        )
        nodes.append(node)
        cloud, region = matrix.regions[i % len(matrix.regions)].split(":", 1)
        records.append(
            build_record(
                node_id=key.node_id,
                spiffe_id=node_spiffe_id(TRUST_DOMAIN, key.node_id),
                name=f"node-{i}",
                mesh_addr=addr,
                api_addr="",
                labels={"cloud": cloud, "region": region},
                software_version=software_version(v),
                protocol_versions=protocols_spoken(v),
                now_unix=0.0,
                cpu_millis=4000,
                memory_bytes=16 << 30,
                egress_price_per_gb=0.09 if v >= 2 else 0.0,
            )
        )
        core: Core = node if v == PROTOCOL_VERSION else WireVersion(node, v)
        sim.add_node(addr, core, region=i % len(matrix.regions))
    mesh = SimMesh(sim, keys, nodes, versions, records)

    def on_notify(i: int, ev: object, now: float) -> None:
        if isinstance(ev, RecordEvent):
            mesh.events.append((now, i, ev))

    sim.on_notify = on_notify
    return mesh
