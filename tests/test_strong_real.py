"""A strong workload's Raft group on three real nodes (in one process, real mutual TLS,
real files): the group forms with three voters, a write on one node reads back
linearizably on another, a stopped leader is replaced and writes go on, a lone node
refuses writes with a clear error, restarted nodes rejoin from their files, and
deleting the workload removes the group's files everywhere (DESIGN §8)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest
from node_helpers import running, wait_for

from hyperion.api import resources, schema
from hyperion.control.strong import HWL
from hyperion.daemon import Node, NodeOptions
from hyperion.identity.ca import CertificateAuthority
from hyperion.identity.tokens import create_token
from hyperion.workplane.raft import Role
from hyperion.workplane.raft_driver import Unavailable, VersionConflict

TD = "strong.test"


def workload(replicas: int = 3) -> dict[str, Any]:
    obj = {
        "apiVersion": "hyperion.io/v1alpha1",
        "kind": "HyperionWorkload",
        "metadata": {"name": "kv", "namespace": "default", "uid": "0f0e0d0c-strong-kv"},
        "spec": {
            "replicas": replicas,
            "policy": {"consistency": "strong"},
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "command": ["sleep", "300"],
                            # one replica per node: each node has 1000m
                            "resources": {"requests": {"cpu": "600m"}},
                        }
                    ]
                }
            },
        },
    }
    rt = resources.by_kind("hyperion.io/v1alpha1", "HyperionWorkload")
    assert rt is not None
    out: dict[str, Any] = schema.apply_defaults(rt, obj)
    out["metadata"]["generation"] = 1
    out["metadata"]["creationTimestamp"] = "2025-01-01T00:00:00Z"
    return out


def opts(mesh: Path, name: str, join: list[str], token: str | None) -> NodeOptions:
    return NodeOptions(dir=mesh, name=name, join=join, token=token, cpu_millis=1000)


def group_of(node: Node) -> str | None:
    assert node.strong is not None
    gs = node.strong.host.groups()
    return gs[0] if len(gs) == 1 else None


def voters(node: Node) -> frozenset[str]:
    g = group_of(node)
    assert node.strong is not None
    return frozenset() if g is None else node.strong.host.node(g).voters


def leader_of(nodes: list[Node]) -> Node | None:
    for n in nodes:
        g = group_of(n)
        assert n.strong is not None
        if g is not None and n.strong.host.node(g).role is Role.LEADER:
            return n
    return None


def raft_files(mesh: Path, name: str) -> list[Path]:
    root = mesh / "nodes" / name / "raft"
    return sorted(root.iterdir()) if root.exists() else []


def status(node: Node) -> dict[str, Any]:
    assert node.core is not None
    cur = node.core.catalog.get((HWL, "default", "kv"))
    assert cur is not None and cur.obj is not None
    return dict(cur.obj.get("status") or {})


def test_a_strong_workload_gets_a_raft_group_that_survives_its_leader(tmp_path: Path) -> None:
    mesh = tmp_path / "mesh"
    CertificateAuthority.init(mesh, TD)
    timings: dict[str, float] = {}

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            nodes: dict[str, Node] = {}
            stops: dict[str, contextlib.AsyncExitStack] = {}

            async def start(name: str, join: list[str], token: str | None) -> Node:
                s = contextlib.AsyncExitStack()
                await stack.enter_async_context(s)
                n = await s.enter_async_context(running(Node(opts(mesh, name, join, token))))
                nodes[name], stops[name] = n, s
                return n

            first = await start("n1", [], create_token(mesh, ttl_s=60))
            for name in ("n2", "n3"):
                await start(name, [first.addr], create_token(mesh, ttl_s=60))
            ids = {name: n.key.node_id for name, n in nodes.items()}
            assert first.api is not None
            await wait_for(
                lambda: all(len(n.live_members()) == 2 for n in nodes.values()),
                timeout_s=15,
                what="three live members",
            )
            first.api.store.write((HWL, "default", "kv"), workload())
            t0 = time.monotonic()
            everyone = frozenset(ids.values())
            await wait_for(
                lambda: all(voters(n) == everyone for n in nodes.values()),
                timeout_s=25,
                what="one group with three voters on every node",
            )
            timings["form"] = time.monotonic() - t0
            groups = {group_of(n) for n in nodes.values()}
            assert len(groups) == 1
            [group] = groups
            assert group is not None and group.startswith("0f0e0d0c-strong-kv.")
            lead = leader_of(list(nodes.values()))
            assert lead is not None
            others = [n for n in nodes.values() if n is not lead]

            # a write through a follower (forwarded), read linearizably on the other
            v1 = await others[0].strong_state("default", "kv").put("k", b"one")
            got = await others[1].strong_state("default", "kv").get("k")
            assert got is not None and (got.value, got.version) == (b"one", v1)
            v2 = await lead.strong_state("default", "kv").put("k", b"two", expect_version=v1)
            assert v2 > v1
            with pytest.raises(VersionConflict) as conflict:
                await others[1].strong_state("default", "kv").put("k", b"x", expect_version=v1)
            assert conflict.value.current == v2
            assert await others[0].strong_state("default", "kv").get("missing") is None

            def reported() -> bool:
                st = status(first)
                c = st.get("consistency") or {}
                cond = [x for x in st.get("conditions") or [] if x.get("type") == "Consistent"]
                return (
                    c.get("group") == group
                    and c.get("leader") == lead.opts.name
                    and len(c.get("members") or []) == 3
                    and bool(cond)
                    and cond[0]["status"] == "True"
                )

            await wait_for(reported, timeout_s=10, what="status.consistency")

            # stop the leader's node: a new leader among the other two, writes go on
            t1 = time.monotonic()
            await stops[lead.opts.name].aclose()
            new = None

            def elected() -> bool:
                nonlocal new
                new = leader_of(others)
                return new is not None

            await wait_for(elected, timeout_s=10, what="a new leader")
            timings["elect"] = time.monotonic() - t1
            assert new is not None
            v3 = await others[0].strong_state("default", "kv").put("k", b"three")
            got = await others[1].strong_state("default", "kv").get("k")
            assert got is not None and (got.value, got.version) == (b"three", v3)

            # stop one more: the lone node refuses writes, clearly, after a bounded wait
            lone, gone = others[0], others[1]
            await stops[gone.opts.name].aclose()
            t2 = time.monotonic()
            with pytest.raises(Unavailable) as refused:
                await lone.strong_state("default", "kv").put("k", b"lost", wait_s=3.0)
            timings["refuse"] = time.monotonic() - t2
            assert "kv" in str(refused.value) and timings["refuse"] < 6.0

            def quorum_lost() -> bool:
                st = status(lone)
                cond = [x for x in st.get("conditions") or [] if x.get("type") == "Consistent"]
                return (
                    bool(cond)
                    and cond[0]["status"] == "False"
                    and cond[0]["reason"] == ("QuorumLost")
                )

            await wait_for(quorum_lost, timeout_s=10, what="Consistent=False, QuorumLost")

            # restart both: they rejoin the group from their files, nothing is lost
            for n in (lead, gone):
                await start(n.opts.name, [lone.addr], None)
            restarted = [nodes[lead.opts.name], nodes[gone.opts.name]]
            for n in restarted:
                assert n.counters.values.get("raft_groups_reloaded") == 1
            v4 = await lone.strong_state("default", "kv").put("k", b"four", wait_s=20.0)
            got = await restarted[0].strong_state("default", "kv").get("k")
            assert got is not None and (got.value, got.version) == (b"four", v4) and v4 > v3

            # delete the workload: the group's files go on every node
            assert lone.api is not None
            lone.api.store.write((HWL, "default", "kv"), None)
            await wait_for(
                lambda: not any(raft_files(mesh, name) for name in nodes),
                timeout_s=15,
                what="the group's files removed on every node",
            )
            assert all(n.strong is not None and len(n.strong.host) == 0 for n in nodes.values())

    asyncio.run(main())
    print(f"\nstrong group: {', '.join(f'{k} {v:.2f}s' for k, v in timings.items())}")
