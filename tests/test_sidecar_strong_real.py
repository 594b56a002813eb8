"""The Dapr sidecar's ``statestore`` of a strong workload, on three real nodes: it is the
workload's Raft key-value store, so a write through one replica's sidecar is read back
at once, with the same ETag, through another's on another node (no waiting for
anti-entropy as with the eventual store); ETag and first-write conflicts are 409s
decided by the group, and the store is per app-id as Dapr's ``keyPrefix: appid``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import aiohttp
from node_helpers import running, wait_for
from test_strong_real import opts, voters, workload

from hyperion.api.resources import PODS
from hyperion.control.strong import HWL
from hyperion.daemon import Node
from hyperion.identity.ca import CertificateAuthority
from hyperion.identity.tokens import create_token

TD = "strong-sidecar.test"


def dapr_workload() -> dict[str, Any]:
    w = workload()
    w["spec"]["template"].setdefault("metadata", {})["annotations"] = {
        "dapr.io/enabled": "true",
        "dapr.io/app-id": "ledger",
    }
    return w


def sidecars(nodes: list[Node]) -> dict[str, dict[str, str]]:
    """Node name -> the sidecar environment of the workload's replica there."""
    out: dict[str, dict[str, str]] = {}
    for n in nodes:
        assert n.api is not None and n.sidecars is not None
        for pod in n.api.store.list(PODS.key_resource, "default"):
            spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
            if spec.get("nodeName") == n.opts.name:
                env = n.sidecars.env(str(meta.get("uid")))
                if env:
                    out[n.opts.name] = env
    return out


def test_a_strong_workloads_statestore_is_its_raft_group(tmp_path: Path) -> None:
    mesh = tmp_path / "mesh"
    CertificateAuthority.init(mesh, TD)

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            nodes: list[Node] = []
            for name in ("n1", "n2", "n3"):
                join = [nodes[0].addr] if nodes else []
                node = Node(opts(mesh, name, join, create_token(mesh, ttl_s=60)))
                nodes.append(await stack.enter_async_context(running(node)))
            await wait_for(
                lambda: all(len(n.live_members()) == 2 for n in nodes),
                timeout_s=15,
                what="three live members",
            )
            assert nodes[0].api is not None
            nodes[0].api.store.write((HWL, "default", "kv"), dapr_workload())
            everyone = frozenset(n.key.node_id for n in nodes)
            await wait_for(
                lambda: all(voters(n) == everyone for n in nodes),
                timeout_s=25,
                what="one group with three voters",
            )
            await wait_for(lambda: len(sidecars(nodes)) == 3, timeout_s=10, what="three sidecars")
            envs = [sidecars(nodes)[n.opts.name] for n in nodes]
            a, b, c = (f"{e['DAPR_HTTP_ENDPOINT']}/v1.0/state/statestore" for e in envs)
            token = {e["DAPR_HTTP_ENDPOINT"]: e["DAPR_API_TOKEN"] for e in envs}
            session = await stack.enter_async_context(aiohttp.ClientSession())

            async def call(method: str, url: str, **kw: Any) -> tuple[int, bytes, str]:
                headers = {**kw.pop("headers", {}), "dapr-api-token": token[url.split("/v1.0")[0]]}
                async with session.request(method, url, headers=headers, **kw) as r:
                    return r.status, await r.read(), r.headers.get("ETag", "")

            save = [
                {"key": "balance", "value": {"eur": 10}, "options": {"concurrency": "first-write"}}
            ]
            assert (await call("POST", a, json=save))[0] == 204
            # read at once on two other nodes: same value, same ETag (a log index)
            st, body, etag = await call("GET", f"{b}/balance")
            assert (st, json.loads(body)) == (200, {"eur": 10}) and etag.isdigit()
            assert (await call("GET", f"{c}/balance"))[2] == etag
            # first-write again: the item exists, the group says 409
            st, body, _ = await call("POST", c, json=save)
            assert st == 409 and json.loads(body)["errorCode"] == "ERR_STATE_SAVE"
            # a write with the current ETag wins; the stale ETag then loses, everywhere
            upd = [{"key": "balance", "value": {"eur": 15}, "etag": etag}]
            assert (await call("POST", b, json=upd))[0] == 204
            st, body, _ = await call("POST", a, json=[{**upd[0], "value": {"eur": 99}}])
            assert st == 409 and json.loads(body)["errorCode"] == "ERR_STATE_SAVE"
            st, body, etag2 = await call("GET", f"{a}/balance")
            assert json.loads(body) == {"eur": 15} and int(etag2) > int(etag)
            # bulk get and a malformed ETag
            st, body, _ = await call("POST", f"{c}/bulk", json={"keys": ["balance", "none"]})
            assert st == 200 and json.loads(body) == [
                {"key": "balance", "data": {"eur": 15}, "etag": etag2},
                {"key": "none"},
            ]
            st, body, _ = await call("DELETE", f"{a}/balance", headers={"If-Match": "abc"})
            assert st == 400 and json.loads(body)["errorCode"] == "ERR_STATE_DELETE"
            # delete with the right ETag: gone on every node at once
            st, _, _ = await call("DELETE", f"{c}/balance", headers={"If-Match": etag2})
            assert st == 204
            assert [(await call("GET", f"{u}/balance"))[0] for u in (a, b, c)] == [204] * 3
            # metadata names the store for what it is
            meta = f"{envs[0]['DAPR_HTTP_ENDPOINT']}/v1.0/metadata"
            st, body, _ = await call("GET", meta)
            assert st == 200
            assert {c["name"]: c["type"] for c in json.loads(body)["components"]}[
                "statestore"
            ] == "state.hyperion.raft"
            # the eventual catalog store holds none of it
            assert not [
                e
                for n in nodes
                if n.core is not None
                for e in n.core.catalog.list("state.workplane.hyperion.io/statestore")
                if e.obj is not None
            ]

    asyncio.run(main())
