"""Custodians without I/O: who is custodian, Pods from templates, lost replicas,
partition heals, rollouts, Jobs, workload status and Pod -> Request translation."""

from __future__ import annotations

import copy
import hashlib
import random
from typing import Any

import pytest

from hyperion.api.nodes import rfc3339
from hyperion.control.custodian import (
    LOST_GRACE_S,
    MAX_TENDERS,
    POD,
    Custodian,
    Members,
    Write,
    custodian_of,
    key_hash,
)
from hyperion.control.features import request_of
from hyperion.runtime.base import NODE_SHUTDOWN, SpecError

IDS = [hashlib.sha1(f"n{i}".encode()).hexdigest() for i in range(5)]
NAMES = {nid: f"node-{i + 1}" for i, nid in enumerate(IDS)}


class Cat:
    """A catalog copy: resource -> {(ns, name): obj}, applying writes."""

    def __init__(self) -> None:
        self.objs: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}

    def put(self, resource: str, obj: dict[str, Any]) -> None:
        m = obj["metadata"]
        self.objs.setdefault(resource, {})[(m["namespace"], m["name"])] = obj

    def list(self, resource: str) -> list[dict[str, Any]]:
        return list(self.objs.get(resource, {}).values())

    def apply(self, writes: list[Write]) -> None:
        for w in writes:
            res, ns, name = w.key
            if w.obj is None:
                self.objs.get(res, {}).pop((ns, name), None)
            else:
                self.objs.setdefault(res, {})[(ns, name)] = w.obj

    def pods(self) -> list[dict[str, Any]]:
        return self.list(POD)


def deployment(name: str = "web", replicas: int = 3, image: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image, "command": ["sleep"]}]},
            },
        },
    }


def the_custodian(resource: str, name: str, live: list[str], seed: int = 1) -> Custodian:
    nid = custodian_of(resource, "default", name, live)
    assert nid is not None
    return Custodian(nid, NAMES[nid], rng=random.Random(seed), rfc3339=rfc3339)


def step(
    c: Custodian,
    cat: Cat,
    live: list[str],
    now: float = 1000.0,
    quorum_since: float | None = float("-inf"),
    gone_since: dict[str, float] | None = None,
) -> list[Any]:
    topology = {NAMES[n]: ("z", "aws:r") for n in live}
    members = Members(
        {n: NAMES[n] for n in live},
        topology,
        quorum_since=quorum_since,
        gone_since=gone_since or {},
    )
    writes, tenders = c.reconcile(cat.list, members, now, lambda k: False)
    cat.apply(writes)
    return tenders


def bind(cat: Cat, pod: dict[str, Any], node: str, ready: bool = True) -> None:
    pod["spec"]["nodeName"] = node
    pod["status"] = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }


def test_the_custodian_is_the_closest_live_node_and_the_next_one_takes_over() -> None:
    h = key_hash("apps/deployments", "default", "web")
    order = sorted(IDS, key=lambda n: int(n, 16) ^ h)
    assert custodian_of("apps/deployments", "default", "web", IDS) == order[0]
    assert custodian_of("apps/deployments", "default", "web", order[1:]) == order[1]
    assert custodian_of("apps/deployments", "default", "web", []) is None


def test_only_the_custodian_acts() -> None:
    cat = Cat()
    cat.put("apps/deployments", deployment())
    boss = custodian_of("apps/deployments", "default", "web", IDS)
    other = next(n for n in IDS if n != boss)
    c = Custodian(other, NAMES[other], rng=random.Random(1), rfc3339=rfc3339)
    assert step(c, cat, IDS) == [] and cat.pods() == []


def test_a_deployment_gets_its_pods_tendered_and_its_status() -> None:
    cat = Cat()
    cat.put("apps/deployments", deployment(replicas=3))
    c = the_custodian("apps/deployments", "web", IDS)
    tenders = step(c, cat, IDS)
    pods = cat.pods()
    assert len(pods) == 3 and len(tenders) == 0  # created this round, tendered next
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == "uid-web" for p in pods)
    assert all(p["metadata"]["name"].startswith("web-") for p in pods)
    assert len(step(c, cat, IDS)) == 3
    for p, n in zip(pods, ["node-1", "node-2", "node-3"], strict=True):
        bind(cat, p, n)
    assert step(c, cat, IDS) == []
    st = cat.list("apps/deployments")[0]["status"]
    assert st["readyReplicas"] == 3 and st["updatedReplicas"] == 3
    assert st["availableReplicas"] == 3 and st["observedGeneration"] == 1
    assert {x["type"]: x["status"] for x in st["conditions"]} == {
        "Available": "True",
        "Progressing": "True",
    }


def test_replicas_lost_with_a_node_are_replaced_then_the_lost_pods_deleted() -> None:
    cat = Cat()
    cat.put("apps/deployments", deployment(replicas=2))
    live = [n for n in IDS if NAMES[n] != "node-2"]
    c = the_custodian("apps/deployments", "web", live)
    step(c, cat, IDS)
    a, b = cat.pods()
    bind(cat, a, "node-1")
    bind(cat, b, "node-2")
    step(c, cat, live)  # node-2 is dead: a replacement appears, b is kept for now
    names = {p["metadata"]["name"] for p in cat.pods()}
    assert len(names) == 3 and b["metadata"]["name"] in names
    new = next(p for p in cat.pods() if not p["spec"].get("nodeName"))
    bind(cat, new, "node-3")
    step(c, cat, live)
    assert {p["spec"]["nodeName"] for p in cat.pods()} == {"node-1", "node-3"}


def test_a_healed_partition_retires_the_surplus_not_the_running_ones() -> None:
    cat = Cat()
    cat.put("apps/statefulsets", {**deployment("db", 1), "kind": "StatefulSet"})
    c = the_custodian("apps/statefulsets", "db", IDS)
    step(c, cat, IDS)
    [p0] = cat.pods()
    assert p0["metadata"]["name"] == "db-0"
    bind(cat, p0, "node-4")
    # Both sides of a partition ran a copy of replica 0: after the heal both are bound.
    twin = {
        **p0,
        "metadata": {**p0["metadata"], "name": "db-0-xyz", "creationTimestamp": rfc3339(2e9)},
        "spec": dict(p0["spec"]),
    }
    twin["metadata"]["creationTimestamp"] = "2030-01-01T00:00:00Z"
    p0["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    cat.put(POD, twin)
    bind(cat, twin, "node-5")
    step(c, cat, IDS)
    assert [p["metadata"]["name"] for p in cat.pods()] == ["db-0"]  # the older one stays


def heal(before: Cat, *sides: Cat) -> Cat:
    """The catalog once a partition heals: what a side deleted stays deleted (its
    tombstone is newer than any version from before the cut), what a side made is kept."""
    merged = Cat()
    for side in sides:
        for resource, objs in side.objs.items():
            for key, obj in objs.items():
                if key not in before.objs.get(resource, {}) or all(
                    key in s.objs.get(resource, {}) for s in sides
                ):
                    merged.objs.setdefault(resource, {})[key] = obj
    return merged


def test_a_cut_off_minority_never_deletes_what_the_majority_keeps_running() -> None:
    # node-5 is cut off from nodes 1-4, each side with its catalog copy and custodian.
    cat = Cat()
    cat.put("apps/deployments", deployment(replicas=4))
    step(the_custodian("apps/deployments", "web", IDS), cat, IDS, 900.0)
    for p, n in zip(cat.pods(), ["node-1", "node-2", "node-3", "node-5"], strict=True):
        bind(cat, p, n)
    names = {p["spec"]["nodeName"]: p["metadata"]["name"] for p in cat.pods()}
    majority, minority = IDS[:4], IDS[4:]
    big, small = copy.deepcopy(cat), copy.deepcopy(cat)
    c_big = the_custodian("apps/deployments", "web", majority, seed=2)
    c_small = the_custodian("apps/deployments", "web", minority, seed=3)
    for c, side, live, quorum_since, node in (
        (c_big, big, majority, 900.0, "node-4"),
        (c_small, small, minority, None, "node-5"),
    ):
        step(c, side, live, 1000.0, quorum_since)  # replacements for the pods it cannot see
        for p in side.pods():
            if not p["spec"].get("nodeName"):
                bind(side, p, node)
        step(c, side, live, 1001.0, quorum_since)
    assert names["node-5"] not in {p["metadata"]["name"] for p in big.pods()}  # evicted
    kept = {p["metadata"]["name"] for p in small.pods()}
    assert set(names.values()) <= kept, "the minority deleted pods it merely cannot see"
    assert len(kept) == 7  # its own, the majority's three, and three replacements
    # Rejoining, it sees a majority again before node-1 is back in its view (a stale
    # verdict): its grace starts over, so node-1's pod stays.
    rejoined = [n for n in IDS if n != IDS[0]]
    assert custodian_of("apps/deployments", "default", "web", rejoined) == c_small.node_id
    step(c_small, small, rejoined, 1002.0, quorum_since=1002.0)
    assert names["node-1"] in {p["metadata"]["name"] for p in small.pods()}

    merged = heal(cat, big, small)
    step(the_custodian("apps/deployments", "web", IDS, seed=4), merged, IDS, 1002.0)
    after = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in merged.pods()}
    assert len(after) == 4
    assert {names[n] for n in ("node-1", "node-2", "node-3")} <= set(after)  # never restarted


def test_a_node_declared_dead_by_mistake_keeps_its_pods() -> None:
    # Stale verdicts of a healed partition declare a node dead for a moment: its replica
    # is replaced at once, but deleted only after LOST_GRACE_S and once the replacement
    # runs. When the node is back, the replacement is the surplus.
    cat = Cat()
    cat.put("apps/deployments", deployment(replicas=2))
    c = the_custodian("apps/deployments", "web", IDS)
    step(c, cat, IDS, 900.0)
    a, b = cat.pods()
    boss, other, spare = c.node_id, *[n for n in IDS if n != c.node_id][:2]
    bind(cat, a, NAMES[boss])
    bind(cat, b, NAMES[other])
    originals = {a["metadata"]["name"], b["metadata"]["name"]}
    live = [n for n in IDS if n != other]

    def names() -> set[str]:
        return {p["metadata"]["name"] for p in cat.pods()}

    def replacement() -> dict[str, Any]:
        [new] = [p for p in cat.pods() if p["metadata"]["name"] not in originals]
        return new

    gone = {NAMES[other]: 1000.0}
    step(c, cat, live, 1000.1, gone_since=gone)
    bind(cat, replacement(), NAMES[spare])
    step(c, cat, live, 1001.0, gone_since=gone)
    assert originals < names()  # replaced, not deleted: within the grace
    step(c, cat, IDS, 1001.5)  # refuted: back in the view
    assert names() == originals

    gone = {NAMES[other]: 2000.0}
    step(c, cat, live, 2000.1, gone_since=gone)
    step(c, cat, live, 2000.0 + LOST_GRACE_S, gone_since=gone)
    assert originals < names()  # the grace is over, but the replacement is not running
    bind(cat, replacement(), NAMES[spare])
    step(c, cat, live, 2001.0 + LOST_GRACE_S, gone_since=gone)
    assert b["metadata"]["name"] not in names() and len(names()) == 2


def stopped_with_node(pod: dict[str, Any], phase: str = "Running") -> None:
    """What a node that stops cleanly reports of its pod (``PodManager.close``)."""
    pod["status"] = {
        "phase": phase,
        "reason": NODE_SHUTDOWN,
        "conditions": [{"type": "Ready", "status": "False"}],
    }


def test_a_node_stopped_cleanly_restarts_its_pods_in_place_within_the_grace() -> None:
    # node-2 stops cleanly at 1000 and is back 3 s later: its replica is neither
    # replaced nor counted as ready meanwhile, and nothing is deleted.
    cat = Cat()
    cat.put("apps/deployments", deployment(replicas=2))
    c = the_custodian("apps/deployments", "web", IDS)
    step(c, cat, IDS, 900.0)
    a, b = cat.pods()
    other = next(n for n in IDS if n != c.node_id)
    bind(cat, a, NAMES[c.node_id])
    bind(cat, b, NAMES[other])
    originals = {a["metadata"]["name"], b["metadata"]["name"]}
    stopped_with_node(b)
    live = [n for n in IDS if n != other]
    gone = {NAMES[other]: 1000.0}
    for now in (1000.1, 1002.0, 1000.0 + LOST_GRACE_S - 0.01):
        assert step(c, cat, live, now, gone_since=gone) == []
        assert {p["metadata"]["name"] for p in cat.pods()} == originals
    st = cat.list("apps/deployments")[0]["status"]
    assert (st["replicas"], st["readyReplicas"], st["unavailableReplicas"]) == (2, 1, 1)
    bind(cat, b, NAMES[other])  # back, and its kubelet restarted the pod
    assert step(c, cat, IDS, 1003.0) == []
    assert {p["metadata"]["name"] for p in cat.pods()} == originals
    assert cat.list("apps/deployments")[0]["status"]["readyReplicas"] == 2


def test_a_node_stopped_cleanly_that_stays_away_is_replaced_after_the_grace() -> None:
    cat = Cat()
    cat.put("apps/statefulsets", {**deployment("db", 2), "kind": "StatefulSet"})
    c = the_custodian("apps/statefulsets", "db", IDS)
    step(c, cat, IDS, 900.0)
    other = next(n for n in IDS if n != c.node_id)
    spare = next(n for n in IDS if n not in (c.node_id, other))
    p0, p1 = sorted(cat.pods(), key=lambda p: p["metadata"]["name"])
    bind(cat, p0, NAMES[c.node_id])
    bind(cat, p1, NAMES[other])
    stopped_with_node(p1)
    live = [n for n in IDS if n != other]
    gone = {NAMES[other]: 1000.0}
    step(c, cat, live, 1000.0 + LOST_GRACE_S - 0.01, gone_since=gone)
    assert len(cat.pods()) == 2  # still restarting
    step(c, cat, live, 1000.0 + LOST_GRACE_S, gone_since=gone)  # the grace is over
    [new] = [p for p in cat.pods() if p["metadata"]["name"] not in ("db-0", "db-1")]
    assert new["metadata"]["name"].startswith("db-1-")  # db-1 is still bound to node-2
    bind(cat, new, NAMES[spare])
    step(c, cat, live, 1001.0 + LOST_GRACE_S, gone_since=gone)
    assert sorted(p["metadata"]["name"] for p in cat.pods()) == ["db-0", new["metadata"]["name"]]
    # A custodian that never saw the node go (it started later: no gone_since) does not
    # wait for it either.
    assert not c.restarting(p1, Members({n: NAMES[n] for n in live}), 1000.1)


def test_only_pods_that_may_run_again_wait_for_their_node() -> None:
    c = the_custodian("apps/deployments", "web", IDS)
    other = next(n for n in IDS if n != c.node_id)
    members = Members({n: NAMES[n] for n in IDS if n != other}, gone_since={NAMES[other]: 1000.0})
    pod: dict[str, Any] = {"metadata": {"name": "p", "uid": "u"}, "spec": {"nodeName": ""}}
    bind(Cat(), pod, NAMES[other])
    assert not c.restarting(pod, members, 1001.0)  # no NodeShutdown: it crashed
    stopped_with_node(pod)
    assert c.restarting(pod, members, 1001.0) and not c.lost(pod, members, 1001.0)
    stopped_with_node(pod, "Failed")  # a Never pod killed with its node: it is over
    assert not c.restarting(pod, members, 1001.0) and c.lost(pod, members, 1001.0)
    stopped_with_node(pod)
    back = Members({n: NAMES[n] for n in IDS})
    assert not c.restarting(pod, back, 1001.0) and not c.lost(pod, back, 1001.0)


def test_a_job_pod_restarting_with_its_node_stays_active() -> None:
    cat = Cat()
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "default", "uid": "uid-j", "generation": 1},
        "spec": {
            "template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c"}]}}
        },
    }
    cat.put("batch/jobs", job)
    c = the_custodian("batch/jobs", "j", IDS)
    step(c, cat, IDS, 900.0)
    [p] = cat.pods()
    other = next(n for n in IDS if n != c.node_id)
    p["spec"]["nodeName"] = NAMES[other]
    stopped_with_node(p)
    live = [n for n in IDS if n != other]
    step(c, cat, live, 1001.0, gone_since={NAMES[other]: 1000.0})
    assert cat.pods() == [p] and cat.list("batch/jobs")[0]["status"]["active"] == 1
    step(c, cat, live, 1000.0 + LOST_GRACE_S, gone_since={NAMES[other]: 1000.0})
    assert len(cat.pods()) == 2  # not back in time: a new pod


def test_scale_down_retires_unbound_first() -> None:
    cat = Cat()
    cat.put("apps/deployments", deployment(replicas=3))
    c = the_custodian("apps/deployments", "web", IDS)
    step(c, cat, IDS)
    pods = cat.pods()
    bind(cat, pods[0], "node-1")
    bind(cat, pods[1], "node-2")
    cat.objs["apps/deployments"][("default", "web")]["spec"]["replicas"] = 2
    step(c, cat, IDS)
    assert {p["metadata"]["name"] for p in cat.pods()} == {
        pods[0]["metadata"]["name"],
        pods[1]["metadata"]["name"],
    }


def test_a_new_template_rolls_out_and_retires_old_pods_once_ready() -> None:
    cat = Cat()
    cat.put("apps/deployments", deployment(replicas=2))
    c = the_custodian("apps/deployments", "web", IDS)
    step(c, cat, IDS)
    for p in cat.pods():
        bind(cat, p, "node-1")
    cat.put("apps/deployments", deployment(replicas=2, image="v2"))
    step(c, cat, IDS)
    assert len(cat.pods()) == 4  # surge: new ones first
    for p in cat.pods():
        if not p["spec"].get("nodeName"):
            bind(cat, p, "node-2")
    step(c, cat, IDS)
    assert {p["spec"]["nodeName"] for p in cat.pods()} == {"node-2"}
    assert all(p["spec"]["containers"][0]["image"] == "v2" for p in cat.pods())


def test_a_job_runs_to_completion_and_counts_failures_against_backoff() -> None:
    cat = Cat()
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "default", "uid": "uid-j", "generation": 1},
        "spec": {
            "completions": 2,
            "parallelism": 1,
            "backoffLimit": 1,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c"}]}},
        },
    }
    cat.put("batch/jobs", job)
    c = the_custodian("batch/jobs", "j", IDS)
    step(c, cat, IDS)
    [p] = cat.pods()
    p["spec"]["nodeName"] = "node-1"
    p["status"] = {"phase": "Succeeded"}
    step(c, cat, IDS)
    assert len(cat.pods()) == 2
    q = next(x for x in cat.pods() if x is not p)
    q["spec"]["nodeName"] = "node-1"
    q["status"] = {"phase": "Succeeded"}
    step(c, cat, IDS)
    st = cat.list("batch/jobs")[0]["status"]
    assert st["succeeded"] == 2 and st["conditions"][0]["type"] == "Complete"


def test_a_job_over_its_backoff_limit_fails() -> None:
    cat = Cat()
    cat.put(
        "batch/jobs",
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "f", "namespace": "default", "uid": "uid-f", "generation": 1},
            "spec": {"backoffLimit": 0, "template": {"spec": {"containers": [{"name": "c"}]}}},
        },
    )
    c = the_custodian("batch/jobs", "f", IDS)
    step(c, cat, IDS)
    [p] = cat.pods()
    p["spec"]["nodeName"] = "node-1"
    p["status"] = {"phase": "Failed"}
    step(c, cat, IDS)
    cond = cat.list("batch/jobs")[0]["status"]["conditions"][0]
    assert (cond["type"], cond["reason"]) == ("Failed", "BackoffLimitExceeded")


def test_a_hyperion_workload_carries_its_policy_to_the_request_and_reports_placements() -> None:
    cat = Cat()
    hwl = {
        "apiVersion": "hyperion.io/v1alpha1",
        "kind": "HyperionWorkload",
        "metadata": {"name": "infer", "namespace": "default", "uid": "uid-h", "generation": 1},
        "spec": {
            "replicas": 2,
            "policy": {
                "goal": "latency",
                "constraints": {"geographies": ["EU"], "preferSpot": True, "versions": ">=0.2"},
                "users": [{"geography": "EU", "weight": 1}],
            },
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "command": ["sleep"],
                            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
                        }
                    ]
                }
            },
        },
    }
    cat.put("hyperion.io/hyperionworkloads", hwl)
    c = the_custodian("hyperion.io/hyperionworkloads", "infer", IDS)
    step(c, cat, IDS)
    pods = sorted(cat.pods(), key=lambda p: p["metadata"]["name"])
    assert [p["metadata"]["name"] for p in pods] == ["infer-0", "infer-1"]
    req = request_of(pods[0])
    # the replicas share their workload's id, so the scheduler spreads them
    assert req.workload_id == request_of(pods[1]).workload_id == "default/hyperionworkload/infer"
    assert req.goal == "latency" and req.geographies == ("EU",) and req.prefer_spot
    assert req.cpu_millis == 500 and req.memory_bytes == 1 << 30
    assert str(req.version_range) == ">=0.2"
    bind(cat, pods[0], "node-2")
    pods[0]["metadata"]["annotations"]["hyperion.io/placement"] = (
        '{"cloud": "gcp", "region": "europe-west4", "pricePerHour": 0.4, "spot": false}'
    )
    step(c, cat, IDS)
    st = cat.list("hyperion.io/hyperionworkloads")[0]["status"]
    assert st["placements"] == [
        {
            "replica": 0,
            "node": "node-2",
            "cloud": "gcp",
            "region": "europe-west4",
            "pricePerHour": 0.4,
            "spot": False,
        }
    ]
    assert st["phase"] == "Degraded" and st["readyReplicas"] == 1


def test_orphans_of_a_deleted_workload_are_deleted() -> None:
    cat = Cat()
    cat.put("apps/deployments", deployment())
    c = the_custodian("apps/deployments", "web", IDS)
    step(c, cat, IDS)
    cat.objs["apps/deployments"].clear()
    for nid in IDS:  # each pod's own custodian deletes it
        step(Custodian(nid, NAMES[nid], rng=random.Random(2), rfc3339=rfc3339), cat, IDS)
    assert cat.pods() == []


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"requests": {"cpu": "lots"}}, "spec.containers[0].resources.requests.cpu"),
        ({"requests": {"nvidia.com/gpu": "0.5"}}, "must be a whole number"),
    ],
)
def test_bad_resource_quantities_name_the_field(resources: dict[str, Any], message: str) -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "resources": resources}]},
    }
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace(".", r"\.")):
        request_of(pod)


def test_a_workload_tenders_a_bounded_number_of_replicas_at_once() -> None:
    # kube's ReplicaSet slow start, in spirit: 40 replicas are not all tendered at once
    cat = Cat()
    cat.put("apps/deployments", deployment("big", replicas=40))
    c = the_custodian("apps/deployments", "big", IDS)
    step(c, cat, IDS)  # creates the 40 Pods
    pods = cat.pods()
    assert len(pods) == 40
    members = Members({n: NAMES[n] for n in IDS}, {NAMES[n]: ("z", "aws:r") for n in IDS})
    _, tenders = c.reconcile(cat.list, members, 1000.0, lambda k: False)
    assert len(tenders) == MAX_TENDERS
    busy = {(POD, "default", p["metadata"]["name"]) for p in pods[:10]}
    _, tenders = c.reconcile(cat.list, members, 1000.0, lambda k: k in busy)
    assert len(tenders) == MAX_TENDERS - 10 and not {t.key for t in tenders} & busy
    for p in pods[:30]:
        bind(cat, p, NAMES[IDS[0]])
    _, tenders = c.reconcile(cat.list, members, 1000.0, lambda k: False)
    assert len(tenders) == 10  # the rest, once the first are placed
