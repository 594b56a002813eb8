"""The served resource types: what discovery advertises (as Kubernetes v1.31 does)."""

from __future__ import annotations

import pytest

from hyperion.api.resources import (
    DEPLOYMENTS,
    HYPERION_WORKLOADS,
    NAMESPACES,
    PODS,
    RESOURCES,
    VERBS_ALL,
    by_kind,
    group_versions,
    lookup,
)

# (plural, kind, api_version, namespaced, short names, categories, verbs): real discovery.
EXPECTED = [
    ("namespaces", "Namespace", "v1", False, ("ns",), (), "no-deletecollection"),
    ("pods", "Pod", "v1", True, ("po",), ("all",), "all"),
    ("services", "Service", "v1", True, ("svc",), ("all",), "all"),
    ("nodes", "Node", "v1", False, ("no",), (), "all"),
    ("events", "Event", "v1", True, ("ev",), (), "all"),
    ("deployments", "Deployment", "apps/v1", True, ("deploy",), ("all",), "all"),
    ("statefulsets", "StatefulSet", "apps/v1", True, ("sts",), ("all",), "all"),
    ("jobs", "Job", "batch/v1", True, (), ("all",), "all"),
    (
        "hyperionworkloads",
        "HyperionWorkload",
        "hyperion.io/v1alpha1",
        True,
        ("hwl",),
        ("hyperion",),
        "all",
    ),
]


@pytest.mark.parametrize("plural,kind,api_version,namespaced,short,categories,verbs", EXPECTED)
def test_discovery_facts(
    plural: str,
    kind: str,
    api_version: str,
    namespaced: bool,
    short: tuple[str, ...],
    categories: tuple[str, ...],
    verbs: str,
) -> None:
    rt = by_kind(api_version, kind)
    assert rt is not None
    assert (rt.plural, rt.api_version, rt.namespaced) == (plural, api_version, namespaced)
    assert rt.short_names == short and rt.categories == categories
    assert rt.singular == kind.lower()
    if verbs == "all":
        assert rt.verbs == VERBS_ALL
    else:
        assert "deletecollection" not in rt.verbs and len(rt.verbs) == 7
    assert list(rt.verbs) == sorted(rt.verbs)
    assert lookup(rt.group, rt.version, plural) is rt


def test_every_resource_is_listed_once() -> None:
    assert [r.plural for r in RESOURCES] == [e[0] for e in EXPECTED]


def test_keys_and_versions() -> None:
    assert PODS.key_resource == "/pods" and PODS.api_version == "v1"
    assert DEPLOYMENTS.key_resource == "apps/deployments"
    assert DEPLOYMENTS.api_version == "apps/v1" and DEPLOYMENTS.list_kind == "DeploymentList"
    assert HYPERION_WORKLOADS.is_custom and not PODS.is_custom
    assert HYPERION_WORKLOADS.subresources == ("status", "scale")
    assert "log" in PODS.subresources and "scale" in DEPLOYMENTS.subresources
    assert NAMESPACES.key_resource == "/namespaces"


def test_lookups_miss() -> None:
    assert lookup("apps", "v1", "replicasets") is None
    assert lookup("", "v2", "pods") is None
    assert by_kind("v1", "Deployment") is None
    assert by_kind("apps/v1beta1", "Deployment") is None


def test_group_versions_core_first() -> None:
    assert group_versions() == (
        ("", "v1"),
        ("apps", "v1"),
        ("batch", "v1"),
        ("hyperion.io", "v1alpha1"),
    )
