"""The sidecar's pure parts: state keys, ETags and concurrency over a real catalog,
request parsing, opt-in annotations and the choice of an invocation target."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperion.api import resources
from hyperion.control.catalog import Catalog, Change, Entry, Key, key_error
from hyperion.workplane import dapr, invoke, pubsub, state
from hyperion.workplane.dapr import DaprError, SidecarConfigError, sidecar_spec


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


class CatalogReplica:
    """A real catalog core as the store's ``Replica`` (what ``ObjectStore`` does)."""

    def __init__(self, node_id: str = "a" * 16, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.catalog = Catalog(node_id, "addr", rng=random.Random(1), now=0.0, wall_offset=0.0)

    def entry(self, key: Key) -> Entry | None:
        return self.catalog.get(key)

    def write(self, key: Key, obj: dict[str, Any] | None) -> Change | None:
        return self.catalog.write(key, obj, self.clock())[0]


def store() -> tuple[state.EventualStore, CatalogReplica]:
    r = CatalogReplica()
    return state.EventualStore(state.DEFAULT_STORE, r), r


def raises(code: str, status: int) -> Any:
    class Check:
        def __enter__(self) -> None:
            return None

        def __exit__(self, typ: Any, e: Any, tb: Any) -> bool:
            assert isinstance(e, DaprError), f"expected {code}, got {e!r}"
            assert (e.status, e.code) == (status, code), e.message
            return True

    return Check()


# ----------------------------------------------------------------------- keys


keys = st.text(min_size=1, max_size=400).filter(lambda k: "||" not in k)


@settings(max_examples=300)
@given(keys, keys)
def test_catalog_keys_are_valid_and_distinct(k1: str, k2: str) -> None:
    a = state.catalog_key("statestore", "default", "app", k1)
    b = state.catalog_key("statestore", "default", "app", k2)
    assert key_error(a) is None and key_error(b) is None
    assert (a == b) == (k1 == k2)
    assert a[0] == "state.workplane.hyperion.io/statestore"
    assert a[2].startswith("app||")


def test_app_ids_and_namespaces_never_share_a_key() -> None:
    k = state.catalog_key("statestore", "default", "app", "x")
    assert k != state.catalog_key("statestore", "default", "app2", "x")
    assert k != state.catalog_key("statestore", "other", "app", "x")
    # "app" + "||a||x" cannot be made: keys may not hold the separator.
    with raises("ERR_MALFORMED_REQUEST", 400):
        state.check_key("a||x")


def test_no_kubernetes_resource_lives_in_the_state_group() -> None:
    for rt in resources.RESOURCES:
        assert rt.group != state.RESOURCE_GROUP
        assert not rt.key_resource.startswith(state.RESOURCE_GROUP)


# ------------------------------------------------------------------ concurrency


def test_save_get_delete_with_etags() -> None:
    s, _ = store()
    assert s.get("ns", "app", "k") is None
    s.save("ns", "app", [state.SetItem("k", {"a": 1})])
    item = s.get("ns", "app", "k")
    assert item is not None and json.loads(item.data) == {"a": 1}
    assert state.etag_valid(item.etag)
    with raises("ERR_STATE_SAVE", 409):
        s.save("ns", "app", [state.SetItem("k", 2, etag="1.0.ff")])
    with raises("ERR_STATE_SAVE", 400):
        s.save("ns", "app", [state.SetItem("k", 2, etag="W/abc")])
    with raises("ERR_STATE_SAVE", 409):
        s.save("ns", "app", [state.SetItem("k", 2, concurrency=state.FIRST_WRITE)])
    s.save("ns", "app", [state.SetItem("k", 2, etag=item.etag)])
    newer = s.get("ns", "app", "k")
    assert newer is not None and newer.etag != item.etag and newer.data == b"2"
    with raises("ERR_STATE_DELETE", 409):
        s.delete("ns", "app", "k", item.etag, state.LAST_WRITE)
    s.delete("ns", "app", "k", newer.etag, state.LAST_WRITE)
    assert s.get("ns", "app", "k") is None
    with raises("ERR_STATE_DELETE", 409):  # an ETag for an absent item never matches
        s.delete("ns", "app", "k", newer.etag, state.LAST_WRITE)
    s.delete("ns", "app", "k", None, state.LAST_WRITE)  # absent, no ETag: fine
    s.save("ns", "app", [state.SetItem("k", 3, concurrency=state.FIRST_WRITE)])  # absent again


def test_a_save_applies_all_items_or_none() -> None:
    s, _ = store()
    s.save("ns", "app", [state.SetItem("a", 1)])
    with raises("ERR_STATE_SAVE", 409):
        s.save("ns", "app", [state.SetItem("b", 1), state.SetItem("a", 2, etag="1.1.x")])
    assert s.get("ns", "app", "b") is None
    assert [x if isinstance(x, str) else x.data for x in s.bulk_get("ns", "app", ["a", "b"])] == [
        b"1",
        "b",
    ]


def test_a_value_too_large_for_the_catalog_is_a_save_error() -> None:
    s, _ = store()
    with raises("ERR_STATE_SAVE", 500):
        s.save("ns", "app", [state.SetItem("k", "x" * (2 << 20))])


def test_replicas_converge_and_etags_are_replica_local() -> None:
    """Two replicas accept writes against the same ETag (the check is local, not
    linearizable); once they exchange versions, both hold the later one."""
    clock = Clock()
    r1, r2 = CatalogReplica("a" * 16, clock), CatalogReplica("b" * 16, clock)
    s1 = state.EventualStore("statestore", r1)
    s2 = state.EventualStore("statestore", r2)
    s1.save("ns", "app", [state.SetItem("k", 0)])
    for it in r1.catalog.items():
        r2.catalog.restore([it], 0.0)
    one = s1.get("ns", "app", "k")
    two = s2.get("ns", "app", "k")
    assert one is not None and two is not None and one.etag == two.etag
    s1.save("ns", "app", [state.SetItem("k", 1, etag=one.etag)])
    s2.save("ns", "app", [state.SetItem("k", 2, etag=two.etag)])  # both accepted
    items = r1.catalog.items() + r2.catalog.items()
    for r in (r1, r2):
        r.catalog.restore(items, 0.0)
    g1, g2 = s1.get("ns", "app", "k"), s2.get("ns", "app", "k")
    assert g1 is not None and g1 == g2 and g1.data == b"2"  # the later stamp wins


@settings(max_examples=100)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["save", "save_etag", "save_first", "delete", "delete_etag"]),
            st.sampled_from(["k1", "k2"]),
            st.integers(0, 3),
        ),
        max_size=25,
    )
)
def test_the_store_behaves_as_a_dict_with_versions(ops: list[tuple[str, str, int]]) -> None:
    """Against a model: a dict of key -> (value, etag); stale ETags always fail."""
    s, _ = store()
    model: dict[str, tuple[int, str]] = {}
    stale: dict[str, str] = {}
    for op, key, v in ops:
        cur = model.get(key)
        etag = cur[1] if cur and v % 2 == 0 else stale.get(key, "1.0.aa")
        try:
            if op == "save":
                s.save("ns", "app", [state.SetItem(key, v)])
                ok = True
            elif op == "save_etag":
                s.save("ns", "app", [state.SetItem(key, v, etag=etag)])
                ok = cur is not None and etag == cur[1]
            elif op == "save_first":
                s.save("ns", "app", [state.SetItem(key, v, concurrency=state.FIRST_WRITE)])
                ok = cur is None
            elif op == "delete":
                s.delete("ns", "app", key, None, state.LAST_WRITE)
                ok = True
            else:
                s.delete("ns", "app", key, etag, state.LAST_WRITE)
                ok = cur is not None and etag == cur[1]
        except DaprError as e:
            assert e.status == 409, e.message
            assert not (
                op in ("save", "delete")
                or (op in ("save_etag", "delete_etag") and cur is not None and etag == cur[1])
                or (op == "save_first" and cur is None)
            )
            continue
        assert ok, (op, key, v, cur, etag)
        if cur is not None:
            stale[key] = cur[1]
        if op.startswith("save"):
            item = s.get("ns", "app", key)
            assert item is not None and item.data == str(v).encode()
            model[key] = (v, item.etag)
        else:
            model.pop(key, None)
            assert s.get("ns", "app", key) is None


# --------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"key": "k"}',
        b"[1]",
        b'[{"value": 1}]',
        b'[{"key": ""}]',
        b'[{"key": 7}]',
        b'[{"key": "k", "etag": 1}]',
        b'[{"key": "k", "options": {"concurrency": "maybe"}}]',
        b'[{"key": "k", "options": {"consistency": "total"}}]',
        b'[{"key": "k", "options": []}]',
    ],
)
def test_malformed_saves_are_400(body: bytes) -> None:
    with raises("ERR_MALFORMED_REQUEST", 400):
        state.parse_save(body)


def test_a_save_body_is_parsed() -> None:
    body = json.dumps(
        [
            {"key": "a", "value": {"x": 1}},
            {
                "key": "b",
                "value": "s",
                "etag": "1.2.ab",
                "metadata": {"ttlInSeconds": "5"},
                "options": {"concurrency": "first-write", "consistency": "strong"},
            },
        ]  # fmt: skip
    ).encode()
    assert state.parse_save(body) == [
        state.SetItem("a", {"x": 1}),
        state.SetItem("b", "s", "1.2.ab", state.FIRST_WRITE, "strong"),
    ]
    assert state.parse_bulk(b'{"keys": ["a", "b"], "parallelism": 10}') == ["a", "b"]
    for bad in (b"[]", b'{"keys": [1]}', b'{"keys": [], "parallelism": -1}'):
        with raises("ERR_MALFORMED_REQUEST", 400):
            state.parse_bulk(bad)


# ----------------------------------------------------------------- annotations


def pod_obj(
    name: str = "p",
    ann: dict[str, str] | None = None,
    owner: str | None = None,
    node: str = "n1",
    phase: str = "Running",
    ready: str = "True",
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "uid": f"u-{name}"}
    if ann is not None:
        meta["annotations"] = ann
    if owner:
        meta["ownerReferences"] = [{"kind": "Deployment", "name": owner, "controller": True}]
    return {
        "metadata": meta,
        "spec": {"nodeName": node},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready}]},
    }


def test_which_requests_need_no_api_token() -> None:
    """As daprd: only GET of the two health paths, exactly (GHSA-59m6-82qm-vqgj was a
    substring match that let ``?x=/healthz`` through)."""
    for method, path, exempt in [
        ("GET", "/v1.0/healthz", True),
        ("GET", "/v1.0/healthz/", True),
        ("GET", "/v1.0/healthz/outbound", True),
        ("HEAD", "/v1.0/healthz", False),
        ("POST", "/v1.0/healthz", False),
        ("GET", "/v1.0/healthz/../metadata", False),
        ("GET", "/v1.0/metadata?x=/v1.0/healthz", False),
        ("GET", "/x/v1.0/healthz", False),
        ("GET", "/v1.0/healthzz", False),
    ]:
        assert dapr.token_exempt(method, path) is exempt, (method, path)


def test_a_pods_own_token_env_wins() -> None:
    pod = pod_obj()
    assert dapr.declared_env(pod, "DAPR_API_TOKEN") is None
    pod["spec"]["containers"] = [
        {"name": "a", "env": [{"name": "DAPR_API_TOKEN", "valueFrom": {"secretKeyRef": {}}}]},
        {
            "name": "b",
            "env": [{"name": "X", "value": "1"}, {"name": "DAPR_API_TOKEN", "value": "t"}],
        },
        {"name": "c", "env": "not a list"},
    ]
    assert dapr.declared_env(pod, "DAPR_API_TOKEN") == "t"
    assert dapr.declared_env(pod, "APP_API_TOKEN") is None


def test_opt_in_annotations() -> None:
    assert sidecar_spec(pod_obj()) is None
    assert sidecar_spec(pod_obj(ann={"dapr.io/enabled": "false"})) is None
    on = {"dapr.io/enabled": "true"}
    assert sidecar_spec(pod_obj(ann=on)) == dapr.SidecarSpec("default", "p", "u-p", "p", 0)
    assert sidecar_spec(pod_obj(ann=on, owner="web")).app_id == "web"  # type: ignore[union-attr]
    spec = sidecar_spec(pod_obj(ann={**on, "dapr.io/app-id": "api", "dapr.io/app-port": "80"}))
    assert spec is not None and (spec.app_id, spec.app_port) == ("api", 80)
    for bad in ({"dapr.io/app-id": "a.b"}, {"dapr.io/app-id": "-x"}, {"dapr.io/app-port": "http"},
                {"dapr.io/app-port": "70000"}):  # fmt: skip
        with pytest.raises(SidecarConfigError):
            sidecar_spec(pod_obj(ann={**on, **bad}))


def test_invocation_targets() -> None:
    assert dapr.invoke_target("api", "default") == ("api", "default")
    assert dapr.invoke_target("api.prod", "default") == ("api", "prod")
    assert dapr.invoke_target("a.b.c", "default") is None
    assert dapr.invoke_target("", "default") is None
    on = {"dapr.io/enabled": "true", "dapr.io/app-id": "api", "dapr.io/app-port": "80"}
    pods = [
        pod_obj("p1", on, node="n1"),
        pod_obj("p2", on, node="n2"),
        pod_obj("p3", on, node="n3", phase="Pending"),
        pod_obj("p4", on, node="n1", ready="False"),
        pod_obj("p5", {**on, "dapr.io/app-id": "other"}, node="n1"),
        pod_obj("p6", None, node="n1"),
    ]
    found = invoke.targets(pods, "api", "default")
    assert [t.pod for t in found] == ["p1", "p2"]
    rng = random.Random(3)
    assert {invoke.choose(found, "n1", rng).pod for _ in range(20)} == {"p1"}  # type: ignore[union-attr]
    assert {invoke.choose(found, "n9", rng).pod for _ in range(50)} == {"p1", "p2"}  # type: ignore[union-attr]
    assert invoke.choose([], "n1", rng) is None


def test_forward_paths_round_trip() -> None:
    path = invoke.forward_path("default", "web-1", "orders/7%2F8")
    assert invoke.parse_forward_path(path) == ("default", "web-1", "orders/7%2F8")
    assert invoke.parse_forward_path("/sidecar/v1/invoke/default") is None
    assert invoke.passed_headers([("Host", "x"), ("Connection", "close"), ("X-A", "1")]) == [
        ("X-A", "1")
    ]


# ------------------------------------------------------------------------ pub/sub


def test_subscriptions_as_apps_declare_them() -> None:
    body = json.dumps(
        [
            {"pubsubname": "pubsub", "topic": "a", "route": "on-a"},
            {
                "pubsubname": "pubsub",
                "topic": "b",
                "routes": {"rules": [{"match": "x", "path": "/r"}], "default": "/d"},
            },  # fmt: skip
            {"pubsubname": "pubsub", "topic": "c", "routes": {"rules": [{"path": "/first"}]}},
            {"pubsubname": "pubsub", "topic": "no route"},
            {"pubsubname": "pubsub", "topic": "d/e", "route": "/x"},
            "junk",
        ]
    ).encode()
    assert pubsub.parse_subscriptions(body) == [
        pubsub.Subscription("pubsub", "a", "/on-a"),
        pubsub.Subscription("pubsub", "b", "/d"),
        pubsub.Subscription("pubsub", "c", "/first"),
    ]
    assert pubsub.parse_subscriptions(b"") == []
    for bad in (b"{}", b"[", b"\xff"):
        with pytest.raises(ValueError):
            pubsub.parse_subscriptions(bad)


def test_what_an_apps_answer_means() -> None:
    cases = [
        (200, b"", pubsub.SUCCESS),
        (204, b"not json", pubsub.SUCCESS),
        (200, b'{"status": "SUCCESS"}', pubsub.SUCCESS),
        (200, b'{"status": "retry"}', pubsub.RETRY),
        (200, b'{"status": "DROP"}', pubsub.DROP),
        (200, b'{"status": "MAYBE"}', pubsub.RETRY),
        (404, b"", pubsub.DROP),
        (500, b'{"status": "SUCCESS"}', pubsub.RETRY),
    ]
    for status, body, want in cases:
        assert pubsub.outcome(status, body) == want, (status, body)
    assert [pubsub.backoff_s(a) for a in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert pubsub.backoff_s(30) == pubsub.BACKOFF_S_MAX


def test_one_replica_per_message_and_few_moves() -> None:
    reps = [invoke.Target("default", f"p{i}", f"u{i}", f"n{i % 2}", 80) for i in range(4)]
    ids = [f"m{i}" for i in range(400)]
    first = {m: pubsub.chosen_replica(m, reps) for m in ids}
    assert first == {m: pubsub.chosen_replica(m, list(reversed(reps))) for m in ids}
    assert len(Counter(first.values())) == 4  # spread over all of them
    gone = reps[0]
    after = {m: pubsub.chosen_replica(m, reps[1:]) for m in ids}
    assert all(after[m] == first[m] for m in ids if first[m] != gone)  # only its own move
    assert pubsub.chosen_replica("m", []) is None


def test_cloud_events_as_dapr_builds_them() -> None:
    kw = dict(event_id="i", source="app", pubsub="pubsub", topic="t", time_rfc3339="T")
    ce = pubsub.cloud_event(data=b'{"a": 1}', content_type="application/json", **kw)
    assert (ce["data"], ce["id"], ce["source"], ce["specversion"]) == ({"a": 1}, "i", "app", "1.0")
    ce = pubsub.cloud_event(data=b"hi", content_type="text/plain", **kw)
    assert (ce["data"], ce["datacontenttype"]) == ("hi", "text/plain")
    ce = pubsub.cloud_event(data=b"\x00\x01", content_type="application/octet-stream", **kw)
    assert ce["data_base64"] == "AAE="
    own = json.dumps({"id": "mine", "type": "x.y", "data": 5}).encode()
    ce = pubsub.cloud_event(data=own, content_type="application/cloudevents+json", **kw)
    assert (ce["id"], ce["type"], ce["data"], ce["topic"]) == ("mine", "x.y", 5, "t")
    for data, ctype in ((b"{", "application/json"), (b"[1]", "application/cloudevents+json")):
        with pytest.raises(DaprError) as e:
            pubsub.cloud_event(data=data, content_type=ctype, **kw)
        assert e.value.code == "ERR_PUBSUB_CLOUD_EVENTS_SER"


def test_strong_store_rules_keys_etags_and_expected_versions() -> None:
    assert state.strong_key("ledger", "a/b") == "ledger||a/b"
    with pytest.raises(DaprError) as bad:
        state.strong_key("ledger", "x||y")
    assert bad.value.status == 400
    assert state.expected_version("ERR_STATE_SAVE", "17", state.LAST_WRITE) == 17
    assert state.expected_version("ERR_STATE_SAVE", None, state.FIRST_WRITE) == 0
    assert state.expected_version("ERR_STATE_SAVE", None, state.LAST_WRITE) is None
    for etag in ("0", "-1", "1.2.n", "", "١٢"):  # the last: Arabic-Indic digits
        with pytest.raises(DaprError) as e:
            state.expected_version("ERR_STATE_DELETE", etag, state.LAST_WRITE)
        assert (e.value.status, e.value.code) == (400, "ERR_STATE_DELETE")
    assert state.encode_value("k", {"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()
    with pytest.raises(DaprError) as e:
        state.encode_value("k", {1j: 2})
    assert e.value.code == "ERR_STATE_SAVE"
