"""Server-side printing: the Table rows kubectl shows, computed as Kubernetes computes them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperion.api import tables as T
from hyperion.api.resources import (
    DEPLOYMENTS,
    EVENTS,
    HYPERION_WORKLOADS,
    JOBS,
    NAMESPACES,
    NODES,
    PODS,
    RESOURCES,
    SERVICES,
    STATEFULSETS,
)

T0 = 1_714_557_600.0  # 2024-05-01T10:00:00Z
CREATED = "2024-05-01T10:00:00Z"


def at(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(T0 + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# From k8s.io/apimachinery/pkg/util/duration's own cases.
@pytest.mark.parametrize(
    "seconds,text",
    [
        (-2, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (1, "1s"),
        (119, "119s"),
        (120, "2m"),
        (182, "3m2s"),
        (599, "9m59s"),
        (600, "10m"),
        (179 * 60, "179m"),
        (180 * 60, "3h"),
        (4 * 3600 + 120, "4h2m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (50 * 3600, "2d2h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (800 * 86400, "2y70d"),
        (8 * 365 * 86400, "8y"),
        (float("nan"), "<invalid>"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert T.human_duration(seconds) == text


def pod(status: dict[str, Any], *, containers: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "creationTimestamp": CREATED},
        "spec": {"containers": [{"name": f"c{i}"} for i in range(containers)], **spec},
        "status": status,
    }


def running(name: str, *, ready: bool = True, restarts: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "ready": ready,
        "restartCount": restarts,
        "state": {"running": {"startedAt": CREATED}},
    }


def waiting(name: str, reason: str, restarts: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "ready": False,
        "restartCount": restarts,
        "state": {"waiting": {"reason": reason}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": at(3000)}},
    }


def terminated(name: str, reason: str = "", code: int = 0, signal: int = 0) -> dict[str, Any]:
    state: dict[str, Any] = {"exitCode": code}
    if reason:
        state["reason"] = reason
    if signal:
        state["signal"] = signal
    return {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": state}}


POD_CASES = [
    (
        "running",
        pod(
            {"phase": "Running", "containerStatuses": [running("c0")], "podIP": "10.1.0.5"},
            nodeName="n1",
        ),
        ["p", "1/1", "Running", "0", "60m", "10.1.0.5", "n1", "<none>", "<none>"],
    ),
    (
        "pending",
        pod({"phase": "Pending"}, containers=2),
        ["p", "0/2", "Pending", "0", "60m", "<none>", "<none>", "<none>", "<none>"],
    ),
    (
        "crashloop",
        pod(
            {
                "phase": "Running",
                "containerStatuses": [
                    running("c0", restarts=1),
                    waiting("c1", "CrashLoopBackOff", restarts=4),
                ],
            },
            containers=2,
        ),
        [
            "p",
            "1/2",
            "CrashLoopBackOff",
            "5 (10m ago)",
            "60m",
            "<none>",
            "<none>",
            "<none>",
            "<none>",
        ],
    ),
    (
        "errimagepull",
        pod(
            {
                "phase": "Pending",
                "containerStatuses": [
                    {
                        "name": "c0",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"waiting": {"reason": "ErrImagePull"}},
                    }
                ],
            }
        ),
        ["p", "0/1", "ErrImagePull", "0", "60m", "<none>", "<none>", "<none>", "<none>"],
    ),
    (
        "completed",
        pod({"phase": "Succeeded", "containerStatuses": [terminated("c0", "Completed")]}),
        ["p", "0/1", "Completed", "0", "60m", "<none>", "<none>", "<none>", "<none>"],
    ),
    (
        "exitcode",
        pod({"phase": "Failed", "containerStatuses": [terminated("c0", code=2)]}),
        ["p", "0/1", "ExitCode:2", "0", "60m", "<none>", "<none>", "<none>", "<none>"],
    ),
    (
        "signal",
        pod({"phase": "Failed", "containerStatuses": [terminated("c0", signal=9)]}),
        ["p", "0/1", "Signal:9", "0", "60m", "<none>", "<none>", "<none>", "<none>"],
    ),
    (
        "init-waiting",
        pod(
            {
                "phase": "Pending",
                "initContainerStatuses": [
                    {
                        "name": "i0",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"waiting": {"reason": "PodInitializing"}},
                    }
                ],
            },
            initContainers=[{"name": "i0"}],
        ),
        ["p", "0/1", "Init:0/1", "0", "60m", "<none>", "<none>", "<none>", "<none>"],
    ),
    (
        "init-error",
        pod(
            {"phase": "Pending", "initContainerStatuses": [terminated("i0", "Error", code=1)]},
            initContainers=[{"name": "i0"}],
        ),
        ["p", "0/1", "Init:Error", "0", "60m", "<none>", "<none>", "<none>", "<none>"],
    ),
    (
        "terminating",
        {
            **pod({"phase": "Running", "containerStatuses": [running("c0")]}),
            "metadata": {"name": "p", "creationTimestamp": CREATED, "deletionTimestamp": at(3500)},
        },
        ["p", "1/1", "Terminating", "0", "60m", "<none>", "<none>", "<none>", "<none>"],
    ),
    (
        "readiness-gates",
        pod(
            {"phase": "Running", "conditions": [{"type": "example.com/ready", "status": "True"}]},
            readinessGates=[{"conditionType": "example.com/ready"}, {"conditionType": "x/y"}],
        ),
        ["p", "0/1", "Running", "0", "60m", "<none>", "<none>", "<none>", "1/2"],
    ),
]


@pytest.mark.parametrize("name,obj,cells", POD_CASES, ids=[c[0] for c in POD_CASES])
def test_pod_rows(name: str, obj: dict[str, Any], cells: list[Any]) -> None:
    assert T.row_cells(PODS, obj, now=T0 + 3600) == cells


def test_completed_pods_carry_a_row_condition() -> None:
    done = pod({"phase": "Succeeded"})
    (row,) = T.table(PODS, [done], now=T0)["rows"]
    assert row["conditions"] == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]


def service(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "s", "creationTimestamp": CREATED}, "spec": spec}


@pytest.mark.parametrize(
    "obj,cells",
    [
        (
            service(
                type="ClusterIP",
                clusterIP="10.96.0.10",
                clusterIPs=["10.96.0.10"],
                ports=[{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                selector={"k8s-app": "dns", "a": "b"},
            ),
            ["s", "ClusterIP", "10.96.0.10", "<none>", "53/UDP,53/TCP", "5s", "a=b,k8s-app=dns"],
        ),
        (
            service(
                type="NodePort",
                clusterIP="10.0.0.1",
                ports=[{"port": 80, "nodePort": 30080, "protocol": "TCP"}],
            ),
            ["s", "NodePort", "10.0.0.1", "<none>", "80:30080/TCP", "5s", "<none>"],
        ),
        (
            service(type="LoadBalancer", ports=[{"port": 443}]),
            ["s", "LoadBalancer", "<none>", "<pending>", "443/TCP", "5s", "<none>"],
        ),
        (
            {
                **service(type="LoadBalancer", ports=[]),
                "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "lb.x"}]}},
            },
            ["s", "LoadBalancer", "<none>", "1.2.3.4,lb.x", "<none>", "5s", "<none>"],
        ),
        (
            service(type="ExternalName", externalName="db.example.com"),
            ["s", "ExternalName", "<none>", "db.example.com", "<none>", "5s", "<none>"],
        ),
    ],
)
def test_service_rows(obj: dict[str, Any], cells: list[Any]) -> None:
    assert T.row_cells(SERVICES, obj, now=T0 + 5) == cells


def test_node_rows() -> None:
    node = {
        "metadata": {
            "name": "n1",
            "creationTimestamp": CREATED,
            "labels": {
                "node-role.kubernetes.io/control-plane": "",
                "kubernetes.io/role": "gpu",
                "hyperion.io/cloud": "aws",
            },
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0-hyperion.0.2.0",
                "osImage": "Ubuntu 24.04",
                "kernelVersion": "6.8.0",
                "containerRuntimeVersion": "hyperion://0.2.0",
            },
        },
    }
    assert T.row_cells(NODES, node, now=T0 + 3 * 86400) == [
        "n1",
        "NotReady,SchedulingDisabled",
        "control-plane,gpu",
        "3d",
        "v1.32.0-hyperion.0.2.0",
        "10.0.0.1",
        "<none>",
        "Ubuntu 24.04",
        "6.8.0",
        "hyperion://0.2.0",
    ]
    bare = {"metadata": {"name": "n2"}}
    assert T.row_cells(NODES, bare, now=T0)[:5] == ["n2", "Unknown", "<none>", "<unknown>", ""]


def test_workload_rows() -> None:
    deploy = {
        "metadata": {"name": "web", "creationTimestamp": CREATED},
        "spec": {
            "replicas": 3,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["fe", "be"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                ],
            },
            "template": {
                "spec": {
                    "containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:2"}]
                }
            },
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert T.row_cells(DEPLOYMENTS, deploy, now=T0 + 90) == [
        "web",
        "2/3",
        3,
        2,
        "90s",
        "a,b",
        "x:1,y:2",
        "app=web,!canary,tier in (be,fe)",  # by key
    ]
    sts = {"metadata": {"name": "db", "creationTimestamp": CREATED}, "spec": {"replicas": 3}}
    assert T.row_cells(STATEFULSETS, sts, now=T0) == ["db", "0/3", "0s", "", ""]
    job = {
        "metadata": {"name": "pi", "creationTimestamp": CREATED},
        "spec": {"completions": 1, "selector": {"matchLabels": {"u": "1"}}},
        "status": {
            "succeeded": 1,
            "startTime": CREATED,
            "completionTime": at(42),
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    }
    assert T.row_cells(JOBS, job, now=T0 + 600) == [
        "pi",
        "Complete",
        "1/1",
        "42s",
        "10m",
        "",
        "",
        "u=1",
    ]
    running_job = {
        "metadata": {"name": "r"},
        "spec": {"parallelism": 3},
        "status": {"startTime": CREATED},
    }
    assert T.row_cells(JOBS, running_job, now=T0 + 30)[1:4] == ["Running", "0/1 of 3", "30s"]
    suspended = {
        "metadata": {"name": "s"},
        "status": {"conditions": [{"type": "Suspended", "status": "True"}]},
    }
    assert T.row_cells(JOBS, suspended, now=T0)[1] == "Suspended"


def test_namespace_event_and_hwl_rows() -> None:
    ns = {
        "metadata": {"name": "default", "creationTimestamp": CREATED},
        "status": {"phase": "Active"},
    }
    assert T.row_cells(NAMESPACES, ns, now=T0 + 10800) == ["default", "Active", "3h"]
    ev = {
        "metadata": {"name": "p.17a"},
        "type": "Warning",
        "reason": "BackOff",
        "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{c}"},
        "source": {"component": "kubelet", "host": "n1"},
        "message": " Back-off \n",
        "firstTimestamp": CREATED,
        "lastTimestamp": at(60),
        "count": 7,
    }
    assert T.row_cells(EVENTS, ev, now=T0 + 120) == [
        "60s",
        "Warning",
        "BackOff",
        "pod/p",
        "spec.containers{c}",
        "kubelet, n1",
        "Back-off",
        "2m",
        7,
        "p.17a",
    ]
    new_style = {
        "metadata": {"name": "e"},
        "eventTime": "2024-05-01T10:00:00.000000Z",
        "involvedObject": {"kind": "Node"},
        "reportingComponent": "hyperion",
    }
    assert T.row_cells(EVENTS, new_style, now=T0 + 5)[:4] == ["5s", "", "", "node"]
    assert T.row_cells(EVENTS, new_style, now=T0 + 5)[5] == "hyperion"
    assert T.row_cells(EVENTS, new_style, now=T0 + 5)[8] == 1
    hwl = {
        "metadata": {"name": "resnet", "creationTimestamp": CREATED},
        "spec": {
            "replicas": 2,
            "policy": {"goal": "latency", "constraints": {"clouds": ["aws", "gcp"]}},
        },
        "status": {"readyReplicas": 1, "phase": "Running"},
    }
    assert T.row_cells(HYPERION_WORKLOADS, hwl, now=T0 + 4) == [
        "resnet",
        "latency",
        2,
        1,
        "Running",
        "4s",
        "aws,gcp",
        "<any>",
    ]
    assert T.row_cells(HYPERION_WORKLOADS, {"metadata": {"name": "w"}}, now=T0) == [
        "w",
        "default",
        1,
        0,
        None,
        "<unknown>",
        "<any>",
        "<any>",
    ]


def test_table_envelope() -> None:
    objs = [{"metadata": {"name": "a", "uid": "u"}, "spec": {}}]
    t = T.table(DEPLOYMENTS, objs, now=T0, resource_version="42", continue_="c1")
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "42", "continue": "c1"}
    assert [c["name"] for c in t["columnDefinitions"]] == [
        "Name",
        "Ready",
        "Up-to-date",
        "Available",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]
    assert [c["priority"] for c in t["columnDefinitions"]] == [0, 0, 0, 0, 0, 1, 1, 1]
    assert t["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"name": "a", "uid": "u"},
    }
    assert T.table(PODS, objs, now=T0, include_object="Object")["rows"][0]["object"] is objs[0]
    assert T.table(PODS, objs, now=T0, include_object="None")["rows"][0]["object"] is None
    assert T.table(PODS, [], now=T0)["metadata"] == {}


@pytest.mark.parametrize("rt", RESOURCES, ids=lambda r: r.plural)
def test_columns(rt: Any) -> None:
    cols = T.columns(rt)
    assert cols[0]["name"] in ("Name", "Last Seen")
    assert all(set(c) == {"name", "type", "format", "description", "priority"} for c in cols)
    assert all(c["description"] for c in cols)
    assert len(T.row_cells(rt, {}, now=T0)) == len(cols)


def test_selectors_and_labels_formatting() -> None:
    assert T.format_labels({"b": "2", "a": "1"}) == "a=1,b=2"
    assert T.format_labels({}) == "<none>" and T.format_labels(None) == "<none>"
    assert (
        T.format_label_selector(
            {
                "matchExpressions": [
                    {"key": "k", "operator": "NotIn", "values": ["b", "a"]},
                    {"key": "e", "operator": "Exists"},
                ]
            }
        )
        == "e,k notin (a,b)"
    )
    assert T.format_label_selector({"matchExpressions": [{"key": "k", "operator": "Near"}]}) == (
        "<invalid>"
    )
    assert T.parse_time("2024-05-01T10:00:00Z") == T0
    assert T.parse_time("2024-05-01T10:00:00") is None and T.parse_time(5) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=25,
)


@st.composite
def odd_objects(draw: st.DrawFn) -> Any:
    """Objects with the printed fields present but of any shape."""
    fields = [
        "metadata",
        "spec",
        "status",
        "involvedObject",
        "source",
        "series",
        "firstTimestamp",
        "lastTimestamp",
        "eventTime",
        "count",
        "type",
        "message",
    ]
    obj = draw(st.dictionaries(st.sampled_from(fields), json_values, max_size=6))
    if draw(st.booleans()):
        obj["status"] = draw(
            st.dictionaries(
                st.sampled_from(
                    [
                        "containerStatuses",
                        "initContainerStatuses",
                        "conditions",
                        "phase",
                        "podIPs",
                        "addresses",
                        "loadBalancer",
                        "startTime",
                    ]
                ),
                json_values,
                max_size=4,
            )
        )
    return obj if draw(st.booleans()) else draw(json_values)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(RESOURCES), st.lists(odd_objects(), max_size=3), st.floats())
def test_tables_never_raise(rt: Any, objs: list[Any], now: float) -> None:
    t = T.table(rt, objs, now=now)
    width = len(t["columnDefinitions"])
    assert all(len(r["cells"]) == width for r in t["rows"])
