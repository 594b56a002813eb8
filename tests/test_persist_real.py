"""Objects survive a restart of the whole mesh: real nodes, real kubectl, one directory.

Three runs of the same 2-node mesh: (1) create a Deployment and a Service, delete the
Service, stop every node (SIGTERM); (2) both nodes start from their saved catalogs:
the Deployment is there with its spec and runs again, the Service stays deleted; then
delete the Deployment, create another Service and ``kill -9`` every node at once;
(3) what was acknowledged before the kill is there.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from kube_helpers import Kubectl, deployment, eventually, mesh

from hyperion.control.catalog import Catalog
from hyperion.control.persist import CatalogStore

SERVICE = """\
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80}}]
"""


def names(kube: Kubectl, kind: str, context: str) -> set[str]:
    out = kube.json("--context", context, "get", kind)
    return {i["metadata"]["name"] for i in out["items"]}


def saved(dir: Path, node: str) -> dict[tuple[str, str, str], object]:
    """What ``node`` has on disk: key -> object (None for a tombstone)."""
    store = CatalogStore(dir / "nodes" / node / "catalog", "", tombstone_ttl_s=3600.0)
    loaded = store.load()
    assert loaded.corrupt is None and not loaded.bad_files
    catalog = Catalog("disk", "", rng=random.Random(0), now=0.0, wall_offset=time.time())
    catalog.restore(loaded.items, 0.0)  # what the node itself makes of them at start
    return {it.key: it.obj for it in catalog.items()}


WEB = ("apps/deployments", "default", "web")


def test_objects_survive_a_restart_of_every_node(tmp_path: Path) -> None:
    kube = Kubectl(tmp_path)
    with mesh(tmp_path, 2):
        kube.run("apply", "-f", "-", input=deployment("web", 1))
        kube.run("apply", "-f", "-", input=SERVICE.format(name="gone"))
        eventually(lambda: "gone" in names(kube, "services", "node-2"))
        kube.run("delete", "service", "gone")
        eventually(lambda: kube.json("get", "deployment", "web")["status"].get("readyReplicas"))
    for node in ("node-1", "node-2"):  # each node saved the whole catalog
        disk = saved(tmp_path, node)
        assert disk[WEB]["spec"]["replicas"] == 1  # type: ignore[index]
        assert disk[("/services", "default", "gone")] is None  # the tombstone
    # (2) every node was stopped; the same directory again
    with mesh(tmp_path, 2) as infos:
        for ctx in ("node-1", "node-2"):
            d = kube.json("--context", ctx, "get", "deployment", "web")
            assert d["spec"]["replicas"] == 1
            c = d["spec"]["template"]["spec"]["containers"][0]
            assert (c["image"], c["command"]) == ("busybox", ["sleep", "300"])
            assert "gone" not in names(kube, "services", ctx)
        eventually(
            lambda: kube.json("get", "deployment", "web")["status"].get("readyReplicas") == 1,
            timeout=15,
        )
        kube.run("delete", "deployment", "web")
        eventually(lambda: not names(kube, "pods", "node-1"), timeout=15)  # no orphans
        kube.run("apply", "-f", "-", input=SERVICE.format(name="late"))  # acknowledged ...
        for info in infos:
            os.kill(int(str(info["pid"])), signal.SIGKILL)  # ... then every node dies
    disk = saved(tmp_path, "node-1")  # the node that acknowledged them
    assert disk[WEB] is None and disk[("/services", "default", "late")] is not None
    # (3)
    with mesh(tmp_path, 2):
        for ctx in ("node-1", "node-2"):
            assert "late" in names(kube, "services", ctx)
            assert "web" not in names(kube, "deployments", ctx)
