"""Patches the API server applies: JSON merge, JSON patch, strategic merge, server-side apply.

Owns the four PATCH content types of the Kubernetes API and the ``managedFields``
bookkeeping behind server-side apply. Pure functions over JSON values: inputs are never
modified, results are fresh objects, and bad input of any shape raises ``PatchError``
(never anything else). Nesting deeper than ``schema.MAX_DEPTH`` is refused.

* ``json_merge_patch`` — RFC 7386 (``application/merge-patch+json``).
* ``json_patch`` — RFC 6902 (``application/json-patch+json``): add, remove, replace,
  move, copy, test; JSON pointers with ``~0``/``~1`` escapes and ``-`` to append.
  Atomic: one failing operation fails the patch.
* ``strategic_merge_patch`` — Kubernetes' strategic merge patch
  (``application/strategic-merge-patch+json``) for the built-in types, driven by the
  ``patch_strategy``/``patch_merge_key`` of ``schema``: lists with a merge strategy
  are merged by their merge key (containers, env, volumes, ports, conditions,
  imagePullSecrets, ownerReferences ...) or as sets (finalizers), other lists are
  replaced; ``null`` deletes; directives ``$patch: replace|delete`` (in maps and list
  items; ``merge`` in a list is refused as in Kubernetes), ``$retainKeys``,
  ``$deleteFromPrimitiveList/<field>`` and ``$setElementOrder/<field>`` (kubectl's
  client-side apply sends these). Fields outside the schema merge as JSON merge
  patch does. Custom resources (``HyperionWorkload``) refuse it, as Kubernetes does
  with 415: see ``supports_strategic``.
* ``apply_patch`` — server-side apply (``application/apply-patch+yaml``), a
  simplified structured-merge-diff; see its docstring for what is and is not
  supported. ``update_managed_fields`` records the fields a non-apply write
  (create, update, patch) changed, so that later applies see their owners.

Theory of operation for server-side apply. A *field set* is a set of paths; a path is
a tuple of FieldsV1 elements (``f:<field>``, ``k:<json of the key fields>`` for an
item of an associative list, ``v:<json>`` for a member of a set list). The set of an
applied configuration holds its leaves (scalars, atomic lists and maps, empty maps)
and the items of its associative and set lists, never the maps in between, which is
what Kubernetes records. Each manager — (name, operation, subresource, and for
Update the apiVersion) — owns a field set, stored in ``metadata.managedFields``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from hyperion.api.resources import ResourceType
from hyperion.api.schema import (
    MAX_DEPTH,
    Schema,
    copy_json,
    json_equal,
    nesting_depth,
    schema_for,
)

# Kubernetes refuses JSON patches with more operations than this (apiserver's limit).
JSON_PATCH_OPS_MAX: Final = 10_000


class PatchError(ValueError):
    """A patch that cannot be applied: malformed, of the wrong type, or failing (a
    ``test`` operation, a missing path). The message is fit for a 400/422 Status."""


def _check_depth(*values: Any) -> None:
    for v in values:
        if nesting_depth(v) > MAX_DEPTH:
            raise PatchError(f"object nesting exceeds {MAX_DEPTH} levels")


def _require_object(value: Any, what: str) -> None:
    if not isinstance(value, dict):
        raise PatchError(f"{what} must be a JSON object, not {_type_name(value)}")


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


# --------------------------------------------------------------------------- JSON merge patch


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy_json(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge(out.get(k), v)
    return out


def json_merge_patch(target: Any, patch: Any) -> dict[str, Any]:
    """RFC 7386: ``patch``'s members replace ``target``'s, objects merge recursively,
    ``null`` removes a member. Both must be JSON objects (Kubernetes objects)."""
    _require_object(patch, "a merge patch")
    _check_depth(target, patch)
    result = _merge(copy_json(target) if isinstance(target, dict) else {}, patch)
    assert isinstance(result, dict)
    return result


# --------------------------------------------------------------------------- JSON patch (RFC 6902)


def parse_pointer(pointer: Any) -> list[str]:
    """The reference tokens of an RFC 6901 JSON pointer (``""`` is the whole document)."""
    if not isinstance(pointer, str):
        raise PatchError(f"a JSON pointer must be a string, not {_type_name(pointer)}")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f'JSON pointer must be empty or start with a "/": {pointer!r}')
    tokens = []
    for raw in pointer[1:].split("/"):
        # "~1" then "~0", so that "~01" means "~1" (RFC 6901 §4).
        if "~" in raw.replace("~0", "").replace("~1", ""):
            raise PatchError(f"invalid escape in JSON pointer {pointer!r}")
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tokens


def _array_index(token: str, length: int, pointer: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isascii() or not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise PatchError(f"invalid array index {token!r} in {pointer!r}")
    i = int(token)
    if i > length or (i == length and not allow_end):
        raise PatchError(f"array index {i} out of bounds in {pointer!r}")
    return i


def _parent(doc: Any, tokens: list[str], pointer: str, op: str) -> Any:
    cur = doc
    for t in tokens[:-1]:
        if isinstance(cur, dict):
            if t not in cur:
                raise PatchError(
                    f"{op} operation does not apply: doc is missing path: "
                    f'"{pointer}": missing value'
                )
            cur = cur[t]
        elif isinstance(cur, list):
            cur = cur[_array_index(t, len(cur), pointer, allow_end=False)]
        else:
            raise PatchError(
                f'{op} operation does not apply: doc is missing path: "{pointer}": missing value'
            )
    return cur


def _get_at(doc: Any, pointer: str, op: str) -> Any:
    tokens = parse_pointer(pointer)
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens, pointer, op), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_array_index(last, len(parent), pointer, allow_end=False)]
    raise PatchError(
        f'{op} operation does not apply: doc is missing path: "{pointer}": missing value'
    )


def _add(doc: Any, pointer: str, value: Any, op: str = "add") -> Any:
    tokens = parse_pointer(pointer)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, pointer, op), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(last, len(parent), pointer, allow_end=True), value)
    else:
        raise PatchError(
            f'{op} operation does not apply: doc is missing path: "{pointer}": missing value'
        )
    return doc


def _remove(doc: Any, pointer: str, op: str = "remove") -> tuple[Any, Any]:
    tokens = parse_pointer(pointer)
    if not tokens:
        raise PatchError(f"{op} operation does not apply: cannot remove the whole document")
    parent, last = _parent(doc, tokens, pointer, op), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_array_index(last, len(parent), pointer, allow_end=False))
    raise PatchError(
        f'{op} operation does not apply: doc is missing path: "{pointer}": missing value'
    )


def _operand(op: dict[str, Any], key: str, name: str) -> Any:
    if key not in op:
        raise PatchError(f'{name} operation is missing "{key}"')
    return op[key]


def json_patch(target: Any, ops: Any) -> dict[str, Any]:
    """RFC 6902: apply the operations in order to a copy of ``target``.

    Any failing operation (a missing path, a failed ``test``, a malformed operation)
    raises ``PatchError`` and nothing is applied. The result must be a JSON object.
    """
    if not isinstance(ops, list):
        raise PatchError(f"a JSON patch must be an array of operations, not {_type_name(ops)}")
    if len(ops) > JSON_PATCH_OPS_MAX:
        raise PatchError(
            f"the allowed maximum operations in a JSON patch is "
            f"{JSON_PATCH_OPS_MAX}, got {len(ops)}"
        )
    _check_depth(target, ops)
    doc = copy_json(target)
    for i, op in enumerate(ops):
        if not isinstance(op, dict):
            raise PatchError(f"operation {i} must be an object, not {_type_name(op)}")
        kind, path = op.get("op"), op.get("path")
        if not isinstance(path, str):
            raise PatchError(f'operation {i} ({kind}) is missing a string "path"')
        if kind == "add":
            doc = _add(doc, path, copy_json(_operand(op, "value", "add")))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            value = copy_json(_operand(op, "value", "replace"))
            if parse_pointer(path):
                _get_at(doc, path, "replace")
                doc, _ = _remove(doc, path, "replace")
            doc = _add(doc, path, value, "replace")
        elif kind == "move":
            source = _operand(op, "from", "move")
            if not isinstance(source, str):
                raise PatchError('move operation "from" must be a string')
            src, dst = parse_pointer(source), parse_pointer(path)
            if len(dst) > len(src) and dst[: len(src)] == src:
                raise PatchError(
                    f"move operation cannot move {source!r} into its own child {path!r}"
                )
            doc, value = _remove(doc, source, "move")
            doc = _add(doc, path, value, "move")
        elif kind == "copy":
            source = _operand(op, "from", "copy")
            if not isinstance(source, str):
                raise PatchError('copy operation "from" must be a string')
            doc = _add(doc, path, copy_json(_get_at(doc, source, "copy")), "copy")
        elif kind == "test":
            expected = _operand(op, "value", "test")
            if not json_equal(_get_at(doc, path, "test"), expected):
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    if not isinstance(doc, dict):
        raise PatchError(f"the patched document must be a JSON object, not {_type_name(doc)}")
    return doc


# --------------------------------------------------------------------------- strategic merge patch

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"
_SET_ELEMENT_ORDER = "$setElementOrder/"


def supports_strategic(rt: ResourceType) -> bool:
    """Whether ``rt`` takes strategic merge patches (built-in types only; a custom
    resource answers 415 Unsupported Media Type, as in Kubernetes)."""
    return not rt.is_custom and schema_for(rt) is not None


def _is_directive_key(k: Any) -> bool:
    return isinstance(k, str) and (
        k in (_DIRECTIVE, _RETAIN_KEYS)
        or k.startswith(_DELETE_FROM_PRIMITIVE_LIST)
        or k.startswith(_SET_ELEMENT_ORDER)
    )


def _clean(value: Any) -> tuple[Any, bool]:
    """``value`` without directives and null members; (value, keep)."""
    if isinstance(value, dict):
        if _DIRECTIVE in value:
            return None, False
        out = {}
        for k, v in value.items():
            if v is None or _is_directive_key(k):
                continue
            v, keep = _clean(v)
            if keep:
                out[k] = v
        return out, True
    if isinstance(value, list):
        out_list = []
        for v in value:
            v, keep = _clean(v)
            if keep:
                out_list.append(v)
        return out_list, True
    return value, True


def _strategies(node: Schema | None) -> tuple[str, ...]:
    if node is None or not node.patch_strategy:
        return ()
    return tuple(s.strip() for s in node.patch_strategy.split(","))


def _items(node: Schema | None) -> Schema | None:
    return node.items if node is not None and node.type == "array" else None


def _child(node: Schema | None, key: Any) -> Schema | None:
    return node.child(key) if node is not None else None


def _order_index(order: list[Any], item: Any, merge_key: str) -> int:
    probe = item.get(merge_key) if merge_key and isinstance(item, dict) else item
    for i, o in enumerate(order):
        v = o.get(merge_key) if merge_key and isinstance(o, dict) else o
        if merge_key and not isinstance(o, dict):
            continue
        if json_equal(v, probe):
            return i
    return -1


def _sort_by(items: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    # Items found in `order` keep its order; the others go last, in their own order.
    indexed = [(_order_index(order, it, merge_key), n, it) for n, it in enumerate(items)]
    found = sorted((x for x in indexed if x[0] >= 0), key=lambda x: (x[0], x[1]))
    rest = [x for x in indexed if x[0] < 0]
    return [x[2] for x in found] + [x[2] for x in rest]


def _normalize_order(
    patch_items: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
) -> list[Any]:
    """Kubernetes' element order after a merge: patch items in patch order, server-only
    items in server order, interleaved where the server order relates them."""
    right = _sort_by(patch_items, patch_order, merge_key)
    left = _sort_by(server_only, server_order, merge_key)
    out, i, j = [], 0, 0
    while i < len(left) or j < len(right):
        if j >= len(right):
            out.append(left[i])
            i += 1
        elif i >= len(left):
            out.append(right[j])
            j += 1
        else:
            li = _order_index(server_order, left[i], merge_key)
            ri = _order_index(server_order, right[j], merge_key)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _partition(merged: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    present: list[Any] = []
    absent: list[Any] = []
    for item in merged:
        (present if _order_index(by, item, merge_key) >= 0 else absent).append(item)
    return present, absent


def _element_kind(*lists: list[Any]) -> str:
    kinds = set()
    for lst in lists:
        for v in lst:
            if isinstance(v, list):
                raise PatchError("lists of lists are not supported in a strategic merge patch")
            kinds.add("map" if isinstance(v, dict) else "scalar")
    if len(kinds) > 1:
        raise PatchError("list element types are not identical in a strategic merge patch")
    return kinds.pop() if kinds else "scalar"


def _merge_key_value(item: dict[str, Any], merge_key: str) -> Any:
    if merge_key not in item:
        raise PatchError(
            f"map: {json.dumps(item, default=str)[:200]} does not contain declared "
            f"merge key: {merge_key}"
        )
    return item[merge_key]


def _smp_list(original: list[Any], patch: list[Any], node: Schema | None) -> list[Any]:
    if not original and not patch:
        return original
    kind = _element_kind(original, patch)
    merge_key = node.patch_merge_key if node is not None else ""
    server_order = list(original)
    if kind == "scalar":
        merged = list(original)
        for v in patch:
            if not any(json_equal(v, m) for m in merged):
                merged.append(v)
        items, rest = _partition(merged, patch, "")
        return _normalize_order(items, rest, patch, server_order, "")
    if not merge_key:
        raise PatchError("cannot merge lists without merge key")
    replace = False
    plain: list[dict[str, Any]] = []
    for item in patch:
        directive = item.get(_DIRECTIVE, None) if _DIRECTIVE in item else None
        if _DIRECTIVE not in item:
            plain.append(item)
        elif directive == "delete":
            key = _merge_key_value(item, merge_key)
            original = [
                o
                for o in original
                if not (isinstance(o, dict) and json_equal(o.get(merge_key), key))
            ]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError("merging lists cannot yet be specified in the patch")
        else:
            raise PatchError(
                f"Unknown patch type: {directive} in map: {json.dumps(item, default=str)[:200]}"
            )
    if replace:
        return [_clean(p)[0] for p in plain]
    merged = list(original)
    for item in plain:
        key = _merge_key_value(item, merge_key)
        for i, o in enumerate(merged):
            if isinstance(o, dict) and merge_key in o and json_equal(o[merge_key], key):
                merged[i] = _smp_map(o, item, _items(node))
                break
        else:
            merged.append(_clean(item)[0])
    for m in merged:
        _merge_key_value(m, merge_key)
    items, rest = _partition(merged, plain, merge_key)
    return _normalize_order(items, rest, plain, server_order, merge_key)


def _list_or_error(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise PatchError(f"{what} must be a list, not {_type_name(value)}")
    return value


def _apply_set_element_order(
    original: dict[str, Any], patch: dict[str, Any], node: Schema | None
) -> None:
    for key in [k for k in patch if isinstance(k, str) and k.startswith(_SET_ELEMENT_ORDER)]:
        order = _list_or_error(patch.pop(key), key)
        field = key[len(_SET_ELEMENT_ORDER) :]
        if not field:
            raise PatchError(f"invalid $setElementOrder directive {key!r}")
        sub = _child(node, field)
        merge_key = sub.patch_merge_key if sub is not None else ""
        has_orig, has_patch = field in original, field in patch
        orig = _list_or_error(original[field], field) if has_orig else []
        plist = _list_or_error(patch[field], field) if has_patch else []
        if merge_key:
            for o in order:
                if not isinstance(o, dict):
                    raise PatchError(f"{key} items must be objects with {merge_key!r}")
                _merge_key_value(o, merge_key)
        if has_orig and has_patch:
            if "merge" in _strategies(sub):
                merged = _smp_list(orig, plist, sub)
            else:
                merged = _clean(plist)[0]
        elif has_patch:
            merged = _clean(plist)[0]
        elif has_orig:
            merged = orig
        else:
            continue
        items, rest = _partition(merged, order, merge_key)
        original[field] = _normalize_order(items, rest, order, orig, merge_key)
        patch.pop(field, None)


def _smp_map(original: dict[str, Any], patch: dict[str, Any], node: Schema | None) -> Any:
    if _DIRECTIVE in patch:
        directive = patch[_DIRECTIVE]
        if directive == "replace":
            return _clean({k: v for k, v in patch.items() if k != _DIRECTIVE})[0]
        if directive == "delete":
            return {}
        raise PatchError(f"Unknown patch type: {directive} in map")
    original = dict(original)
    patch = dict(patch)
    if _RETAIN_KEYS in patch:
        retain = patch.pop(_RETAIN_KEYS)
        if not isinstance(retain, list):
            raise PatchError("invalid patch format of retainKeys")
        for k, v in patch.items():
            if v is not None and not _is_directive_key(k) and k not in retain:
                raise PatchError("invalid patch format of retainKeys")
        original = {k: v for k, v in original.items() if k in retain}
    _apply_set_element_order(original, patch, node)
    for k, pv in patch.items():
        if isinstance(k, str) and k.startswith(_DELETE_FROM_PRIMITIVE_LIST):
            field = k[len(_DELETE_FROM_PRIMITIVE_LIST) :]
            remove = _list_or_error(pv, k)
            if isinstance(original.get(field), list):
                original[field] = [
                    v for v in original[field] if not any(json_equal(v, r) for r in remove)
                ]
            continue
        if pv is None:
            original.pop(k, None)
            continue
        if k not in original:
            value, keep = _clean(pv)
            if keep:
                original[k] = value
            continue
        ov = original[k]
        sub = _child(node, k)
        if isinstance(ov, dict) and isinstance(pv, dict):
            original[k] = pv if "replace" in _strategies(sub) else _smp_map(ov, pv, sub)
        elif isinstance(ov, list) and isinstance(pv, list):
            if "merge" in _strategies(sub):
                original[k] = _smp_list(ov, pv, sub)
            else:
                original[k] = _clean(pv)[0]
        else:
            value, keep = _clean(pv)
            if keep:
                original[k] = value
            else:
                original.pop(k, None)
    return original


def strategic_merge_patch(target: Any, patch: Any, rt: ResourceType) -> dict[str, Any]:
    """Apply a Kubernetes strategic merge patch to a copy of ``target`` (see module doc).

    Raises ``PatchError`` for a custom resource (serve 415), a malformed patch, or a
    directive that does not apply (an item without its merge key, an unknown ``$patch``).
    """
    if not supports_strategic(rt):
        raise PatchError(
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, "
            "application/apply-patch+yaml"
        )
    _require_object(patch, "a strategic merge patch")
    _check_depth(target, patch)
    base = copy_json(target) if isinstance(target, dict) else {}
    result = _smp_map(base, copy_json(patch), schema_for(rt))
    if not isinstance(result, dict):
        raise PatchError("the patched document must be a JSON object")
    return result


# --------------------------------------------------------------------------- server-side apply

Path = tuple[str, ...]
APPLY: Final = "Apply"
UPDATE: Final = "Update"
FIELDS_V1: Final = "FieldsV1"
# Fields the API server never records in managedFields (stripmeta.go).
_STRIPPED: Final = frozenset(
    {
        ("f:apiVersion",),
        ("f:kind",),
        ("f:metadata",),
        ("f:metadata", "f:name"),
        ("f:metadata", "f:namespace"),
        ("f:metadata", "f:creationTimestamp"),
        ("f:metadata", "f:selfLink"),
        ("f:metadata", "f:uid"),
        ("f:metadata", "f:clusterName"),
        ("f:metadata", "f:generation"),
        ("f:metadata", "f:managedFields"),
        ("f:metadata", "f:resourceVersion"),
    }
)
_BEFORE_FIRST_APPLY: Final = "before-first-apply"


@dataclass(frozen=True, slots=True)
class Conflict:
    """A field the applier wants to change that another manager owns.

    ``field`` is the path as Kubernetes prints it: ``.spec.replicas``,
    ``.spec.template.spec.containers[name="nginx"].image``.
    """

    manager: str
    operation: str
    api_version: str
    subresource: str
    field: str
    time: str = ""

    @property
    def owner(self) -> str:
        """The owner as Kubernetes names it: ``"kubectl-edit" using apps/v1 at <time>``."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
            if self.time:
                text += f" at {self.time}"
        return text

    def cause(self) -> dict[str, str]:
        """The ``StatusCause`` of a 409 Conflict Status."""
        return {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {self.owner}",
            "field": self.field,
        }

    def __str__(self) -> str:
        return f"conflict with {self.owner}: {self.field}"


def conflict_message(conflicts: Iterable[Conflict]) -> str:
    """The message of the 409 Status for apply conflicts, worded as Kubernetes words it."""
    cs = list(conflicts)
    if len(cs) == 1:
        return f"Apply failed with 1 conflict: {cs[0]}"
    by_owner: dict[str, list[str]] = {}
    for c in cs:
        by_owner.setdefault(c.owner, []).append(c.field)
    lines = []
    for owner in sorted(by_owner):
        lines.append(f"conflicts with {owner}:")
        lines.extend(f"- {f}" for f in by_owner[owner])
    return f"Apply failed with {len(cs)} conflicts: " + "\n".join(lines)


def path_string(path: Path) -> str:
    """A field path as Kubernetes prints it: ``.spec.containers[name="nginx"].image``."""
    out = []
    for el in path:
        tag, rest = el[:2], el[2:]
        if tag == "f:":
            out.append("." + rest)
        elif tag == "k:":
            try:
                keys = json.loads(rest)
                out.append(
                    "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(keys.items())) + "]"
                )
            except (ValueError, AttributeError):
                out.append(f"[{rest}]")
        elif tag == "v:":
            out.append(f"[={rest}]")
        else:
            out.append(f"[{rest}]")
    return "".join(out)


def _key_element(item: Any, node: Schema) -> str | None:
    if not isinstance(item, dict) or node.items is None:
        return None
    fields = {}
    for k in node.list_map_keys:
        v = item.get(k)
        if v is None:
            sub = node.items.child(k)
            v = sub.default if sub is not None and sub.has_default else None
        if v is None or isinstance(v, dict | list):
            return None
        fields[k] = v
    return "k:" + json.dumps(fields, sort_keys=True, separators=(",", ":"))


def _value_element(v: Any) -> str:
    return "v:" + json.dumps(v, sort_keys=True, separators=(",", ":"))


def _granular(node: Schema | None) -> bool:
    return node is None or (node.type in ("object", "any") and node.map_type != "atomic")


def _walk_set(node: Schema | None, value: Any, prefix: Path, out: set[Path], strict: bool) -> None:
    if isinstance(value, dict) and _granular(node):
        members = [(k, v) for k, v in value.items() if v is not None]
        if not members:
            if prefix:
                out.add(prefix)
            return
        for k, v in members:
            _walk_set(_child(node, k), v, (*prefix, f"f:{k}"), out, strict)
        return
    if isinstance(value, list) and value and node is not None and node.type == "array":
        if node.list_type == "map" and node.list_map_keys:
            elements = [_key_element(item, node) for item in value]
            if None in elements or len(set(elements)) != len(elements):
                if strict:
                    _bad_associative_list(node, value, prefix, elements)
                out.add(prefix)  # an update stores what it is given: own it whole
                return
            for el, item in zip(elements, value, strict=True):
                assert el is not None
                out.add((*prefix, el))
                _walk_set(node.items, item, (*prefix, el), out, strict)
            return
        if node.list_type == "set" and all(not isinstance(v, dict | list) for v in value):
            elements = [_value_element(v) for v in value]
            if len(set(elements)) != len(elements) and strict:
                raise PatchError(f"{path_string(prefix)}: duplicate entries in a set list")
            out.update((*prefix, el) for el in elements if el is not None)
            return
    if prefix:
        out.add(prefix)


def _bad_associative_list(
    node: Schema, value: list[Any], prefix: Path, elements: list[str | None]
) -> None:
    for i, (el, item) in enumerate(zip(elements, value, strict=True)):
        if el is None:
            missing = [
                k for k in node.list_map_keys if not isinstance(item, dict) or item.get(k) is None
            ]
            raise PatchError(
                f"{path_string(prefix)}: element {i}: associative list with keys has an "
                f"element that omits key field {json.dumps(missing[0] if missing else '')} "
                "(and doesn't have default value)"
            )
    raise PatchError(f"{path_string(prefix)}: duplicate entries for key in an associative list")


def field_set(rt: ResourceType, obj: Any, *, strict: bool = False) -> set[Path]:
    """The field set of ``obj``: its leaves and the items of its associative and set
    lists, without the fields Kubernetes never records (apiVersion, kind, name ...).

    ``strict`` raises ``PatchError`` for an associative-list item without its keys or a
    duplicate key (an applied configuration); otherwise such a list is owned whole.
    """
    out: set[Path] = set()
    if isinstance(obj, dict):
        _walk_set(schema_for(rt), obj, (), out, strict)
    return out - _STRIPPED


def _find(value: Any, path: Path, node: Schema | None) -> tuple[bool, Any, Schema | None]:
    """The value at ``path`` in ``value``: (found, value, its schema)."""
    cur, cur_node = value, node
    for el in path:
        tag, rest = el[:2], el[2:]
        if tag == "f:":
            if not isinstance(cur, dict) or rest not in cur:
                return False, None, None
            cur, cur_node = cur[rest], _child(cur_node, rest)
        elif tag == "k:":
            if not isinstance(cur, list) or cur_node is None or cur_node.type != "array":
                return False, None, None
            for item in cur:
                if _key_element(item, cur_node) == el:
                    cur, cur_node = item, cur_node.items
                    break
            else:
                return False, None, None
        elif tag == "v:":
            if not isinstance(cur, list):
                return False, None, None
            for item in cur:
                if not isinstance(item, dict | list) and _value_element(item) == el:
                    cur, cur_node = item, _items(cur_node)
                    break
            else:
                return False, None, None
        else:
            return False, None, None
    return True, cur, cur_node


def _remove_path(obj: Any, path: Path, node: Schema | None) -> None:
    found, parent, parent_node = _find(obj, path[:-1], node)
    if not found:
        return
    el = path[-1]
    tag, rest = el[:2], el[2:]
    if tag == "f:" and isinstance(parent, dict):
        parent.pop(rest, None)
    elif tag == "k:" and isinstance(parent, list) and parent_node is not None:
        parent[:] = [item for item in parent if _key_element(item, parent_node) != el]
    elif tag == "v:" and isinstance(parent, list):
        parent[:] = [v for v in parent if isinstance(v, dict | list) or _value_element(v) != el]


def _interleave(config_keys: list[str], live_keys: list[str]) -> list[str]:
    """Merged list order: the configuration's items in its order, each item only the
    live object has placed right after the item that preceded it there."""
    taken = set(config_keys)
    head: list[str] = []
    followers: dict[str, list[str]] = {}
    for i, k in enumerate(live_keys):
        if k not in taken:
            (followers.setdefault(live_keys[i - 1], []) if i else head).append(k)
    out: list[str] = []
    stack = list(reversed(config_keys)) + list(reversed(head))
    while stack:
        k = stack.pop()
        out.append(k)
        stack.extend(reversed(followers.get(k, ())))
    return out


def _apply_merge(node: Schema | None, live: Any, config: Any) -> Any:
    if isinstance(config, dict) and isinstance(live, dict) and _granular(node):
        out = dict(live)
        for k, v in config.items():
            if v is None:
                continue
            out[k] = _apply_merge(_child(node, k), live.get(k), v)
        return out
    if isinstance(config, list) and isinstance(live, list) and node is not None:
        if node.list_type == "map" and node.list_map_keys:
            live_els = [_key_element(item, node) for item in live]
            cfg_els = [_key_element(item, node) for item in config]
            if None in live_els or len(set(live_els)) != len(live_els):
                return _without_nulls(config)  # a live list we cannot key: replace it
            items: dict[str, Any] = dict(zip(live_els, live, strict=True))  # type: ignore[arg-type]
            for el, item in zip(cfg_els, config, strict=True):
                assert el is not None  # field_set(strict=True) checked the configuration
                items[el] = _apply_merge(node.items, items.get(el), item)
            order = _interleave(list(dict.fromkeys(cfg_els)), live_els)  # type: ignore[arg-type]
            return [items[el] for el in order]
        if node.list_type == "set" and all(not isinstance(v, dict | list) for v in live + config):
            values = {_value_element(v): v for v in live}
            values.update({_value_element(v): v for v in config})
            order = _interleave(
                list(dict.fromkeys(_value_element(v) for v in config)),
                list(dict.fromkeys(_value_element(v) for v in live)),
            )
            return [values[el] for el in order]
    return _without_nulls(config)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


# FieldsV1: a trie of path elements; "." marks a path that is itself a member and has
# members below it.


def encode_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """FieldsV1 JSON of a field set (``{"f:spec": {"f:replicas": {}}}``)."""
    members = set(paths)
    root: dict[str, Any] = {}
    for p in sorted(members):
        node = root
        for el in p:
            node = node.setdefault(el, {})
    for p in members:
        node = root
        for el in p:
            node = node[el]
        if node and "." not in node:
            node["."] = {}
    return _sorted_trie(root)


def _sorted_trie(node: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted_trie(node[k]) for k in sorted(node)}


def decode_fields_v1(fields: Any) -> set[Path] | None:
    """The field set of FieldsV1 JSON, or None if it is malformed."""
    if not isinstance(fields, dict) or nesting_depth(fields) > MAX_DEPTH:
        return None
    out: set[Path] = set()
    stack: list[tuple[Path, dict[str, Any]]] = [((), fields)]
    while stack:
        prefix, node = stack.pop()
        for k, v in node.items():
            if k == ".":
                if prefix:
                    out.add(prefix)
                continue
            if (
                not isinstance(k, str)
                or k[:2] not in ("f:", "k:", "v:", "i:")
                or not (isinstance(v, dict))
            ):
                return None
            path = (*prefix, k)
            if not v:
                out.add(path)
            else:
                stack.append((path, v))
    return out


@dataclass(slots=True)
class _Manager:
    manager: str
    operation: str
    api_version: str
    subresource: str
    time: Any
    fields: set[Path]

    @property
    def identity(self) -> tuple[str, str, str, str]:
        # An applier is the same manager whatever apiVersion it applies with.
        version = "" if self.operation == APPLY else self.api_version
        return (self.manager, self.operation, self.subresource, version)

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        }
        if self.time is not None:
            out["time"] = self.time
        out["fieldsType"] = FIELDS_V1
        out["fieldsV1"] = encode_fields_v1(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def _managers(obj: Any) -> list[_Manager] | None:
    """The managers recorded in ``obj``'s managedFields (None if it has none)."""
    entries = (
        obj.get("metadata", {}).get("managedFields")
        if isinstance(obj, dict) and (isinstance(obj.get("metadata"), dict))
        else None
    )
    if not isinstance(entries, list) or not entries:
        return None
    out = []
    for e in entries:
        if not isinstance(e, dict):
            continue
        fields = decode_fields_v1(e.get("fieldsV1"))
        manager, operation = e.get("manager", ""), e.get("operation")
        if fields is None or operation not in (APPLY, UPDATE) or not isinstance(manager, str):
            continue
        version, sub = e.get("apiVersion", ""), e.get("subresource", "")
        out.append(
            _Manager(
                manager,
                operation,
                version if isinstance(version, str) else "",
                sub if isinstance(sub, str) else "",
                e.get("time"),
                fields,
            )
        )
    return out


def _store_managers(obj: dict[str, Any], managers: list[_Manager]) -> None:
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        return
    kept = [m for m in managers if m.fields]
    # As Kubernetes sorts them: Apply before Update, then oldest first.
    kept.sort(
        key=lambda m: (m.operation, str(m.time or ""), m.manager, m.api_version, m.subresource)
    )
    meta["managedFields"] = [m.entry() for m in kept]


def _restrict_to_subresource(rt: ResourceType, obj: dict[str, Any], subresource: str) -> None:
    # The main resource ignores status and the status subresource ignores the rest, as
    # the registry strategies of resources with a status subresource do.
    if "status" not in rt.subresources:
        return
    if subresource == "status":
        for k in list(obj):
            if k not in ("apiVersion", "kind", "metadata", "status"):
                del obj[k]
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            for k in list(meta):
                if k not in ("name", "namespace"):
                    del meta[k]
    elif subresource == "":
        obj.pop("status", None)


def _prefixes(paths: Iterable[Path]) -> set[Path]:
    out: set[Path] = set()
    for p in paths:
        for i in range(1, len(p) + 1):
            out.add(p[:i])
    return out


def apply_patch(
    live: dict[str, Any] | None,
    applied: Any,
    rt: ResourceType,
    manager: str,
    force: bool,
    *,
    subresource: str = "",
    time: str | None = None,
) -> tuple[dict[str, Any], list[Conflict]]:
    """Server-side apply of ``applied`` (the parsed apply-patch+yaml body) as ``manager``.

    Returns (object, conflicts). Conflicts are returned only when nothing was applied
    (``force`` false): the object is then ``live`` unchanged (``{}`` if None) and the
    caller answers 409 (``conflict_message``, ``Conflict.cause``). Otherwise conflicts
    is empty (forced ones were taken over) and the object is ``live`` merged with
    ``applied``, its ``metadata.managedFields`` updated. The applier's entry gets
    ``time`` (an RFC 3339 string) if given, else none: the caller stamps it.

    Supported, as Kubernetes does it:

    * Merging by the schema: maps and structs merge field by field; associative lists
      (``x-kubernetes-list-type: map``: containers, env, ports, volumes, conditions,
      service ports, users ...) merge item by item by their keys, key defaults applied
      (a port without protocol is keyed TCP); set lists merge as sets; atomic lists,
      atomic maps (label selectors) and scalars are replaced. Open subtrees merge maps
      and replace lists.
    * Ownership: the applier owns exactly the field set of its configuration; a
      field or list item it applied before and no longer applies is removed from the
      object unless another manager still owns it (or something below it).
    * Conflicts: a field in the configuration that another manager (an applier, or an
      updater recorded by ``update_managed_fields``) owns with a different value.
      ``force`` takes such fields over (removing them from the other managers).
    * The main resource ignores ``status`` and the ``status`` subresource everything
      but ``status``, for types with a status subresource. apiVersion, kind and
      metadata name/namespace/uid/... are never owned. An object with no managedFields
      is first owned by ``before-first-apply``, as in Kubernetes.

    Not supported: conversion between API versions (every type has one version),
    ``x-kubernetes-map-type: granular`` vs ``separable`` nuances, the
    ``kubectl.kubernetes.io/last-applied-configuration`` hand-over between client-side
    and server-side apply, apply-time defaulting of fields other than list keys
    (callers default the result), and the 10 ``Update`` managers cap. Item order in
    merged lists is a close approximation of structured-merge-diff's (configuration
    order, live-only items kept in place), not a byte-for-byte port.

    Raises ``PatchError`` for a configuration that is not an object, names another kind
    or apiVersion, sets ``metadata.managedFields``, or has an associative-list item
    without its keys or with duplicate keys.
    """
    _require_object(applied, "an apply configuration")
    _check_depth(live, applied)
    if not isinstance(manager, str) or not manager:
        raise PatchError("PATCH requests with apply-patch content type require a fieldManager")
    if applied.get("kind") in (None, ""):
        raise PatchError("Object 'Kind' is missing in the apply configuration")
    if applied.get("kind") != rt.kind or applied.get("apiVersion") != rt.api_version:
        raise PatchError(
            f"the apply configuration is {applied.get('apiVersion')!s}, Kind="
            f"{applied.get('kind')!s}; expected {rt.api_version}, Kind={rt.kind}"
        )
    meta = applied.get("metadata")
    if isinstance(meta, dict) and meta.get("managedFields") not in (None, []):
        raise PatchError("metadata.managedFields must be nil")
    node = schema_for(rt)
    config = _without_nulls(applied)
    _restrict_to_subresource(rt, config, subresource)
    base = copy_json(live) if isinstance(live, dict) else {}
    new_set = field_set(rt, config, strict=True)

    managers = _managers(base)
    if managers is None:
        managers = []
        if live is not None:
            before = field_set(rt, base)
            if before:
                managers.append(
                    _Manager(_BEFORE_FIRST_APPLY, UPDATE, rt.api_version, "", None, before)
                )
    me_identity = (manager, APPLY, subresource, "")
    me = next((m for m in managers if m.identity == me_identity), None)
    others = [m for m in managers if m is not me]

    conflicts = []
    for m in others:
        for p in sorted(new_set & m.fields):
            found_live, lv, _ = _find(base, p, node)
            found_cfg, cv, cnode = _find(config, p, node)
            if not (found_live and found_cfg) or p[-1][:2] in ("k:", "v:"):
                continue
            if isinstance(cv, dict) and isinstance(lv, dict) and _granular(cnode):
                continue
            if not json_equal(lv, cv):
                conflicts.append(
                    Conflict(
                        m.manager,
                        m.operation,
                        m.api_version,
                        m.subresource,
                        path_string(p),
                        m.time if isinstance(m.time, str) else "",
                    )
                )
    if conflicts and not force:
        return base, conflicts
    if conflicts:
        taken = {c.field for c in conflicts}
        for m in others:
            m.fields = {p for p in m.fields if path_string(p) not in taken}

    result = _apply_merge(node, base, config)
    if not isinstance(result, dict):
        raise PatchError("the applied object must be a JSON object")
    previous = me.fields if me is not None else set()
    kept = _prefixes(new_set.union(*(m.fields for m in others)))
    # Shortest first: removing an item removes what is below it.
    for p in sorted(previous - new_set, key=len):
        if p not in kept:
            _remove_path(result, p, node)

    if me is None:
        me = _Manager(manager, APPLY, rt.api_version, subresource, None, set())
    me.fields = new_set
    me.api_version = rt.api_version
    me.time = time  # None: the caller stamps the entry it finds without a time
    _store_managers(result, [*others, me])
    return result, []


def _changed(rt: ResourceType, old: Any, new: Any) -> tuple[set[Path], set[Path]]:
    """(paths of ``new`` added or changed since ``old``, paths of ``old`` gone)."""
    node = schema_for(rt)
    new_set, old_set = field_set(rt, new), field_set(rt, old)
    changed = set()
    for p in new_set:
        found, ov, onode = _find(old, p, node)
        if not found:
            changed.add(p)
            continue
        if p[-1][:2] in ("k:", "v:"):
            continue
        _, nv, _ = _find(new, p, node)
        if isinstance(ov, dict) and isinstance(nv, dict) and _granular(onode):
            continue
        if not json_equal(ov, nv):
            changed.add(p)
    return changed, old_set - new_set


def update_managed_fields(
    old: dict[str, Any] | None,
    new: Any,
    rt: ResourceType,
    manager: str,
    *,
    subresource: str = "",
    time: str | None = None,
) -> dict[str, Any]:
    """``new`` with ``metadata.managedFields`` updated for a non-apply write by ``manager``.

    A create (``old`` None) makes ``manager`` own every field; an update makes it own
    the fields it added or changed, taking them from any other manager (updates always
    win), and drops removed fields from every manager. The managers come from ``old``,
    unless ``new`` carries different managedFields (a client may rewrite them; ``[]``
    resets them). ``time`` is set on the updater's entry if given. Raises
    ``PatchError`` only for a non-object ``new`` or nesting beyond ``MAX_DEPTH``.
    """
    if not isinstance(new, dict):
        raise PatchError(f"the object must be a JSON object, not {_type_name(new)}")
    _check_depth(old, new)
    out = copy_json(new)
    old_obj = old if isinstance(old, dict) else None
    old_managers = (_managers(old_obj) if old_obj is not None else None) or []
    meta = out.get("metadata")
    sent = meta.get("managedFields") if isinstance(meta, dict) else None
    if isinstance(sent, list):
        # A client may rewrite managedFields ([] resets them); sending back what it read
        # changes nothing.
        mine = _managers(out) or []
        managers = old_managers if _same(mine, old_managers) and sent else mine
    else:
        managers = old_managers
    if old_obj is None:
        changed, removed = field_set(rt, out), set[Path]()
    else:
        changed, removed = _changed(rt, old_obj, out)
    identity = (manager, UPDATE, subresource, rt.api_version)
    me = next((m for m in managers if m.identity == identity), None)
    for m in managers:
        if m is not me:
            m.fields -= changed
        m.fields -= removed
    if changed:
        if me is None:
            me = _Manager(manager, UPDATE, rt.api_version, subresource, None, set())
            managers.append(me)
        me.fields |= changed
        me.time = time  # None: the caller stamps the entry it finds without a time
    _store_managers(out, managers)
    assert isinstance(out, dict)
    return out


def _same(a: list[_Manager], b: list[_Manager]) -> bool:
    key = lambda m: (m.identity, sorted(m.fields))  # noqa: E731
    return sorted(map(key, a)) == sorted(map(key, b))


def managed_paths(obj: Any) -> Iterator[tuple[str, str, str]]:
    """(manager, operation, path) for every field recorded in ``obj``'s managedFields,
    paths as Kubernetes prints them; for inspection and tests."""
    for m in _managers(obj) or []:
        for p in sorted(m.fields):
            yield m.manager, m.operation, path_string(p)
