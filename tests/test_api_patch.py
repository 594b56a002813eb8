"""Patches: RFC 7386 merge, RFC 6902 JSON patch, strategic merge patch, server-side apply."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hyperion.api import patch as P
from hyperion.api.patch import PatchError
from hyperion.api.resources import DEPLOYMENTS, HYPERION_WORKLOADS, NODES, PODS, SERVICES

# --------------------------------------------------------------------------- strategies

scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=6)
keys = st.text(alphabet="abcxyz/~$.", min_size=1, max_size=4)


def json_values(leaves: st.SearchStrategy[Any] = scalars) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda c: st.lists(c, max_size=4) | st.dictionaries(keys, c, max_size=4),
        max_leaves=16,
    )


objects = st.dictionaries(keys, json_values(), max_size=5)
non_null = st.booleans() | st.integers(-1000, 1000) | st.text(max_size=6)
objects_no_null = st.dictionaries(keys, json_values(non_null), max_size=5)

# --------------------------------------------------------------------------- JSON merge patch

RFC7386 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize("target,patch,expected", RFC7386)
def test_json_merge_patch_rfc7386_examples(target: Any, patch: Any, expected: Any) -> None:
    before = copy.deepcopy(target)
    assert P.json_merge_patch(target, patch) == expected
    assert target == before


def test_json_merge_patch_needs_an_object() -> None:
    for bad in ([], "x", None, 1):
        with pytest.raises(PatchError):
            P.json_merge_patch({}, bad)


def merge_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: None for k in a if k not in b}
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            sub = merge_diff(a[k], v)
            if sub:
                out[k] = sub
        elif k not in a or a[k] != v or type(a[k]) is not type(v):
            out[k] = v
    return out


@given(objects, objects_no_null)
def test_json_merge_patch_applies_its_diff(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert P.json_merge_patch(a, merge_diff(a, b)) == b


@given(objects, objects)
def test_json_merge_patch_is_idempotent(a: dict[str, Any], p: dict[str, Any]) -> None:
    once = P.json_merge_patch(a, p)
    assert P.json_merge_patch(once, p) == once


# --------------------------------------------------------------------------- JSON patch

RFC6902 = [
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
    (
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
    ),
    ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    (
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
    ),
    (
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    ),
    (
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
    ),
    (
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [
            {"op": "test", "path": "/baz", "value": "qux"},
            {"op": "test", "path": "/foo/1", "value": 2},
        ],
        {"baz": "qux", "foo": ["a", 2, "c"]},
    ),
    (
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
    ),
    (
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
        {"foo": "bar", "baz": "qux"},
    ),
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    (
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
    ),
    ({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"}], {"a": {"b": 1}, "c": {"b": 1}}),
    ({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}], {"b": 2}),
]


@pytest.mark.parametrize("target,ops,expected", RFC6902)
def test_json_patch_rfc6902_examples(target: Any, ops: Any, expected: Any) -> None:
    before = copy.deepcopy(target)
    assert P.json_patch(target, ops) == expected
    assert target == before


@pytest.mark.parametrize(
    "target,ops,message",
    [
        (
            {"baz": "qux"},
            [{"op": "test", "path": "/baz", "value": "bar"}],
            "testing value /baz failed",
        ),
        (
            {"foo": "bar"},
            [{"op": "add", "path": "/baz/bat", "value": "qux"}],
            'add operation does not apply: doc is missing path: "/baz/bat"',
        ),
        ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}], "testing value"),
        ({"a": 1}, [{"op": "remove", "path": "/b"}], "remove operation does not apply"),
        ({"a": 1}, [{"op": "replace", "path": "/b", "value": 1}], "replace operation does not"),
        ({"a": [1]}, [{"op": "add", "path": "/a/2", "value": 1}], "out of bounds"),
        ({"a": [1]}, [{"op": "add", "path": "/a/01", "value": 1}], "invalid array index"),
        ({"a": [1]}, [{"op": "remove", "path": "/a/-"}], "invalid array index"),
        ({"a": {}}, [{"op": "move", "from": "/a", "path": "/a/b"}], "into its own child"),
        ({"a": 1}, [{"op": "frobnicate", "path": "/a"}], "Unexpected kind: frobnicate"),
        ({"a": 1}, [{"op": "add", "path": "a", "value": 1}], 'must be empty or start with a "/"'),
        ({"a": 1}, [{"op": "add", "path": "/~2", "value": 1}], "invalid escape"),
        ({"a": 1}, [{"op": "add", "path": "/b"}], 'add operation is missing "value"'),
        ({"a": 1}, [{"op": "remove", "path": ""}], "cannot remove the whole document"),
        ({"a": 1}, [{"op": "replace", "path": "", "value": [1]}], "must be a JSON object"),
        ({"a": 1}, {"op": "add"}, "must be an array"),
        ({"a": 1}, ["add"], "operation 0 must be an object"),
        ({"a": 1}, [{"op": "add", "value": 1}], 'missing a string "path"'),
    ],
)
def test_json_patch_errors(target: Any, ops: Any, message: str) -> None:
    before = copy.deepcopy(target)
    with pytest.raises(PatchError, match=None) as e:
        P.json_patch(target, ops)
    assert message in str(e.value)
    assert target == before


def test_json_patch_is_atomic() -> None:
    target = {"a": [1, 2]}
    with pytest.raises(PatchError):
        P.json_patch(
            target,
            [{"op": "add", "path": "/a/-", "value": 3}, {"op": "test", "path": "/a/0", "value": 9}],
        )
    assert target == {"a": [1, 2]}


def test_json_patch_values_are_copied() -> None:
    value = {"x": [1]}
    out = P.json_patch(
        {},
        [
            {"op": "add", "path": "/a", "value": value},
            {"op": "copy", "from": "/a", "path": "/b"},
            {"op": "add", "path": "/b/x/-", "value": 2},
        ],
    )
    assert out == {"a": {"x": [1]}, "b": {"x": [1, 2]}} and value == {"x": [1]}


def _pointer(*tokens: str) -> str:
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


@given(objects_no_null, objects_no_null)
def test_json_patch_top_level_diff(a: dict[str, Any], b: dict[str, Any]) -> None:
    ops: list[dict[str, Any]] = [{"op": "remove", "path": _pointer(k)} for k in a if k not in b]
    ops += [
        {"op": "replace" if k in a else "add", "path": _pointer(k), "value": v}
        for k, v in b.items()
    ]
    assert P.json_patch(a, ops) == b


@given(objects, keys, json_values())
def test_json_patch_add_then_remove_round_trips(a: dict[str, Any], k: str, v: Any) -> None:
    assume(k not in a)
    added = P.json_patch(
        a,
        [
            {"op": "add", "path": _pointer(k), "value": v},
            {"op": "test", "path": _pointer(k), "value": v},
        ],
    )
    assert added[k] == v
    assert P.json_patch(added, [{"op": "remove", "path": _pointer(k)}]) == a


@given(objects, json_values())
def test_json_patch_never_raises_anything_else(target: dict[str, Any], ops: Any) -> None:
    with contextlib.suppress(PatchError):
        P.json_patch(target, ops)


# --------------------------------------------------------------------------- strategic merge


def pod(*containers: tuple[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "labels": {"app": "web", "tier": "fe"},
            "finalizers": ["a.io/x", "b.io/y"],
        },
        "spec": {
            "containers": [
                {
                    "name": n,
                    "image": i,
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "args": ["--x"],
                }
                for n, i in containers
            ],
            "volumes": [
                {"name": "data", "emptyDir": {}},
                {"name": "cfg", "configMap": {"name": "c"}},
            ],
        },
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "Initialized", "status": "True"},
            ]
        },
    }


def smp(target: dict[str, Any], patch: dict[str, Any], rt: Any = PODS) -> dict[str, Any]:
    before = copy.deepcopy(target)
    out = P.strategic_merge_patch(target, patch, rt)
    assert target == before
    return out


def names(obj: dict[str, Any]) -> list[str]:
    return [c["name"] for c in obj["spec"]["containers"]]


def test_smp_merges_containers_by_name() -> None:
    out = smp(
        pod(("a", "x:1"), ("b", "y:1")),
        {"spec": {"containers": [{"name": "b", "image": "y:2"}, {"name": "c", "image": "z:1"}]}},
    )
    assert names(out) == ["a", "b", "c"]
    assert [c["image"] for c in out["spec"]["containers"]] == ["x:1", "y:2", "z:1"]
    assert out["spec"]["containers"][1]["env"] == pod(("b", ""))["spec"]["containers"][0]["env"]


def test_smp_nested_merge_keys_env_and_ports() -> None:
    patch = {
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                    "ports": [{"containerPort": 443}],
                    "args": ["--y"],
                }
            ]
        }
    }
    c = smp(pod(("a", "x:1")), patch)["spec"]["containers"][0]
    assert c["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "3"},
        {"name": "C", "value": "4"},
    ]
    # As Kubernetes orders them: a new patch item goes before server-only items it cannot
    # be placed relative to (kubectl sends $setElementOrder to say where).
    assert [p["containerPort"] for p in c["ports"]] == [443, 80]
    assert c["args"] == ["--y"]  # an atomic list is replaced


def test_smp_directives_delete_and_replace() -> None:
    target = pod(("a", "x:1"), ("b", "y:1"))
    out = smp(target, {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}})
    assert names(out) == ["b"]
    out = smp(
        target, {"spec": {"containers": [{"name": "z", "image": "z"}, {"$patch": "replace"}]}}
    )
    assert out["spec"]["containers"] == [{"name": "z", "image": "z"}]
    out = smp(target, {"metadata": {"labels": {"$patch": "replace", "only": "this"}}})
    assert out["metadata"]["labels"] == {"only": "this"}
    out = smp(target, {"metadata": {"labels": {"$patch": "delete"}}})
    assert out["metadata"]["labels"] == {}
    with pytest.raises(PatchError, match="merging lists cannot yet be specified"):
        smp(target, {"spec": {"containers": [{"$patch": "merge"}]}})
    with pytest.raises(PatchError, match="Unknown patch type"):
        smp(target, {"spec": {"containers": [{"name": "a", "$patch": "explode"}]}})


def test_smp_nulls_maps_and_primitive_lists() -> None:
    target = pod(("a", "x:1"))
    out = smp(
        target,
        {"metadata": {"labels": {"tier": None, "new": "1"}, "finalizers": ["c.io/z", "a.io/x"]}},
    )
    assert out["metadata"]["labels"] == {"app": "web", "new": "1"}
    # finalizers merge as a set, patch items ordered by the patch
    assert sorted(out["metadata"]["finalizers"]) == ["a.io/x", "b.io/y", "c.io/z"]
    out = smp(target, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/x"]}})
    assert out["metadata"]["finalizers"] == ["b.io/y"]
    out = smp(target, {"spec": {"volumes": None}})
    assert "volumes" not in out["spec"]


def test_smp_set_element_order_as_kubectl_sends_it() -> None:
    target = pod(("a", "x:1"), ("b", "y:1"), ("c", "z:1"))
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "x:2"}],
        }
    }
    out = smp(target, patch)
    assert names(out) == ["c", "a", "b"]
    assert out["spec"]["containers"][1]["image"] == "x:2"


def test_smp_retain_keys() -> None:
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            }
        },
    }
    out = smp(
        dep,
        {
            "spec": {
                "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}
            }
        },
        DEPLOYMENTS,
    )
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {
        "spec": {
            "volumes": [
                {"name": "cfg", "$retainKeys": ["name", "secret"], "secret": {"secretName": "s"}}
            ]
        }
    }
    out = smp(pod(("a", "x")), volumes)
    assert out["spec"]["volumes"][1] == {"name": "cfg", "secret": {"secretName": "s"}}
    with pytest.raises(PatchError, match="retainKeys"):
        smp(
            dep, {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}, DEPLOYMENTS
        )


def test_smp_conditions_service_ports_and_node_addresses() -> None:
    out = smp(pod(("a", "x")), {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    assert out["status"]["conditions"] == [
        {"type": "Ready", "status": "True"},
        {"type": "Initialized", "status": "True"},
    ]
    svc = {"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}
    out = smp(svc, {"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}, SERVICES)
    assert out["spec"]["ports"][1] == {"port": 443, "name": "https", "targetPort": 8443}
    node = {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}}
    out = smp(
        node, {"status": {"addresses": [{"type": "ExternalIP", "address": "1.2.3.4"}]}}, NODES
    )
    assert len(out["status"]["addresses"]) == 2


def test_smp_errors_and_crds() -> None:
    with pytest.raises(PatchError, match="unknown format"):
        P.strategic_merge_patch({}, {}, HYPERION_WORKLOADS)
    assert not P.supports_strategic(HYPERION_WORKLOADS) and P.supports_strategic(PODS)
    with pytest.raises(PatchError, match="merge key: name"):
        smp(pod(("a", "x")), {"spec": {"containers": [{"image": "noname"}]}})
    with pytest.raises(PatchError, match="not identical"):
        smp({"metadata": {"finalizers": ["a"]}}, {"metadata": {"finalizers": [{"x": 1}]}})
    with pytest.raises(PatchError, match="must be a list"):
        smp(pod(("a", "x")), {"spec": {"$setElementOrder/containers": "x"}})
    with pytest.raises(PatchError):
        smp(pod(("a", "x")), [])  # type: ignore[arg-type]


def test_smp_outside_the_schema_is_a_merge_patch() -> None:
    target = {"spec": {"affinity": {"nodeAffinity": {"x": [1, 2]}}, "unknown": {"a": 1}}}
    patch = {"spec": {"affinity": {"nodeAffinity": {"x": [3]}}, "unknown": {"b": 2, "a": None}}}
    assert smp(target, patch) == P.json_merge_patch(target, patch)


container_names = st.lists(st.sampled_from("abcdefgh"), unique=True, max_size=6)


@given(container_names, container_names, st.text(max_size=5))
def test_smp_preserves_unrelated_containers(have: list[str], touch: list[str], tag: str) -> None:
    target = pod(*[(n, f"{n}:1") for n in have])
    patch = {"spec": {"containers": [{"name": n, "image": f"{n}:{tag}"} for n in touch]}}
    out = smp(target, patch)
    by_name = {c["name"]: c for c in out["spec"]["containers"]}
    assert sorted(by_name) == sorted(set(have) | set(touch))
    for n in have:
        if n in touch:
            assert by_name[n]["image"] == f"{n}:{tag}"
            assert by_name[n]["env"] == target["spec"]["containers"][0]["env"]
        else:
            assert by_name[n] == next(c for c in target["spec"]["containers"] if c["name"] == n)


plain_keys = st.text(alphabet="abcxyz", min_size=1, max_size=3)
plain_values = st.recursive(
    scalars, lambda c: st.dictionaries(plain_keys, c, max_size=3), max_leaves=10
)


@given(
    st.dictionaries(plain_keys, plain_values, max_size=4),
    st.dictionaries(plain_keys, plain_values, max_size=4),
)
def test_smp_without_lists_equals_merge_patch(a: dict[str, Any], p: dict[str, Any]) -> None:
    assert smp({"x": a}, {"x": p}) == P.json_merge_patch({"x": a}, {"x": p})


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(objects, json_values())
def test_smp_never_raises_anything_else(target: dict[str, Any], patch: Any) -> None:
    for wrapped in (
        patch,
        {"spec": patch},
        {"spec": {"containers": patch}},
        {"metadata": {"finalizers": patch}},
    ):
        with contextlib.suppress(PatchError):
            P.strategic_merge_patch(target, wrapped, PODS)


def test_patches_refuse_deep_nesting() -> None:
    deep: Any = 1
    for _ in range(200):
        deep = {"a": deep}
    for call in (
        lambda: P.json_merge_patch({}, deep),
        lambda: P.json_patch(deep, []),
        lambda: P.strategic_merge_patch({}, deep, PODS),
        lambda: P.apply_patch(None, {**deep, "apiVersion": "v1", "kind": "Pod"}, PODS, "m", False),
    ):
        with pytest.raises(PatchError, match="nesting"):
            call()


# --------------------------------------------------------------------------- server-side apply


def deployment(replicas: int = 2, image: str = "nginx:1.25") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}
                    ]
                },
            },
        },
    }


def apply(
    live: Any, cfg: Any, manager: str = "kubectl", force: bool = False, **kw: Any
) -> tuple[dict[str, Any], list[P.Conflict]]:
    return P.apply_patch(live, cfg, DEPLOYMENTS, manager, force, **kw)


def test_apply_creates_and_records_fields_as_kubernetes_does() -> None:
    obj, conflicts = apply(None, deployment(), time="2024-05-01T10:00:00Z")
    assert conflicts == []
    (entry,) = obj["metadata"]["managedFields"]
    assert entry == {
        "manager": "kubectl",
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "time": "2024-05-01T10:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},  # an atomic map: owned whole
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {
                        "f:containers": {
                            'k:{"name":"nginx"}': {
                                ".": {},
                                "f:image": {},
                                "f:name": {},
                                "f:ports": {
                                    'k:{"containerPort":80,"protocol":"TCP"}': {
                                        ".": {},
                                        "f:containerPort": {},
                                    }
                                },
                            }
                        }
                    },
                },
            },
        },
    }
    assert obj["spec"] == deployment()["spec"]


def test_apply_is_idempotent_and_has_no_self_conflicts() -> None:
    obj, _ = apply(None, deployment())
    again, conflicts = apply(obj, deployment())
    assert conflicts == [] and again == obj
    changed, conflicts = apply(obj, deployment(replicas=5, image="nginx:1.26"))
    assert conflicts == []
    assert changed["spec"]["replicas"] == 5
    assert changed["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"


def test_apply_conflicts_with_another_applier_and_force_takes_over() -> None:
    obj, _ = apply(None, deployment())
    other, conflicts = apply(obj, deployment(replicas=5), manager="ci")
    assert [str(c) for c in conflicts] == ['conflict with "kubectl": .spec.replicas']
    assert other == obj  # nothing applied
    assert P.conflict_message(conflicts) == (
        'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas'
    )
    assert conflicts[0].cause() == {
        "reason": "FieldManagerConflict",
        "message": 'conflict with "kubectl"',
        "field": ".spec.replicas",
    }
    forced, conflicts = apply(obj, deployment(replicas=5), manager="ci", force=True)
    assert conflicts == [] and forced["spec"]["replicas"] == 5
    owners = {(m, p) for m, _, p in P.managed_paths(forced) if p == ".spec.replicas"}
    assert owners == {("ci", ".spec.replicas")}


def test_apply_shares_fields_with_equal_values() -> None:
    obj, _ = apply(None, deployment())
    shared, conflicts = apply(obj, deployment(), manager="ci")
    assert conflicts == []
    owners = {m for m, _, p in P.managed_paths(shared) if p == ".spec.replicas"}
    assert owners == {"kubectl", "ci"}
    # kubectl stops applying replicas: ci still owns it, so it stays.
    cfg = deployment()
    del cfg["spec"]["replicas"]
    kept, _ = apply(shared, cfg)
    assert kept["spec"]["replicas"] == 2


def test_apply_removes_fields_it_no_longer_applies() -> None:
    cfg = deployment()
    cfg["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "b"})
    cfg["spec"]["minReadySeconds"] = 5
    obj, _ = apply(None, cfg)
    dropped, conflicts = apply(obj, deployment())
    assert conflicts == []
    assert "minReadySeconds" not in dropped["spec"]
    assert [c["name"] for c in dropped["spec"]["template"]["spec"]["containers"]] == ["nginx"]


def test_apply_merges_associative_lists_between_managers() -> None:
    obj, _ = apply(None, deployment())
    sidecar = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [{"name": "log", "image": "l:1"}]}}},
    }
    both, conflicts = apply(obj, sidecar, manager="injector")
    assert conflicts == []
    containers = both["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["nginx", "log"]
    # kubectl re-applies without knowing about the sidecar: it stays.
    again, _ = apply(both, deployment(image="nginx:2"))
    assert [c["name"] for c in again["spec"]["template"]["spec"]["containers"]] == ["nginx", "log"]


def test_apply_conflicts_with_an_updater() -> None:
    obj, _ = apply(None, deployment())
    edited = copy.deepcopy(obj)
    edited["spec"]["replicas"] = 7
    edited = P.update_managed_fields(obj, edited, DEPLOYMENTS, "kubectl-edit")
    owners = {(m, op) for m, op, p in P.managed_paths(edited) if p == ".spec.replicas"}
    assert owners == {("kubectl-edit", "Update")}  # updates always take ownership
    _, conflicts = apply(edited, deployment())
    assert [str(c) for c in conflicts] == [
        'conflict with "kubectl-edit" using apps/v1: .spec.replicas'
    ]


def test_apply_ignores_status_on_the_main_resource_and_vice_versa() -> None:
    cfg = deployment()
    cfg["status"] = {"replicas": 9}
    obj, _ = apply(None, cfg)
    assert "status" not in obj
    status_cfg = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "status": {"readyReplicas": 2},
        "spec": {"replicas": 100},
    }
    obj, _ = apply(obj, status_cfg, manager="controller", subresource="status")
    assert obj["status"] == {"readyReplicas": 2} and obj["spec"]["replicas"] == 2
    entry = next(e for e in obj["metadata"]["managedFields"] if e["manager"] == "controller")
    assert entry["subresource"] == "status"


def test_apply_to_an_object_without_managed_fields() -> None:
    live = deployment(replicas=3)
    live["metadata"]["uid"] = "u"
    _, conflicts = apply(live, deployment(replicas=4))
    assert [c.manager for c in conflicts] == ["before-first-apply"]


@pytest.mark.parametrize(
    "cfg,message",
    [
        ([], "must be a JSON object"),
        ({"apiVersion": "apps/v1"}, "'Kind' is missing"),
        ({"apiVersion": "v1", "kind": "Deployment"}, "expected apps/v1, Kind=Deployment"),
        (
            {**deployment(), "metadata": {"name": "web", "managedFields": [{}]}},
            "managedFields must be nil",
        ),
    ],
)
def test_apply_rejects_bad_configurations(cfg: Any, message: str) -> None:
    with pytest.raises(PatchError, match=message):
        apply(None, cfg)


def test_apply_rejects_items_without_keys_or_duplicates() -> None:
    cfg = deployment()
    cfg["spec"]["template"]["spec"]["containers"].append({"image": "noname"})
    with pytest.raises(PatchError, match='omits key field "name"'):
        apply(None, cfg)
    cfg = deployment()
    cfg["spec"]["template"]["spec"]["containers"].append({"name": "nginx"})
    with pytest.raises(PatchError, match="duplicate"):
        apply(None, cfg)
    with pytest.raises(PatchError, match="fieldManager"):
        P.apply_patch(None, deployment(), DEPLOYMENTS, "", False)


def test_apply_to_the_crd() -> None:
    w = {
        "apiVersion": "hyperion.io/v1alpha1",
        "kind": "HyperionWorkload",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": {
            "template": {"spec": {"containers": [{"name": "a", "command": ["x"]}]}},
            "policy": {
                "constraints": {"clouds": ["aws"]},
                "users": [{"geography": "EU", "weight": 1}],
            },
        },
    }
    obj, _ = P.apply_patch(None, w, HYPERION_WORKLOADS, "kubectl", False)
    fields = {p for _, _, p in P.managed_paths(obj)}
    assert '.spec.policy.constraints.clouds[="aws"]' in fields
    assert '.spec.policy.users[geography="EU"].weight' in fields


def test_update_managed_fields() -> None:
    created = P.update_managed_fields(None, deployment(), DEPLOYMENTS, "kubectl-create", time="t0")
    (entry,) = created["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["time"]) == (
        "kubectl-create",
        "Update",
        "t0",
    )
    scaled = copy.deepcopy(created)
    scaled["spec"]["replicas"] = 3
    scaled = P.update_managed_fields(created, scaled, DEPLOYMENTS, "hpa")
    paths = {(m, p) for m, _, p in P.managed_paths(scaled)}
    assert ("hpa", ".spec.replicas") in paths and ("kubectl-create", ".spec.replicas") not in paths
    # sending back what was read changes nothing; [] resets
    same = P.update_managed_fields(scaled, copy.deepcopy(scaled), DEPLOYMENTS, "x")
    assert same["metadata"]["managedFields"] == scaled["metadata"]["managedFields"]
    reset = copy.deepcopy(scaled)
    reset["metadata"]["managedFields"] = []
    assert (
        P.update_managed_fields(scaled, reset, DEPLOYMENTS, "x")["metadata"]["managedFields"] == []
    )
    removed = copy.deepcopy(scaled)
    del removed["metadata"]["labels"]
    out = P.update_managed_fields(scaled, removed, DEPLOYMENTS, "x")
    assert all(not p.startswith(".metadata.labels") for _, _, p in P.managed_paths(out))


def test_fields_v1_round_trip_and_malformed() -> None:
    obj, _ = apply(None, deployment())
    fields = obj["metadata"]["managedFields"][0]["fieldsV1"]
    decoded = P.decode_fields_v1(fields)
    assert decoded is not None
    assert P.encode_fields_v1(decoded) == fields
    for bad in ([], {"x:y": {}}, {"f:a": 1}):
        assert P.decode_fields_v1(bad) is None
    garbage = copy.deepcopy(obj)
    garbage["metadata"]["managedFields"] = ["x", {"fieldsV1": "y"}, {"operation": "Apply"}]
    out, conflicts = apply(garbage, deployment(replicas=9))
    assert conflicts == [] and out["spec"]["replicas"] == 9


simple_configs = st.fixed_dictionaries(
    {
        "replicas": st.integers(0, 5),
        "image": st.sampled_from(["a", "b"]),
        "extra": st.lists(st.sampled_from("xyz"), unique=True, max_size=3),
        "labels": st.dictionaries(st.sampled_from("pqr"), st.sampled_from("12"), max_size=2),
    }
)


def config_of(c: dict[str, Any]) -> dict[str, Any]:
    cfg = deployment(c["replicas"], c["image"])
    cfg["metadata"]["labels"].update(c["labels"])
    cfg["spec"]["template"]["spec"]["containers"] += [{"name": n, "image": n} for n in c["extra"]]
    return cfg


@settings(max_examples=150, deadline=None)
@given(simple_configs, simple_configs)
def test_apply_sequences_converge_to_the_last_configuration(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    obj, _ = apply(None, config_of(a))
    obj, conflicts = apply(obj, config_of(b))
    assert conflicts == []
    again, _ = apply(obj, config_of(b))
    assert again == obj
    want = config_of(b)
    assert obj["spec"] == want["spec"]
    assert obj["metadata"]["labels"] == want["metadata"]["labels"]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(json_values(), json_values(), st.booleans())
def test_apply_never_raises_anything_else(live: Any, cfg: Any, force: bool) -> None:
    for wrapped in (
        cfg,
        {**deployment(), "spec": cfg},
        {**deployment(), "spec": {"template": {"spec": {"containers": cfg}}}},
    ):
        try:
            obj, _ = P.apply_patch(
                live if isinstance(live, dict) else None, wrapped, DEPLOYMENTS, "m", force
            )
        except PatchError:
            continue
        assert isinstance(obj, dict)
    try:
        P.update_managed_fields(live if isinstance(live, dict) else None, cfg, PODS, "m")
    except PatchError:
        assert not isinstance(cfg, dict)
