"""Schemas: validation (Kubernetes' messages), defaults, unknown fields, OpenAPI documents."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperion.api import schema as S
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
    ResourceType,
)
from hyperion.mesh.records import parse_version

# --------------------------------------------------------------------------- fixtures


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}
                    ]
                },
            },
        },
    }


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }


def statefulset() -> dict[str, Any]:
    d = deployment()
    d["kind"] = "StatefulSet"
    d["spec"]["serviceName"] = "web"
    return d


def job() -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": "1234-abcd"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "pi", "image": "perl:5.34", "command": ["perl", "-e", "print 1"]}
                    ],
                }
            }
        },
    }


def workload() -> dict[str, Any]:
    """The example of the Hyperion proposal."""
    return {
        "apiVersion": "hyperion.io/v1alpha1",
        "kind": "HyperionWorkload",
        "metadata": {"name": "resnet50-inference", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": "ghcr.io/example/resnet50:1.0",
                            "command": ["python", "serve.py"],
                            "args": ["--port", "8080"],
                            "env": [{"name": "MODEL", "value": "resnet50"}],
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "resources": {
                                "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}
                            },
                        }
                    ],
                    "runtimeClassName": "container",
                    "nodeSelector": {"hyperion.io/cloud": "aws"},
                }
            },
            "policy": {
                "goal": "latency",
                "consistency": "eventual",
                "constraints": {
                    "geographies": ["US", "EU"],
                    "clouds": ["aws", "gcp"],
                    "preferSpot": True,
                    "versions": ">=0.2",
                },
                "data": {"source": "s3://bucket/path", "locality": "aws:us-east-1"},
                "users": [{"geography": "EU", "weight": 0.7}, {"geography": "US", "weight": 0.3}],
            },
        },
    }


def namespace() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}


def node() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node-1.example"},
        "spec": {"taints": [{"key": "gpu", "effect": "NoSchedule"}]},
    }


def event() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "p.17a", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Started",
        "type": "Normal",
        "message": "Started container",
    }


FIXTURES: dict[str, tuple[ResourceType, Callable[[], dict[str, Any]]]] = {
    "deployment": (DEPLOYMENTS, deployment),
    "pod": (PODS, pod),
    "service": (SERVICES, service),
    "statefulset": (STATEFULSETS, statefulset),
    "job": (JOBS, job),
    "workload": (HYPERION_WORKLOADS, workload),
    "namespace": (NAMESPACES, namespace),
    "node": (NODES, node),
    "event": (EVENTS, event),
}


def errors_of(rt: ResourceType, obj: dict[str, Any], *, defaults: bool = True) -> list[str]:
    if defaults:
        obj = S.apply_defaults(rt, obj)
    return [str(e) for e in S.validate(rt, obj)]


def set_path(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set ``a.b[0].c`` in a copy of ``obj`` (a value of ``DELETE`` removes the field)."""
    out = copy.deepcopy(obj)
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    cur: Any = out
    for p in parts[:-1]:
        cur = cur[int(p[1:-1])] if p.startswith("[") else cur.setdefault(p, {})
    last = parts[-1]
    if last.startswith("["):
        cur[int(last[1:-1])] = value
    elif value is DELETE:
        cur.pop(last, None)
    else:
        cur[last] = value
    return out


DELETE = object()
SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)

# --------------------------------------------------------------------------- validation

# (fixture, path, value, expected errors) — the fixture is valid; each case breaks one thing.
CASES: list[tuple[str, str, Any, list[str]]] = [
    # metadata
    ("deployment", "metadata.name", "Web", [f'metadata.name: Invalid value: "Web": {SUBDOMAIN}']),
    (
        "deployment",
        "metadata.name",
        DELETE,
        ["metadata.name: Required value: name or generateName is required"],
    ),
    ("deployment", "metadata.namespace", DELETE, ["metadata.namespace: Required value"]),
    (
        "namespace",
        "metadata.namespace",
        "default",
        ["metadata.namespace: Forbidden: not allowed on this type"],
    ),
    (
        "namespace",
        "metadata.name",
        "team.a",
        ['metadata.name: Invalid value: "team.a": must not contain dots'],
    ),
    ("service", "metadata.name", "1web", [f'metadata.name: Invalid value: "1web": {DNS1035}']),
    (
        "statefulset",
        "metadata.name",
        "db.main",
        ['metadata.name: Invalid value: "db.main": must not contain dots'],
    ),
    (
        "pod",
        "metadata.labels",
        {"app": "x" * 64},
        ['metadata.labels: Invalid value: "' + "x" * 64 + '": must be no more than 63 characters'],
    ),
    (
        "pod",
        "metadata.labels",
        {"bad key!": "x"},
        [
            'metadata.labels: Invalid value: "bad key!": name part must consist of alphanumeric '
            "characters, '-', '_' or '.', and must start and end with an alphanumeric character "
            "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        ],
    ),
    (
        "pod",
        "metadata.generation",
        -1,
        ["metadata.generation: Invalid value: -1: must be greater than or equal to 0"],
    ),
    # deployments
    (
        "deployment",
        "spec.replicas",
        -1,
        ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
    ),
    (
        "deployment",
        "spec.replicas",
        "2",
        ['spec.replicas: Invalid value: "2": must be of type integer'],
    ),
    ("deployment", "spec.selector", DELETE, ["spec.selector: Required value"]),
    (
        "deployment",
        "spec.selector",
        {},
        ["spec.selector: Invalid value: {}: empty selector is invalid for deployment"],
    ),
    (
        "deployment",
        "spec.template.metadata.labels",
        {"app": "other"},
        [
            'spec.template.metadata.labels: Invalid value: {"app":"other"}: `selector` does not '
            "match template `labels`"
        ],
    ),
    (
        "deployment",
        "spec.template.spec.restartPolicy",
        "Never",
        [
            'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: '
            '"Always"'
        ],
    ),
    (
        "deployment",
        "spec.strategy",
        {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}},
        [
            "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is "
            "'Recreate'"
        ],
    ),
    (
        "deployment",
        "spec.strategy",
        {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}},
        [
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when "
            "`maxSurge` is 0"
        ],
    ),
    (
        "deployment",
        "spec.strategy.type",
        "BlueGreen",
        [
            'spec.strategy.type: Unsupported value: "BlueGreen": supported values: "Recreate", '
            '"RollingUpdate"'
        ],
    ),
    (
        "deployment",
        "spec.minReadySeconds",
        600,
        ["spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"],
    ),
    # pods and their containers (in a template too)
    ("pod", "spec.containers", [], ["spec.containers: Required value"]),
    ("pod", "spec.containers[0].image", DELETE, ["spec.containers[0].image: Required value"]),
    (
        "pod",
        "spec.containers[0].name",
        "Main",
        [
            'spec.containers[0].name: Invalid value: "Main": a lowercase RFC 1123 label must '
            "consist "
            "of lower case alphanumeric characters or '-', and must start and end with an "
            "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        ],
    ),
    (
        "pod",
        "spec.containers",
        [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}],
        ['spec.containers[1].name: Duplicate value: "a"'],
    ),
    (
        "pod",
        "spec.containers[0].ports",
        [{"containerPort": 70000}],
        [
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 "
            "and "
            "65535, inclusive"
        ],
    ),
    (
        "pod",
        "spec.containers[0].ports",
        [{"containerPort": 80, "protocol": "HTTP"}],
        [
            'spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: '
            '"SCTP", "TCP", "UDP"'
        ],
    ),
    (
        "pod",
        "spec.containers[0].imagePullPolicy",
        "Sometimes",
        [
            'spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: '
            '"Always", "IfNotPresent", "Never"'
        ],
    ),
    (
        "pod",
        "spec.containers[0].volumeMounts",
        [{"name": "data", "mountPath": "/data"}],
        ['spec.containers[0].volumeMounts[0].name: Not found: "data"'],
    ),
    (
        "pod",
        "spec.containers[0].resources",
        {"limits": {"cpu": "lots"}},
        [
            'spec.containers[0].resources.limits[cpu]: Invalid value: "lots": quantities must '
            "match "
            "the regular expression '^([0-9.]+)([eEinumkKMGTP]*)$'"
        ],
    ),
    (
        "pod",
        "spec.containers[0].resources",
        {"limits": {"cpu": "1"}, "requests": {"cpu": "2"}},
        [
            'spec.containers[0].resources.requests[cpu]: Invalid value: "2": must be less than or '
            "equal to cpu limit of 1"
        ],
    ),
    (
        "pod",
        "spec.containers[0].resources",
        {"limits": {"nvidia.com/gpu": "0.5"}},
        [
            'spec.containers[0].resources.limits[nvidia.com/gpu]: Invalid value: "0.5": must be an '
            "integer",  # and the requests defaulted from the limits
            'spec.containers[0].resources.requests[nvidia.com/gpu]: Invalid value: "0.5": must be '
            "an "
            "integer",
        ],
    ),
    (
        "pod",
        "spec.restartPolicy",
        "Sometimes",
        [
            'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
            '"OnFailure", "Never"'
        ],
    ),
    (
        "pod",
        "spec.volumes",
        [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}],
        ['spec.volumes[1].name: Duplicate value: "a"'],
    ),
    (
        "pod",
        "spec.tolerations",
        [{"key": "", "operator": "Equal", "value": "x"}],
        [
            'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when '
            '`key` is empty, which means "match all values and all keys"'
        ],
    ),
    (
        "pod",
        "spec.containers[0].env",
        [{"name": "1BAD"}],
        [
            'spec.containers[0].env[0].name: Invalid value: "1BAD": a valid environment variable '
            "name must consist of alphabetic characters, digits, '_', '-', or '.', and must not "
            "start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex "
            "used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
        ],
    ),
    # services
    ("service", "spec.ports", DELETE, ["spec.ports: Required value"]),
    (
        "service",
        "spec.ports",
        [{"port": 80}, {"port": 443}],
        ["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"],
    ),
    (
        "service",
        "spec.ports",
        [{"port": 80, "nodePort": 30080}],
        ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
    ),
    (
        "service",
        "spec.type",
        "Magic",
        [
            'spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", '
            '"LoadBalancer", "NodePort"'
        ],
    ),
    (
        "service",
        "spec.ports[0].targetPort",
        70000,
        ["spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive"],
    ),
    (
        "service",
        "spec.ports[0].targetPort",
        "HTTP",
        [
            'spec.ports[0].targetPort: Invalid value: "HTTP": must contain only alpha-numeric '
            "characters (a-z, 0-9), and hyphens (-)",
            'spec.ports[0].targetPort: Invalid value: "HTTP": must contain at least one letter '
            "(a-z)",
        ],
    ),
    # jobs and statefulsets
    (
        "job",
        "spec.template.spec.restartPolicy",
        DELETE,
        [
            'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: '
            '"OnFailure", "Never"'
        ],
    ),
    (
        "job",
        "spec.backoffLimit",
        -1,
        ["spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"],
    ),
    (
        "job",
        "spec.completionMode",
        "Sometimes",
        [
            'spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", '
            '"Indexed"'
        ],
    ),
    (
        "statefulset",
        "spec.podManagementPolicy",
        "Random",
        [
            'spec.podManagementPolicy: Unsupported value: "Random": supported values: '
            '"OrderedReady", "Parallel"'
        ],
    ),
    (
        "statefulset",
        "spec.template.metadata.labels",
        {},
        [
            "spec.template.metadata.labels: Invalid value: {}: `selector` does not match template "
            "`labels`"
        ],
    ),
    # nodes and events
    (
        "node",
        "spec.taints[0].effect",
        "Sometimes",
        [
            'spec.taints[0].effect: Unsupported value: "Sometimes": supported values: "NoExecute", '
            '"NoSchedule", "PreferNoSchedule"'
        ],
    ),
    (
        "event",
        "involvedObject.namespace",
        "other",
        ['involvedObject.namespace: Invalid value: "other": does not match event.namespace'],
    ),
    # HyperionWorkload
    (
        "workload",
        "spec.policy.goal",
        "fast",
        [
            'spec.policy.goal: Unsupported value: "fast": supported values: "cost", "latency", '
            '"default"'
        ],
    ),
    (
        "workload",
        "spec.policy.consistency",
        "linearizable",
        [
            'spec.policy.consistency: Unsupported value: "linearizable": supported values: '
            '"eventual", "strong"'
        ],
    ),
    (
        "workload",
        "spec.replicas",
        -1,
        ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
    ),
    (
        "workload",
        "spec.replicas",
        1.5,
        ["spec.replicas: Invalid value: 1.5: must be of type integer"],
    ),
    ("workload", "spec.template", DELETE, ["spec.template: Required value"]),
    (
        "workload",
        "spec.template.spec.containers",
        [],
        ["spec.template.spec.containers: Required value"],
    ),
    (
        "workload",
        "spec.policy.constraints.geographies",
        ["US", "MARS"],
        [
            'spec.policy.constraints.geographies[1]: Unsupported value: "MARS": supported values: '
            '"US", "CA", "SA", "EU", "ME", "AF", "APAC"'
        ],
    ),
    (
        "workload",
        "spec.policy.constraints.clouds",
        ["aws", "aws"],
        ['spec.policy.constraints.clouds[1]: Duplicate value: "aws"'],
    ),
    (
        "workload",
        "spec.policy.constraints.preferSpot",
        "yes",
        ['spec.policy.constraints.preferSpot: Invalid value: "yes": must be of type boolean'],
    ),
    (
        "workload",
        "spec.policy.constraints.versions",
        ">>1",
        [
            "spec.policy.constraints.versions: Invalid value: \">>1\": '>>1' is not a comparison "
            "such as '>=0.2'"
        ],
    ),
    (
        "workload",
        "spec.policy.users[0].weight",
        1.5,
        ["spec.policy.users[0].weight: Invalid value: 1.5: must be less than or equal to 1"],
    ),
    (
        "workload",
        "spec.policy.users[1].geography",
        "EU",
        ['spec.policy.users[1].geography: Duplicate value: "EU"'],
    ),
    (
        "workload",
        "spec.policy.data.locality",
        "ibm:eu-de",
        [
            'spec.policy.data.locality: Invalid value: "ibm:eu-de": must be <cloud>[:<region>] '
            "with "
            'cloud one of "aws", "gcp", "azure", "edge", "onprem"'
        ],
    ),
    ("workload", "spec.template.spec.containers[0].image", DELETE, []),  # command suffices
    (
        "workload",
        "spec.template.spec.containers[0]",
        {"name": "x"},
        ["spec.template.spec.containers[0].image: Required value: image or command is required"],
    ),
    (
        "workload",
        "spec.template.spec.containers[0].resources",
        {"limits": {"memory": "4 GB"}},
        [
            'spec.template.spec.containers[0].resources.limits[memory]: Invalid value: "4 GB": '
            "quantities must match the regular expression '^([0-9.]+)([eEinumkKMGTP]*)$'"
        ],
    ),
    (
        "workload",
        "spec.template.spec.containers[0].resources",
        {"limits": {"nvidia.com/gpu": 1.5}},
        [
            "spec.template.spec.containers[0].resources.limits[nvidia.com/gpu]: Invalid value: "
            "1.5: "
            "must be an integer"
        ],
    ),
    (
        "workload",
        "spec.template.spec.containers[0].ports[0].containerPort",
        0,
        [
            "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 0: must be "
            "between 1 and 65535, inclusive"
        ],
    ),
]


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixtures_are_valid(name: str) -> None:
    rt, make = FIXTURES[name]
    assert errors_of(rt, make()) == []
    assert S.unknown_fields(rt, make()) == []


@pytest.mark.parametrize(
    "fixture,path,value,expected", CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES]
)
def test_validation_errors(fixture: str, path: str, value: Any, expected: list[str]) -> None:
    rt, make = FIXTURES[fixture]
    assert errors_of(rt, set_path(make(), path, value)) == expected


def test_field_error_types_and_causes() -> None:
    obj = set_path(deployment(), "spec.replicas", "x")
    (err,) = S.validate(DEPLOYMENTS, S.apply_defaults(DEPLOYMENTS, obj))
    assert err.type == "FieldValueTypeInvalid"
    assert err.cause() == {
        "reason": "FieldValueTypeInvalid",
        "field": "spec.replicas",
        "message": 'Invalid value: "x": must be of type integer',
    }
    errs = S.validate(PODS, set_path(pod(), "spec.containers[0].image", DELETE))
    assert [e.type for e in errs] == ["FieldValueRequired"]


def test_invalid_message_as_kubernetes_words_it() -> None:
    one = [S.invalid("spec.replicas", -1, "must be greater than or equal to 0")]
    assert S.invalid_message(DEPLOYMENTS, "web", one) == (
        'Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater '
        "than or equal to 0"
    )
    two = [S.required("spec.ports"), S.required("spec.ports")]
    assert (
        S.invalid_message(SERVICES, "s", two) == 'Service "s" is invalid: spec.ports: '
        "Required value"
    )
    three = [S.required("a"), S.required("b")]
    assert S.invalid_message(PODS, "p", three).endswith("[a: Required value, b: Required value]")
    assert S.strict_error_message(["spec.foo", "spec.bar"]) == (
        'strict decoding error: unknown field "spec.foo", unknown field "spec.bar"'
    )


def test_generate_name_stands_in_for_name() -> None:
    obj = set_path(pod(), "metadata.name", DELETE)
    obj["metadata"]["generateName"] = "web-"
    assert errors_of(PODS, obj) == []
    obj["metadata"]["generateName"] = "Web-"
    assert errors_of(PODS, obj)[0].startswith('metadata.generateName: Invalid value: "Web-"')


def test_job_generated_selector_validates() -> None:
    obj = S.apply_defaults(JOBS, job())
    assert obj["spec"]["selector"] == {"matchLabels": {S.JOB_UID_LABEL: "1234-abcd"}}
    assert S.validate(JOBS, obj) == []
    long = set_path(job(), "metadata.name", "x" * 64)
    errs = errors_of(JOBS, long)
    assert any("spec.template.metadata.labels" in e and "63 characters" in e for e in errs)


def test_not_an_object() -> None:
    for bad in (None, [], "x", 3):
        (err,) = S.validate(PODS, bad)
        assert err.type == "FieldValueTypeInvalid"


def test_deep_nesting_is_refused_not_walked() -> None:
    obj = pod()
    deep: Any = "leaf"
    for _ in range(S.MAX_DEPTH + 5):
        deep = {"a": deep}
    obj["metadata"]["annotations"] = {"x": "y"}
    obj["spec"]["affinity"] = deep
    (err,) = S.validate(PODS, obj)
    assert "nesting" in err.message
    assert S.apply_defaults(PODS, obj)["spec"]["affinity"] == deep  # copied, untouched
    assert S.unknown_fields(PODS, obj) == ["spec.affinity.a"]
    assert "a" not in S.prune(PODS, obj)["spec"]["affinity"]


# --------------------------------------------------------------------------- updates


def test_update_rules() -> None:
    old = S.apply_defaults(DEPLOYMENTS, deployment())
    new = set_path(old, "spec.selector.matchLabels", {"app": "web", "x": "y"})
    new = set_path(new, "spec.template.metadata.labels", {"app": "web", "x": "y"})
    assert [str(e) for e in S.validate_update(DEPLOYMENTS, new, old)] == [
        'spec.selector: Invalid value: {"matchLabels":{"app":"web","x":"y"}}: field is immutable'
    ]
    renamed = set_path(old, "metadata.name", "other")
    assert [str(e) for e in S.validate_update(DEPLOYMENTS, renamed, old)] == [
        'metadata.name: Invalid value: "other": field is immutable'
    ]
    scaled = set_path(old, "spec.replicas", 5)
    assert S.validate_update(DEPLOYMENTS, scaled, old) == []


def test_pod_updates_may_change_images_only() -> None:
    old = S.apply_defaults(PODS, pod())
    assert (
        S.validate_update(PODS, set_path(old, "spec.containers[0].image", "busybox:2"), old) == []
    )
    changed = set_path(old, "spec.containers[0].command", ["sh"])
    (err,) = S.validate_update(PODS, changed, old)
    assert str(err).startswith("spec: Forbidden: pod updates may not change fields other than")


def test_statefulset_and_job_and_service_updates() -> None:
    old = S.apply_defaults(STATEFULSETS, statefulset())
    bad = set_path(old, "spec.serviceName", "other")
    (err,) = S.validate_update(STATEFULSETS, bad, old)
    assert err.message.startswith(
        "Forbidden: updates to statefulset spec for fields other than 'replicas'"
    )
    assert S.validate_update(STATEFULSETS, set_path(old, "spec.replicas", 7), old) == []
    old_job = S.apply_defaults(JOBS, job())
    changed = set_path(old_job, "spec.template.spec.containers[0].image", "perl:6")
    assert [e.field for e in S.validate_update(JOBS, changed, old_job)] == ["spec.template"]
    old_svc = S.apply_defaults(SERVICES, set_path(service(), "spec.clusterIP", "10.0.0.7"))
    moved = set_path(old_svc, "spec.clusterIP", "10.0.0.8")
    assert [str(e) for e in S.validate_update(SERVICES, moved, old_svc)] == [
        'spec.clusterIP: Invalid value: "10.0.0.8": field is immutable'
    ]


# --------------------------------------------------------------------------- defaults


def test_deployment_defaults_as_kubectl_shows_them() -> None:
    obj = S.apply_defaults(DEPLOYMENTS, set_path(deployment(), "spec.replicas", DELETE))
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    pod_spec = spec["template"]["spec"]
    assert {
        k: pod_spec[k]
        for k in (
            "restartPolicy",
            "dnsPolicy",
            "terminationGracePeriodSeconds",
            "schedulerName",
            "securityContext",
        )
    } == {
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
        "terminationGracePeriodSeconds": 30,
        "schedulerName": "default-scheduler",
        "securityContext": {},
    }
    assert "enableServiceLinks" not in pod_spec  # pods only, not templates
    assert pod_spec["containers"][0] == {
        "name": "nginx",
        "image": "nginx:1.25",
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "imagePullPolicy": "IfNotPresent",
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "resources": {},
    }


@pytest.mark.parametrize(
    "image,policy",
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("localhost:5000/nginx", "Always"),
        ("localhost:5000/nginx:1.2", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
        ("nginx:1@sha256:" + "a" * 64, "IfNotPresent"),
    ],
)
def test_image_pull_policy(image: str, policy: str) -> None:
    assert S.image_pull_policy(image) == policy


def test_pod_service_job_statefulset_namespace_node_defaults() -> None:
    p = set_path(pod(), "spec.containers[0].resources", {"limits": {"cpu": "1"}})
    p["spec"]["containers"][0]["livenessProbe"] = {"httpGet": {"port": 8080}}
    p["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "c"}}, {"name": "tmp"}]
    d = S.apply_defaults(PODS, p)
    c = d["spec"]["containers"][0]
    assert c["imagePullPolicy"] == "Always" and d["spec"]["enableServiceLinks"] is True
    assert c["resources"] == {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}
    assert c["livenessProbe"] == {
        "httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert d["spec"]["volumes"] == [
        {"name": "cfg", "configMap": {"name": "c", "defaultMode": 420}},
        {"name": "tmp", "emptyDir": {}},
    ]
    s = S.apply_defaults(SERVICES, set_path(service(), "spec.type", "NodePort"))
    assert s["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert (
        s["spec"]["sessionAffinity"],
        s["spec"]["externalTrafficPolicy"],
        s["spec"]["internalTrafficPolicy"],
    ) == ("None", "Cluster", "Cluster")
    j = S.apply_defaults(JOBS, job())["spec"]
    assert (
        j["completions"],
        j["parallelism"],
        j["backoffLimit"],
        j["completionMode"],
        j["suspend"],
        j["podReplacementPolicy"],
    ) == (1, 1, 6, "NonIndexed", False, "TerminatingOrFailed")
    assert j["template"]["metadata"]["labels"] == {
        "batch.kubernetes.io/controller-uid": "1234-abcd",
        "controller-uid": "1234-abcd",
        "batch.kubernetes.io/job-name": "pi",
        "job-name": "pi",
    }
    ss = S.apply_defaults(STATEFULSETS, statefulset())["spec"]
    assert (
        ss["podManagementPolicy"],
        ss["updateStrategy"],
        ss["revisionHistoryLimit"],
        ss["persistentVolumeClaimRetentionPolicy"],
    ) == (
        "OrderedReady",
        {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        10,
        {"whenDeleted": "Retain", "whenScaled": "Retain"},
    )
    ns = S.apply_defaults(NAMESPACES, namespace())
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert ns["status"] == {"phase": "Active"}
    n = S.apply_defaults(NODES, set_path(node(), "status.capacity", {"cpu": "4"}))
    assert n["status"]["allocatable"] == {"cpu": "4"}


def test_workload_defaults() -> None:
    w = workload()
    del w["spec"]["replicas"], w["spec"]["policy"]
    d = S.apply_defaults(HYPERION_WORKLOADS, w)
    assert d["spec"]["replicas"] == 1
    assert d["spec"]["policy"] == {"goal": "default", "consistency": "eventual"}
    assert d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] == "TCP"
    assert "imagePullPolicy" not in d["spec"]["template"]["spec"]["containers"][0]  # a CRD
    assert errors_of(HYPERION_WORKLOADS, w) == []


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_defaults_do_not_mutate_and_are_idempotent(name: str) -> None:
    rt, make = FIXTURES[name]
    obj = make()
    before = copy.deepcopy(obj)
    once = S.apply_defaults(rt, obj)
    assert obj == before
    assert S.apply_defaults(rt, once) == once


# --------------------------------------------------------------------------- unknown fields


def test_unknown_fields_paths() -> None:
    obj = deployment()
    obj["spec"]["foo"] = 1
    obj["spec"]["template"]["spec"]["containers"][0]["bar"] = {"x": 1}
    obj["metadata"]["labelz"] = {}
    obj["top"] = True
    assert S.unknown_fields(DEPLOYMENTS, obj) == [  # in document order
        "metadata.labelz",
        "spec.template.spec.containers[0].bar",
        "spec.foo",
        "top",
    ]
    pruned = S.prune(DEPLOYMENTS, obj)
    assert pruned == deployment()
    assert "foo" in obj["spec"]  # the input is not modified


def test_open_subtrees_report_nothing() -> None:
    p = pod()
    p["spec"]["volumes"] = [{"name": "r", "rbd": {"monitors": ["a"], "anything": {"x": 1}}}]
    p["spec"]["containers"][0]["env"] = [
        {"name": "A", "valueFrom": {"fileKeyRef": {"path": "p", "whatever": 1}}}
    ]
    p["status"] = {
        "phase": "Running",
        "containerStatuses": [
            {
                "name": "main",
                "ready": True,
                "restartCount": 0,
                "image": "b",
                "imageID": "i",
                "user": {"linux": {"uid": 1}},
            }
        ],
    }
    assert S.unknown_fields(PODS, p) == []
    w = workload()
    w["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"] = {"anything": 1}
    assert S.unknown_fields(HYPERION_WORKLOADS, w) == []
    w["spec"]["policy"]["constraints"]["fastest"] = True
    assert S.unknown_fields(HYPERION_WORKLOADS, w) == ["spec.policy.constraints.fastest"]


# A manifest of a kind we model fully must not report unknown fields: every struct we
# model lists every field its Kubernetes counterpart has (the official client's models).
_CLIENT = importlib.util.find_spec("kubernetes") is not None
_ROOTS = {
    "io.k8s.api.core.v1.Pod": "V1Pod",
    "io.k8s.api.core.v1.Service": "V1Service",
    "io.k8s.api.core.v1.Namespace": "V1Namespace",
    "io.k8s.api.core.v1.Node": "V1Node",
    "io.k8s.api.core.v1.Event": "CoreV1Event",
    "io.k8s.api.apps.v1.Deployment": "V1Deployment",
    "io.k8s.api.apps.v1.StatefulSet": "V1StatefulSet",
    "io.k8s.api.batch.v1.Job": "V1Job",
    "io.k8s.api.autoscaling.v1.Scale": "V1Scale",
}


@pytest.mark.skipif(not _CLIENT, reason="the kubernetes client is not installed")
@pytest.mark.parametrize("root", sorted(_ROOTS))
def test_modelled_structs_know_every_kubernetes_field(root: str) -> None:
    import kubernetes.client.models as models

    nodes = {r.name: r for r in S.SCHEMAS.values()} | {S.SCALE.name: S.SCALE}
    missing: list[str] = []
    seen: set[tuple[int, str]] = set()

    def walk(node: S.Schema, cls_name: str, path: str) -> None:
        if (id(node), cls_name) in seen or node.properties is None or node.preserve_unknown:
            return
        seen.add((id(node), cls_name))
        cls = getattr(models, cls_name)
        for attr, json_name in cls.attribute_map.items():
            if json_name not in node.properties:
                missing.append(f"{path}.{json_name}")
                continue
            sub = node.properties[json_name]
            inner = re.sub(r"^(List|Dict)\[(str, )?(.*)\]$", r"\3", cls.openapi_types[attr])
            if hasattr(models, inner):
                child = sub.items if sub.type == "array" else sub.additional or sub
                if child is not None and child.type == "object":
                    walk(child, inner, f"{path}.{json_name}")

    walk(nodes[root], _ROOTS[root], root.rsplit(".", 1)[1])
    assert missing == []


# --------------------------------------------------------------------------- OpenAPI


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        out = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return out + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


@pytest.mark.parametrize("rt", RESOURCES, ids=lambda r: r.plural)
def test_openapi_document_per_resource(rt: ResourceType) -> None:
    doc = S.openapi_v3_doc(rt.group, rt.version)
    assert doc is not None
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.split("/")[-1] in schemas, ref
    gvk = {"group": rt.group, "kind": rt.kind, "version": rt.version}
    (component,) = [
        s for s in schemas.values() if gvk in s.get("x-kubernetes-group-version-kind", [])
    ]
    assert {"apiVersion", "kind", "metadata"} <= set(component["properties"])
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    base = (
        f"{prefix}/namespaces/{{namespace}}/{rt.plural}"
        if rt.namespaced
        else (f"{prefix}/{rt.plural}")
    )
    paths = doc["paths"]
    assert paths[base]["get"]["x-kubernetes-group-version-kind"] == gvk
    assert paths[base]["get"]["x-kubernetes-action"] == "list"
    item = paths[f"{base}/{{name}}"]
    assert set(item) >= {"get", "put", "patch", "delete", "parameters"}
    for op in (paths[base]["post"], item["put"], item["patch"]):
        names = {p["name"] for p in op["parameters"] if p["in"] == "query"}
        assert {"fieldValidation", "dryRun", "fieldManager"} <= names
    content = set(item["patch"]["requestBody"]["content"])
    assert ("application/strategic-merge-patch+json" in content) == (not rt.is_custom)
    assert "application/apply-patch+yaml" in content
    assert ("delete" in paths[base]) == ("deletecollection" in rt.verbs)
    for sub in rt.subresources:
        assert f"{base}/{{name}}/{sub}" in paths


def test_openapi_patch_metadata_for_kubectl() -> None:
    doc = S.openapi_v3_doc("", "v1")
    assert doc is not None
    schemas = doc["components"]["schemas"]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-list-type"] == "map"
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    assert containers["items"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    ]
    ports = schemas["io.k8s.api.core.v1.Container"]["properties"]["ports"]
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    assert schemas["io.k8s.api.core.v1.ContainerPort"]["properties"]["protocol"]["default"] == (
        "TCP"
    )
    volumes = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"]
    assert volumes["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    finalizers = schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"][
        "finalizers"
    ]
    assert (finalizers["x-kubernetes-list-type"], finalizers["x-kubernetes-patch-strategy"]) == (
        "set",
        "merge",
    )
    apps = S.openapi_v3_doc("apps", "v1")
    assert apps is not None
    strategy = apps["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"][
        "strategy"
    ]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    selector = apps["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]
    assert selector["x-kubernetes-map-type"] == "atomic"


def test_openapi_crd_schema_is_structural() -> None:
    doc = S.openapi_v3_doc("hyperion.io", "v1alpha1")
    assert doc is not None
    hwl = doc["components"]["schemas"]["io.hyperion.v1alpha1.HyperionWorkload"]
    spec = hwl["properties"]["spec"]
    assert "$ref" not in json.dumps(spec)  # inline, as a CRD's schema is
    policy = spec["properties"]["policy"]
    assert policy["properties"]["goal"] == {
        "description": "What placement optimizes: cost, latency or default (a balance).",
        "type": "string",
        "enum": ["cost", "latency", "default"],
        "default": "default",
    }
    geos = policy["properties"]["constraints"]["properties"]["geographies"]
    assert geos["x-kubernetes-list-type"] == "set"
    limits = spec["properties"]["template"]["properties"]["spec"]["properties"]["containers"][
        "items"
    ]["properties"]["resources"]["properties"]["limits"]
    assert limits["additionalProperties"]["x-kubernetes-int-or-string"] is True
    assert spec["properties"]["replicas"]["default"] == 1


def test_openapi_index_and_documents() -> None:
    index = S.openapi_v3_index(base="/k8s")
    assert set(index["paths"]) == {
        "api/v1",
        "apis/apps/v1",
        "apis/batch/v1",
        "apis/hyperion.io/v1alpha1",
    }
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert re.fullmatch(r"/k8s/openapi/v3/apis/apps/v1\?hash=[0-9A-F]{128}", url)
    assert S.openapi_v3_index() == S.openapi_v3_index()  # deterministic
    assert S.openapi_v3_doc("apps", "v2") is None and S.openapi_v3_doc("policy", "v1") is None
    doc = S.openapi_v3_doc("apps", "v1")
    assert doc is not None
    doc["paths"].clear()  # a fresh copy each call
    again = S.openapi_v3_doc("apps", "v1")
    assert again is not None and again["paths"]


def test_openapi_v2_protobuf_is_deterministic_and_names_every_path() -> None:
    data = S.openapi_v2_pb()
    assert data == S.openapi_v2_pb() and data.startswith(b"\n\x032.0")
    for rt in RESOURCES:
        assert f"/{rt.plural}/{{name}}".encode() in data
    assert b"fieldValidation" in data and b"x-kubernetes-group-version-kind" in data


# --------------------------------------------------------------------------- version ranges


def test_version_ranges() -> None:
    rng = S.parse_version_range(">=0.2, <1")
    assert [op for op, _ in rng] == [">=", "<"]
    assert S.version_in_range(parse_version("0.2.0"), rng)
    assert S.version_in_range(parse_version("0.9.9"), rng)
    assert not S.version_in_range(parse_version("1.0.0"), rng)
    assert not S.version_in_range(parse_version("0.2.0-rc.1"), rng)
    assert S.version_in_range(parse_version("1.2.3"), S.parse_version_range("1.2.3"))
    assert S.version_in_range(parse_version("1.2.3"), S.parse_version_range("!=1.2.4"))
    for bad in ("", ">=", "~1", ">=1,,<2", "x" * 300, ">= 1.2.3.4"):
        with pytest.raises(ValueError):
            S.parse_version_range(bad)


# --------------------------------------------------------------------------- never raises

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mangled(draw: st.DrawFn) -> tuple[ResourceType, Any]:
    """A valid fixture with one subtree replaced by random JSON (or random JSON whole)."""
    name = draw(st.sampled_from(sorted(FIXTURES)))
    rt, make = FIXTURES[name]
    obj: Any = S.apply_defaults(rt, make())
    if draw(st.booleans()):
        path = draw(st.sampled_from(_paths(obj)))
        value = draw(json_values)
        if not path:
            return rt, value
        cur = obj
        for p in path[:-1]:
            cur = cur[p]
        cur[path[-1]] = value
    else:
        obj = draw(json_values)
    return rt, obj


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mangled())
def test_schema_functions_never_raise(case: tuple[ResourceType, Any]) -> None:
    rt, obj = case
    before = copy.deepcopy(obj)
    errs = S.validate(rt, obj)
    assert all(isinstance(e, S.FieldError) and e.message for e in errs)
    S.validate_update(rt, obj, obj)
    unknown = S.unknown_fields(rt, obj)
    pruned = S.prune(rt, obj)
    assert S.unknown_fields(rt, pruned) == []
    assert len(unknown) == 0 or pruned != obj
    defaulted = S.apply_defaults(rt, obj)
    again = S.apply_defaults(rt, defaulted)
    assert again == defaulted or repr(again) == repr(defaulted)  # idempotent (NaN != NaN)
    assert obj == before or obj != obj  # untouched (NaN compares unequal to itself)
