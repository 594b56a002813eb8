"""Kubernetes label and field selectors over API objects.

Label selectors take the full Kubernetes syntax: ``a=b``, ``a==b``, ``a!=b``,
``a in (x,y)``, ``a notin (x,y)``, ``a`` (exists) and ``!a`` (absent), joined by commas.
Field selectors take ``field=value``, ``field==value`` and ``field!=value``; which fields
are allowed depends on the resource (``metadata.name`` and ``metadata.namespace`` always,
plus the ones in ``FIELDS``), as on a real API server, and an unknown field is an error.
Malformed selectors raise ``ValueError`` with a message fit for a 400 ``Status``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hyperion.api.schema import is_label_value

MAX_SELECTOR_CHARS = 4096

_SET = re.compile(
    r"^\s*(!?)\s*([^\s!=<>(),]+)\s*(?:(in|notin)\s*\(([^()]*)\)|(==|=|!=)\s*([^\s,()]*))?\s*$"
)


def _dig(obj: dict[str, Any], *path: str) -> str:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(p)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def _field(*path: str) -> Callable[[dict[str, Any]], str]:
    return lambda obj: _dig(obj, *path)


_COMMON: dict[str, Callable[[dict[str, Any]], str]] = {
    "metadata.name": _field("metadata", "name"),
    "metadata.namespace": _field("metadata", "namespace"),
}
# Extra fields per "<group>/<plural>", as the real API server registers them.
FIELDS: dict[str, dict[str, Callable[[dict[str, Any]], str]]] = {
    "/pods": {
        "spec.nodeName": _field("spec", "nodeName"),
        "spec.restartPolicy": _field("spec", "restartPolicy"),
        "spec.schedulerName": _field("spec", "schedulerName"),
        "spec.serviceAccountName": _field("spec", "serviceAccountName"),
        "status.phase": _field("status", "phase"),
        "status.podIP": _field("status", "podIP"),
        "status.nominatedNodeName": _field("status", "nominatedNodeName"),
    },
    "/events": {
        "involvedObject.kind": _field("involvedObject", "kind"),
        "involvedObject.namespace": _field("involvedObject", "namespace"),
        "involvedObject.name": _field("involvedObject", "name"),
        "involvedObject.uid": _field("involvedObject", "uid"),
        "involvedObject.apiVersion": _field("involvedObject", "apiVersion"),
        "involvedObject.resourceVersion": _field("involvedObject", "resourceVersion"),
        "involvedObject.fieldPath": _field("involvedObject", "fieldPath"),
        "reason": _field("reason"),
        "reportingComponent": _field("reportingComponent"),
        "source": _field("source", "component"),
        "type": _field("type"),
    },
    "/namespaces": {"status.phase": _field("status", "phase")},
    "/nodes": {"spec.unschedulable": _field("spec", "unschedulable")},
    "/services": {
        "spec.clusterIP": _field("spec", "clusterIP"),
        "spec.type": _field("spec", "type"),
    },
    "batch/jobs": {"status.successful": _field("status", "succeeded")},
    "hyperion.io/hyperionworkloads": {"status.phase": _field("status", "phase")},
}


@dataclass(frozen=True, slots=True)
class LabelRequirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        have = labels.get(self.key)
        if self.op == "exists":
            return have is not None
        if self.op == "!":
            return have is None
        if self.op in ("=", "in"):
            return have is not None and have in self.values
        return have is None or have not in self.values  # != and notin


@dataclass(frozen=True, slots=True)
class LabelSelector:
    requirements: tuple[LabelRequirement, ...] = ()

    def matches(self, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        return all(r.matches(labels) for r in self.requirements)


def _split(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced parentheses")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise ValueError("unbalanced parentheses")
    parts.append("".join(cur))
    return parts


def _check_value(value: str) -> str:
    problems = is_label_value(value)
    if problems:
        raise ValueError(f"invalid label value: {value!r}: {'; '.join(problems)}")
    return value


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a label selector; raise ValueError when it is malformed."""
    if len(text) > MAX_SELECTOR_CHARS:
        raise ValueError("selector is too long")
    if not text.strip():
        return LabelSelector()
    reqs = []
    for part in _split(text):
        m = _SET.match(part)
        if not m or not part.strip():
            raise ValueError(f"unable to parse requirement: {part.strip()!r}")
        neg, key, set_op, set_values, op, value = m.groups()
        if neg and (set_op or op):
            raise ValueError(f"unable to parse requirement: {part.strip()!r}")
        if set_op:
            values = tuple(_check_value(v.strip()) for v in set_values.split(","))
            reqs.append(LabelRequirement(key, set_op, values))
        elif op:
            reqs.append(LabelRequirement(key, "!=" if op == "!=" else "=", (_check_value(value),)))
        else:
            reqs.append(LabelRequirement(key, "!" if neg else "exists"))
    return LabelSelector(tuple(reqs))


@dataclass(frozen=True, slots=True)
class FieldSelector:
    terms: tuple[tuple[Callable[[dict[str, Any]], str], bool, str], ...] = ()
    fields: tuple[tuple[str, str, str], ...] = ()  # (field, op, value), for callers

    def matches(self, obj: dict[str, Any]) -> bool:
        return all((get(obj) == value) == equal for get, equal, value in self.terms)


def parse_field_selector(text: str, resource: str) -> FieldSelector:
    """Parse a field selector for ``resource`` ("<group>/<plural>"); ValueError if bad."""
    if len(text) > MAX_SELECTOR_CHARS:
        raise ValueError("selector is too long")
    if not text.strip():
        return FieldSelector()
    allowed = {**_COMMON, **FIELDS.get(resource, {})}
    terms, fields = [], []
    for part in text.split(","):
        part = part.strip()
        m = re.match(r"^([^=!]+?)\s*(==|=|!=)\s*(.*)$", part)
        if not m:
            raise ValueError(f"invalid selector: {part!r}; can't understand it")
        name, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        get = allowed.get(name)
        if get is None:
            raise ValueError(f'field label not supported: "{name}"')
        terms.append((get, op != "!=", value))
        fields.append((name, "!=" if op == "!=" else "=", value))
    return FieldSelector(tuple(terms), tuple(fields))
