"""The sidecar's eventual state store: Dapr's state API over the object catalog. Pure.

Owns how a Dapr state request (get, save, delete, bulk get) becomes catalog reads and
writes: the catalog key of an app's state key, the stored form of a value, ETags and
their checks, and the parsing of request bodies into frozen requests. It does not own
HTTP (``sidecar.py``) nor replication (``hyperion.control.catalog``); it reads and
writes through a ``Replica``, which a node backs with its ``ObjectStore``.

Theory of operation
===================

*Where a value lives.* The catalog is already a last-writer-wins register per key on
hybrid logical clocks, replicated to every node by anti-entropy and saved on disk. A
state item is one catalog object under the resource ``state.workplane.hyperion.io/<store>``
(a group no Kubernetes resource here has, so no list or watch of the API shows it), the
pod's namespace, and the name ``<app-id>||<key>`` as Dapr's default ``keyPrefix: appid``
builds it, the key percent-escaped to printable ASCII (a name longer than the
catalog's 253 characters becomes ``<app-id>||%H<sha256 of the key>``; ``%H`` is never
an escape). Two app-ids never share a name; the same app-id in the same namespace
sees the same items from any node, once anti-entropy has carried them there.

*ETags* are the item's HLC timestamp (``<wall_ms>.<logical>.<node>``): every version
has its own, and a later write always gets a different one.

*Concurrency* follows Dapr's in-memory store: a request with an ETag succeeds only if
the item exists with that ETag (whatever ``concurrency`` says); ``first-write``
without an ETag succeeds only if the item does not exist; otherwise the write is
last-write-wins. A malformed ETag is ``invalid`` (400), a wrong one a ``mismatch``
(409). The check reads the *local replica*: two nodes can each accept a write against
the same ETag before they hear of each other, and the later HLC stamp wins everywhere.
This store is therefore not linearizable; Dapr calls such a store eventually
consistent, and ``consistency: strong`` is accepted but not honoured (the strong store
is the ephemeral Raft group, DESIGN §8). A save of several items is checked whole
before any is written, so it applies all or nothing on this replica.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hyperion.control.catalog import MAX_KEY_PART_CHARS, Change, Entry, Key, encode_object
from hyperion.control.hlc import Timestamp
from hyperion.workplane import dapr

DEFAULT_STORE = "statestore"
RESOURCE_GROUP = "state.workplane.hyperion.io"
SEPARATOR = "||"
FIRST_WRITE = "first-write"
LAST_WRITE = "last-write"
CONCURRENCY = (FIRST_WRITE, LAST_WRITE)
CONSISTENCY = ("eventual", "strong")
# A save or bulk get names at most this many items: one request cannot pin the event
# loop for long (each item is one catalog write, a few tens of microseconds).
MAX_ITEMS = 10_000
_SAFE = frozenset(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/|")


class Replica(Protocol):
    """This node's copy of the catalog, as the store needs it (``ObjectStore`` is one)."""

    def entry(self, key: Key) -> Entry | None:
        """The live entry of ``key`` (None: absent or deleted)."""
        ...

    def write(self, key: Key, obj: dict[str, Any] | None) -> Change | None:
        """Write (``obj``) or delete (None) locally; ValueError for a bad object."""
        ...


# ------------------------------------------------------------------ keys and ETags


def resource(store: str) -> str:
    return f"{RESOURCE_GROUP}/{store}"


def _escape(key: str) -> str:
    out = []
    for ch in key:
        if ch in _SAFE:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    return "".join(out)


def catalog_key(store: str, namespace: str, app_id: str, key: str) -> Key:
    """Where ``key`` of ``app_id`` in ``namespace`` lives in the catalog."""
    name = f"{app_id}{SEPARATOR}{_escape(key)}"
    if len(name) > MAX_KEY_PART_CHARS:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        name = f"{app_id}{SEPARATOR}%H{digest}"
    return (resource(store), namespace, name)


def etag_of(ts: Timestamp) -> str:
    return f"{ts.wall_ms}.{ts.logical}.{ts.node}"


def etag_valid(etag: str) -> bool:
    parts = etag.split(".")
    return len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit() and bool(parts[2])


# ------------------------------------------------------------------------ requests


@dataclass(frozen=True, slots=True)
class SetItem:
    """One item of a save request."""

    key: str
    value: Any  # any JSON value
    etag: str | None = None
    concurrency: str = LAST_WRITE
    consistency: str = "eventual"


@dataclass(frozen=True, slots=True)
class Item:
    """A stored item as read back: its JSON value (compact bytes) and ETag."""

    key: str
    data: bytes
    etag: str


def check_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise dapr.malformed("a state key must be a non-empty string")
    if SEPARATOR in key:
        raise dapr.bad_key(key)
    return key


def _options(raw: object, where: str) -> tuple[str, str]:
    if raw is None:
        return LAST_WRITE, "eventual"
    if not isinstance(raw, dict):
        raise dapr.malformed(f"{where}.options must be an object")
    concurrency = raw.get("concurrency") or LAST_WRITE
    consistency = raw.get("consistency") or "eventual"
    if concurrency not in CONCURRENCY:
        raise dapr.malformed(f"{where}.options.concurrency must be one of {CONCURRENCY}")
    if consistency not in CONSISTENCY:
        raise dapr.malformed(f"{where}.options.consistency must be one of {CONSISTENCY}")
    return str(concurrency), str(consistency)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        raise dapr.malformed(str(e)) from None


def parse_save(body: bytes) -> list[SetItem]:
    """The items of ``POST /v1.0/state/{store}``: a JSON array of
    ``{key, value, etag?, metadata?, options?: {concurrency, consistency}}``."""
    raw = parse_json(body)
    if not isinstance(raw, list):
        raise dapr.malformed("the body must be a JSON array of state items")
    if len(raw) > MAX_ITEMS:
        raise dapr.malformed(f"at most {MAX_ITEMS} items in one request")
    items = []
    for i, it in enumerate(raw):
        where = f"[{i}]"
        if not isinstance(it, dict):
            raise dapr.malformed(f"{where} must be an object")
        key = check_key(it.get("key"))
        etag = it.get("etag")
        if etag is not None and not isinstance(etag, str):
            raise dapr.malformed(f"{where}.etag must be a string")
        concurrency, consistency = _options(it.get("options"), where)
        items.append(SetItem(key, it.get("value"), etag or None, concurrency, consistency))
    return items


def parse_bulk(body: bytes) -> list[str]:
    """The keys of ``POST /v1.0/state/{store}/bulk``: ``{keys: [...], parallelism?}``."""
    raw = parse_json(body)
    if not isinstance(raw, dict) or not isinstance(raw.get("keys"), list):
        raise dapr.malformed('the body must be an object with a "keys" array')
    keys = raw["keys"]
    if len(keys) > MAX_ITEMS:
        raise dapr.malformed(f"at most {MAX_ITEMS} keys in one request")
    parallelism = raw.get("parallelism", 0)
    if not isinstance(parallelism, int) or isinstance(parallelism, bool) or parallelism < 0:
        raise dapr.malformed("parallelism must be a non-negative integer")
    return [check_key(k) for k in keys]


# --------------------------------------------------------------------------- store


class EventualStore:
    """One named eventual store as seen by one app (see the module docstring)."""

    def __init__(self, name: str, replica: Replica) -> None:
        self.name = name
        self._replica = replica

    def _key(self, namespace: str, app_id: str, key: str) -> Key:
        return catalog_key(self.name, namespace, app_id, key)

    def get(self, namespace: str, app_id: str, key: str) -> Item | None:
        check_key(key)
        e = self._replica.entry(self._key(namespace, app_id, key))
        if e is None or e.obj is None:
            return None
        return Item(key, _data(e.obj), etag_of(e.ts))

    def bulk_get(self, namespace: str, app_id: str, keys: Sequence[str]) -> list[Item | str]:
        """Each key's item, or the key itself when it is absent."""
        out: list[Item | str] = []
        for k in keys:
            item = self.get(namespace, app_id, k)
            out.append(k if item is None else item)
        return out

    def _check(self, code: str, key: Key, etag: str | None, concurrency: str) -> None:
        cur = self._replica.entry(key)
        if etag is not None:
            if not etag_valid(etag):
                raise dapr.etag_invalid(code, etag)
            if cur is None:
                raise dapr.etag_mismatch(code, f"item {key[2]} not found")
            if etag_of(cur.ts) != etag:
                raise dapr.etag_mismatch(code, f"etag does not match for key {key[2]}")
        elif concurrency == FIRST_WRITE and cur is not None:
            raise dapr.etag_mismatch(code, "item already exists and no etag specified")

    def save(self, namespace: str, app_id: str, items: Sequence[SetItem]) -> None:
        """Check every item, then write them all; raises ``DaprError``."""
        staged: list[tuple[Key, dict[str, Any]]] = []
        for it in items:
            key = self._key(namespace, app_id, it.key)
            self._check("ERR_STATE_SAVE", key, it.etag, it.concurrency)
            obj = {"key": it.key, "value": it.value}
            try:
                encode_object(obj)
            except ValueError as e:
                raise dapr.save_failed(self.name, f"key {it.key}: {e}") from None
            staged.append((key, obj))
        for key, obj in staged:
            self._replica.write(key, obj)

    def delete(
        self, namespace: str, app_id: str, key: str, etag: str | None, concurrency: str
    ) -> None:
        """Delete ``key`` (absent is fine without an ETag); raises ``DaprError``."""
        check_key(key)
        if concurrency not in CONCURRENCY:
            raise dapr.malformed(f"concurrency must be one of {CONCURRENCY}")
        ck = self._key(namespace, app_id, key)
        self._check("ERR_STATE_DELETE", ck, etag or None, LAST_WRITE)
        self._replica.write(ck, None)


def _data(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj.get("value"), separators=(",", ":"), ensure_ascii=False).encode()


# ------------------------------------------------------------------- strong store
# A workload with ``consistency: strong`` keeps its ``statestore`` in its Raft group's
# key-value store (``hyperion.workplane.raft_driver.StrongState``): reads are
# linearizable, writes leader-only, and an ETag is the log index that last wrote the
# item, the same on every member. The sidecar does the I/O; these are its rules.


def strong_key(app_id: str, key: str) -> str:
    """The key of ``app_id``'s ``key`` in its workload's Raft store (Dapr's default
    ``keyPrefix: appid``)."""
    return f"{app_id}{SEPARATOR}{check_key(key)}"


def parse_version(code: str, etag: str) -> int:
    """The log index an ETag of the strong store names; ``DaprError`` (400) otherwise."""
    if not etag.isascii() or not etag.isdigit() or int(etag) < 1:
        raise dapr.etag_invalid(code, etag)
    return int(etag)


def expected_version(code: str, etag: str | None, concurrency: str) -> int | None:
    """What a write expects of the item: its ETag's version, 0 (absent) for
    ``first-write`` without an ETag, None (any) for ``last-write``."""
    if etag is not None:
        return parse_version(code, etag)
    return 0 if concurrency == FIRST_WRITE else None


def encode_value(key: str, value: Any) -> bytes:
    """An item's value as stored: compact JSON (``save_failed`` if it is not JSON)."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    except (TypeError, ValueError) as e:
        raise dapr.save_failed(DEFAULT_STORE, f"key {key}: {e}") from None
