"""Dapr pub/sub over the catalog: messages, subscriptions, who delivers, what the app said.

Pure: no I/O, no clocks (times and ids come in as arguments). ``sidecar.py`` drives it.

Theory of operation. A publish is one catalog object (``MESSAGES``, name = the event
id, in the publisher's namespace) holding the CloudEvent as Dapr builds it; the catalog
spreads it to every node by anti-entropy and expires it after ``MESSAGE_TTL_S`` (an
expiring kind, as Events are). Each node knows the subscriptions of the pods it runs
(read from each app's ``GET /dapr/subscribe`` once it answers). For a message and an
app-id that one of its pods subscribes to, a node delivers only if the app-id's
replica chosen by rendezvous hashing of the event id over the app-id's Running, Ready
replicas (as the catalog shows them, ``invoke.targets``) runs on it: every node that
sees the same replicas picks the same one, so each app-id gets the message once
(competing consumers within an app-id) and every subscribing app-id gets it
(broadcast across app-ids). After the app's SUCCESS or DROP (or after
``MAX_ATTEMPTS``), the delivering node writes an ack object (``ACKS``, also expiring);
no node delivers an acked message again. Every node rescans the live messages
periodically, so a message whose chosen replica went away (its node died, its pod was
deleted) is delivered by the next chosen one. At-least-once: while views differ (a
replica just started or stopped, an ack not yet spread) two nodes may both deliver.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hyperion.control.catalog import DEFAULT_EXPIRE_S, PUBSUB_TTL_S, Key
from hyperion.workplane import dapr
from hyperion.workplane.invoke import Target

GROUP = "pubsub.workplane.hyperion.io"
MESSAGES = f"{GROUP}/messages"
ACKS = f"{GROUP}/acks"
DEFAULT_PUBSUB = "pubsub"  # the one component, as ``dapr init`` names its Redis pub/sub
COMPONENT_TYPE = "pubsub.hyperion.catalog"
# How long a message (and its acks) lives: an app-id with no running replica for this
# long misses it. Every node drops it at the same time (catalog expiry).
MESSAGE_TTL_S = PUBSUB_TTL_S
MAX_ATTEMPTS = 8  # per message and app-id on one node, then dropped (logged)
BACKOFF_S_BASE = 0.1  # 0.1, 0.2, 0.4 … s between attempts
BACKOFF_S_MAX = 5.0
RESCAN_S = 1.0  # every node looks at all live messages this often
MAX_SUBSCRIPTIONS = 100  # per app; a longer /dapr/subscribe answer is cut
CLOUDEVENTS_JSON = "application/cloudevents+json"
assert DEFAULT_EXPIRE_S.get(MESSAGES) == DEFAULT_EXPIRE_S.get(ACKS) == MESSAGE_TTL_S
_TOPIC = re.compile(r"^[A-Za-z0-9._~:@!$&'()*+,;=-]{1,200}$")

SUCCESS, RETRY, DROP = "SUCCESS", "RETRY", "DROP"


@dataclass(frozen=True, slots=True)
class Subscription:
    """One programmatic subscription of an app: deliver ``topic`` of ``pubsub`` to
    ``route`` (a path of the app)."""

    pubsub: str
    topic: str
    route: str


def topic_error(topic: str) -> str | None:
    if not _TOPIC.match(topic):
        return f"topic {topic!r}: 1-200 characters, no '/', spaces or '%'"
    return None


def _route(x: object) -> str | None:
    if isinstance(x, str) and x:
        return x if x.startswith("/") else "/" + x
    return None


def parse_subscriptions(body: bytes) -> list[Subscription]:
    """An app's answer to ``GET /dapr/subscribe``: a JSON array of ``{pubsubname, topic,
    route}`` (v1) or ``{pubsubname, topic, routes: {rules, default}}`` (v2). Rules'
    ``match`` expressions (CEL) are not evaluated: the ``default`` route is used, else
    the first rule's path. Entries that make no sense are skipped; raises ValueError
    when the body is not a JSON array."""
    try:
        raw = json.loads(body or b"[]")
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"/dapr/subscribe: not JSON: {e}") from None
    if not isinstance(raw, list):
        raise ValueError("/dapr/subscribe: not a JSON array")
    out: list[Subscription] = []
    for s in raw[:MAX_SUBSCRIPTIONS]:
        if not isinstance(s, dict):
            continue
        pubsub, topic = s.get("pubsubname"), s.get("topic")
        if not isinstance(pubsub, str) or not isinstance(topic, str) or topic_error(topic):
            continue
        route = _route(s.get("route"))
        routes = s.get("routes")
        if isinstance(routes, dict):
            rules = [r for r in routes.get("rules") or [] if isinstance(r, dict)]
            route = _route(routes.get("default")) or next(
                (p for p in (_route(r.get("path")) for r in rules) if p), route
            )
        if route is not None:
            out.append(Subscription(pubsub, topic, route))
    return out


def metadata_flag(query: Mapping[str, str], name: str) -> bool:
    """``?metadata.<name>=true`` as Dapr reads it."""
    return str(query.get(f"metadata.{name}", "")).lower() == "true"


def cloud_event(
    *,
    event_id: str,
    source: str,
    pubsub: str,
    topic: str,
    data: bytes,
    content_type: str,
    time_rfc3339: str,
) -> dict[str, Any]:
    """The CloudEvent 1.0 envelope Dapr wraps a published body in. A body that is
    already a CloudEvent (``application/cloudevents+json``) is kept, with the fields
    Dapr adds filled in where absent. Raises ``DaprError`` for a body that does not
    match its content type."""
    ct = (content_type or "application/json").split(";")[0].strip().lower()
    if ct == CLOUDEVENTS_JSON:
        try:
            ce = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise dapr.DaprError(
                400, "ERR_PUBSUB_CLOUD_EVENTS_SER", f"not a JSON CloudEvent: {e}"
            ) from None
        if not isinstance(ce, dict):
            raise dapr.DaprError(400, "ERR_PUBSUB_CLOUD_EVENTS_SER", "not a JSON CloudEvent")
        defaults = {
            "specversion": "1.0",
            "id": event_id,
            "source": source,
            "type": "com.dapr.event.sent",
            "datacontenttype": "application/json",
        }
        return {**defaults, **ce, "topic": topic, "pubsubname": pubsub}
    ce = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": "com.dapr.event.sent",
        "datacontenttype": content_type or "application/json",
        "topic": topic,
        "pubsubname": pubsub,
        "time": time_rfc3339,
        "traceid": "",
        "traceparent": "",
        "tracestate": "",
    }
    if ct == "application/json" or ct.endswith("+json"):
        try:
            ce["data"] = json.loads(data) if data else None
        except (ValueError, UnicodeDecodeError) as e:
            raise dapr.DaprError(
                400, "ERR_PUBSUB_CLOUD_EVENTS_SER", f"the body is not the JSON it says: {e}"
            ) from None
    elif ct.startswith("text/") or ct in ("application/xml",):
        ce["data"] = data.decode("utf-8", "replace")
    else:
        ce["data_base64"] = base64.b64encode(data).decode()
    return ce


def raw_event(*, event_id: str, pubsub: str, topic: str, data: bytes) -> dict[str, Any]:
    """What a subscriber gets for a ``rawPayload`` publish: Dapr's envelope around the
    raw bytes (``data_base64``), as daprd builds it for raw messages."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": pubsub,
        "type": "com.dapr.event.sent",
        "datacontenttype": "application/octet-stream",
        "topic": topic,
        "pubsubname": pubsub,
        "data_base64": base64.b64encode(data).decode(),
    }


def message_key(namespace: str, event_id: str) -> Key:
    return (MESSAGES, namespace, event_id)


def ack_key(namespace: str, event_id: str, app_id: str) -> Key:
    return (ACKS, namespace, f"{app_id}.{event_id}")


def message_object(pubsub: str, topic: str, event: Mapping[str, Any]) -> dict[str, Any]:
    return {"pubsub": pubsub, "topic": topic, "event": dict(event)}


def chosen_replica(event_id: str, replicas: Iterable[Target]) -> Target | None:
    """Rendezvous (highest random weight) choice of the replica that gets ``event_id``:
    the same on every node that sees the same replicas; a replica that leaves moves
    only its own messages."""

    def weight(t: Target) -> bytes:
        return hashlib.sha256(f"{event_id}\0{t.uid}".encode()).digest()

    return max(replicas, key=weight, default=None)


def outcome(status: int, body: bytes) -> str:
    """What an app's answer to a delivery means, as in Dapr: 2xx with ``{"status":
    "SUCCESS"}``, an empty or non-JSON body → SUCCESS; ``RETRY`` → RETRY; ``DROP`` →
    DROP; any other status value → RETRY; 404 → DROP; any other HTTP status → RETRY."""
    if 200 <= status < 300:
        try:
            raw = json.loads(body) if body.strip() else None
        except (ValueError, UnicodeDecodeError):
            return SUCCESS
        if not isinstance(raw, dict) or not raw.get("status"):
            return SUCCESS
        st = str(raw["status"]).upper()
        return st if st in (SUCCESS, RETRY, DROP) else RETRY
    if status == 404:
        return DROP
    return RETRY


def backoff_s(attempt: int) -> float:
    """The wait after failed attempt ``attempt`` (1-based)."""
    return float(min(BACKOFF_S_MAX, BACKOFF_S_BASE * 2 ** max(0, attempt - 1)))
