"""The schemas of the served types: validation, defaulting, unknown fields, OpenAPI v3.

Owns one schema tree per served resource (``SCHEMAS``), written in a small DSL
(``Schema``), and everything derived from it:

* ``validate`` / ``validate_update`` — structural checks (types, required fields,
  enums, minimums, list-map keys) driven by the schema, then the semantic checks the
  Kubernetes API server makes for that kind (name formats, selector matches template,
  ports, quantities, restart policies, ...). Errors are ``FieldError`` with the field
  error types and message bodies Kubernetes uses, so the server can build the same
  ``422 Invalid`` Status (``invalid_message``).
* ``unknown_fields`` / ``prune`` — fields the schema does not know, for
  ``fieldValidation=Strict|Warn`` and for dropping them (``Ignore``, and what the API
  server does for structural CRDs). Subtrees we do not model are marked
  ``preserve_unknown`` (``x-kubernetes-preserve-unknown-fields``), so valid real-world
  manifests never report false unknown fields: every struct we model lists every field
  of its Kubernetes counterpart (a test checks this against the ``kubernetes`` client).
* ``apply_defaults`` — the defaults Kubernetes applies that ``kubectl get -o yaml``
  shows (``SetDefaults_*`` and the registry strategies), and the CRD schema defaults
  of ``HyperionWorkload``.
* ``openapi_v3_index`` / ``openapi_v3_doc`` — ``/openapi/v3`` documents complete
  enough for ``kubectl explain``, server-side field validation (the ``fieldValidation``
  query parameter on every write), client-side ``kubectl apply`` (patch metadata:
  ``x-kubernetes-patch-merge-key``/``-patch-strategy``; strategic merge patch is
  advertised for built-in types only, so kubectl sends JSON merge patches to the CRD)
  and server-side apply (``x-kubernetes-list-type``/``-list-map-keys``).

Everything here is pure and deterministic: no I/O, no clock, no module state beyond
constant tables and a memo of the (immutable) OpenAPI documents. Hostile input (any
JSON value, wrong types anywhere, deep nesting) never raises: it becomes FieldErrors.
Nesting deeper than ``MAX_DEPTH`` is refused rather than walked.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

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
    group_versions,
)
from hyperion.mesh.records import CLOUDS, GEOGRAPHIES, Version, parse_quantity, parse_version

# Real objects nest about 15 levels (a Deployment's pod affinity terms); Kubernetes'
# decoder allows 10000. We refuse beyond this so that nothing recurses unboundedly.
MAX_DEPTH: Final = 100
# Kubernetes' limit on the total size of an object's annotations (keys + values).
TOTAL_ANNOTATION_SIZE_BYTES_MAX: Final = 256 * 1024

# --------------------------------------------------------------------------- JSON helpers


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value (dicts and lists copied, leaves shared), iteratively."""
    if not isinstance(value, dict | list):
        return value
    root: Any = {} if isinstance(value, dict) else []
    stack: list[tuple[Any, Any]] = [(value, root)]
    while stack:
        src, dst = stack.pop()
        pairs = src.items() if isinstance(src, dict) else enumerate(src)
        for k, v in pairs:
            if isinstance(v, dict | list):
                new: Any = {} if isinstance(v, dict) else []
                stack.append((v, new))
                v = new
            if isinstance(dst, dict):
                dst[k] = v
            else:
                dst.append(v)
    return root


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality, iteratively: ``true`` is not ``1``; ``1`` equals ``1.0``."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if isinstance(x, bool) or isinstance(y, bool):
            if not (type(x) is bool and type(y) is bool and x == y):
                return False
        elif isinstance(x, dict):
            if not isinstance(y, dict) or x.keys() != y.keys():
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif isinstance(x, list):
            if not isinstance(y, list) or len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif isinstance(x, int | float) and isinstance(y, int | float):
            if x != y:
                return False
        elif type(x) is not type(y) or x != y:
            return False
    return True


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply dicts and lists nest in ``value`` (a scalar is 0), counting at most
    to ``limit + 1``."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            d += 1
            deepest = max(deepest, d)
            if d > limit:
                return d
            stack.extend((c, d) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


# --------------------------------------------------------------------------- field errors

REQUIRED: Final = "FieldValueRequired"
INVALID: Final = "FieldValueInvalid"
TYPE_INVALID: Final = "FieldValueTypeInvalid"
NOT_SUPPORTED: Final = "FieldValueNotSupported"
DUPLICATE: Final = "FieldValueDuplicate"
FORBIDDEN: Final = "FieldValueForbidden"
NOT_FOUND: Final = "FieldValueNotFound"
TOO_LONG: Final = "FieldValueTooLong"
TOO_MANY: Final = "FieldValueTooMany"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One field-level validation error, as ``field.Error`` in Kubernetes.

    ``type`` is the field error type (``FieldValueInvalid`` ...), ``field`` the path
    (``spec.template.spec.containers[0].image``, map keys as ``limits[cpu]``) and
    ``message`` the error body: ``Invalid value: -1: must be greater than or equal
    to 0``. ``str()`` gives ``<field>: <message>`` as the API server prints it.
    """

    type: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def cause(self) -> dict[str, str]:
        """The ``StatusCause`` of a 422 Status: reason, message, field."""
        return {"reason": self.type, "message": self.message, "field": self.field}


def format_value(v: Any) -> str:
    """A bad value as Kubernetes prints it: numbers and booleans bare, strings quoted,
    anything else as compact JSON with sorted keys."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isfinite(v) and v.is_integer() and abs(v) < 1e21:
            return str(int(v))
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if nesting_depth(v) > MAX_DEPTH:
        return "<value omitted>"
    try:
        return json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(v)


def _quote_all(values: Iterable[Any]) -> str:
    return ", ".join(json.dumps(str(v), ensure_ascii=False) for v in values)


def required(path: str, detail: str = "") -> FieldError:
    return FieldError(REQUIRED, path, "Required value" + (f": {detail}" if detail else ""))


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(INVALID, path, f"Invalid value: {format_value(value)}: {detail}")


def type_invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(TYPE_INVALID, path, f"Invalid value: {format_value(value)}: {detail}")


def not_supported(path: str, value: Any, supported: Iterable[Any]) -> FieldError:
    return FieldError(
        NOT_SUPPORTED,
        path,
        f"Unsupported value: {format_value(value)}: supported values: {_quote_all(supported)}",
    )


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError(DUPLICATE, path, f"Duplicate value: {format_value(value)}")


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError(FORBIDDEN, path, f"Forbidden: {detail}")


def not_found(path: str, value: Any) -> FieldError:
    return FieldError(NOT_FOUND, path, f"Not found: {format_value(value)}")


def too_long(path: str, length_max: int) -> FieldError:
    return FieldError(TOO_LONG, path, f"Too long: may not be more than {length_max} bytes")


def invalid_message(rt: ResourceType, name: str, errors: Iterable[FieldError]) -> str:
    """The message of a 422 Invalid Status: ``Deployment.apps "web" is invalid: ...``
    (one error bare, several in brackets; repeated messages once, as Kubernetes)."""
    kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    texts = list(dict.fromkeys(str(e) for e in errors))
    body = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return f"{kind} {json.dumps(name)} is invalid: {body}"


def strict_error_message(unknown: Iterable[str]) -> str:
    """The 400 message for ``fieldValidation=Strict`` (``unknown_fields`` output)."""
    return "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in unknown)


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def _key(path: str, k: Any) -> str:
    return f"{path}[{k}]"


# --------------------------------------------------------------------------- formats
# Messages are Kubernetes' own (k8s.io/apimachinery/pkg/util/validation), so that
# clients and people see the errors they know.

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _LABEL_KEY_FMT + ")?"
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT)
_LABEL_KEY_RE = re.compile(_LABEL_KEY_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_PORT_NAME_RE = re.compile("[-a-z0-9]+")
_ENV_NAME_RE = re.compile("[-._a-zA-Z][-._a-zA-Z0-9]*")
_PERCENT_RE = re.compile("[0-9]+%")
DNS1123_LABEL_CHARS_MAX: Final = 63
DNS1123_SUBDOMAIN_CHARS_MAX: Final = 253


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def is_dns1123_label(value: str) -> list[str]:
    """Problems with ``value`` as an RFC 1123 label (empty list: valid)."""
    errs = []
    if len(value) > DNS1123_LABEL_CHARS_MAX:
        errs.append(_max_len(DNS1123_LABEL_CHARS_MAX))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            errs.append("must not contain dots")
        else:
            errs.append(
                _regex_error(
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric "
                    "characters or '-', and must start and end with an alphanumeric character",
                    _DNS1123_LABEL_FMT,
                    "my-name",
                    "123-abc",
                )
            )
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    """Problems with ``value`` as an RFC 1123 subdomain (empty list: valid)."""
    errs = []
    if len(value) > DNS1123_SUBDOMAIN_CHARS_MAX:
        errs.append(_max_len(DNS1123_SUBDOMAIN_CHARS_MAX))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(
            _regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character",
                _DNS1123_SUBDOMAIN_FMT,
                "example.com",
            )
        )
    return errs


def is_dns1035_label(value: str) -> list[str]:
    """Problems with ``value`` as an RFC 1035 label (service names)."""
    errs = []
    if len(value) > DNS1123_LABEL_CHARS_MAX:
        errs.append(_max_len(DNS1123_LABEL_CHARS_MAX))
    if not _DNS1035_LABEL_RE.fullmatch(value):
        errs.append(
            _regex_error(
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                "start with an alphabetic character, and end with an alphanumeric character",
                _DNS1035_LABEL_FMT,
                "my-name",
                "abc-123",
            )
        )
    return errs


def is_qualified_name(value: str) -> list[str]:
    """Problems with ``value`` as a label key / qualified name (``[prefix/]name``)."""
    errs: list[str] = []
    parts = value.split("/")
    name_msg = (
        "must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
        "with an alphanumeric character"
    )
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a valid label key "
            + _regex_error(name_msg, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > DNS1123_LABEL_CHARS_MAX:
        errs.append("name part " + _max_len(DNS1123_LABEL_CHARS_MAX))
    if not _LABEL_KEY_RE.fullmatch(name):
        errs.append(
            "name part " + _regex_error(name_msg, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def is_label_value(value: str) -> list[str]:
    """Problems with ``value`` as a label value."""
    errs = []
    if len(value) > DNS1123_LABEL_CHARS_MAX:
        errs.append(_max_len(DNS1123_LABEL_CHARS_MAX))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(
            _regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character",
                _LABEL_VALUE_FMT,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return errs


def is_port_name(value: str) -> list[str]:
    """Problems with ``value`` as an IANA service (port) name."""
    errs = []
    if len(value) > 15:
        errs.append(_max_len(15))
    if not _PORT_NAME_RE.fullmatch(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value.startswith("-") or value.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def _is_env_name(value: str) -> list[str]:
    if _ENV_NAME_RE.fullmatch(value):
        return []
    return [
        _regex_error(
            "a valid environment variable name must consist of alphabetic characters, digits, "
            "'_', '-', or '.', and must not start with a digit",
            _ENV_NAME_RE.pattern,
            "my.env-name",
            "MY_ENV.NAME",
            "MyEnvName1",
        )
    ]


def _path_segment_problems(name: str, prefix: bool) -> list[str]:
    # ValidatePathSegmentName: every object name becomes a URL path segment.
    if not prefix and name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


NameCheck = Callable[[str, bool], list[str]]


def _name_check(fmt: Callable[[str], list[str]]) -> NameCheck:
    def check(name: str, prefix: bool) -> list[str]:
        # A generateName prefix may end in '-': Kubernetes masks it before checking.
        if prefix and len(name) > 1 and name.endswith("-"):
            name = name[:-1] + "a"
        return fmt(name) + _path_segment_problems(name, prefix)

    return check


NAME_DNS_SUBDOMAIN: Final = _name_check(is_dns1123_subdomain)
NAME_DNS_LABEL: Final = _name_check(is_dns1123_label)
NAME_DNS1035_LABEL: Final = _name_check(is_dns1035_label)


# --------------------------------------------------------------------------- version ranges

_COMPARATOR_RE = re.compile(r"\s*(>=|<=|==|!=|=|>|<)?\s*([0-9A-Za-z.+-]+)\s*")
VERSION_RANGE_CHARS_MAX: Final = 256
_VERSION_OPS: Mapping[str, Callable[[Version, Version], bool]] = MappingProxyType(
    {
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        "<": lambda a, b: a < b,
        "=": lambda a, b: a.precedence() == b.precedence(),
        "!=": lambda a, b: a.precedence() != b.precedence(),
    }
)


def parse_version_range(text: str) -> tuple[tuple[str, Version], ...]:
    """Parse ``">=0.2,<1"``: comparisons joined by commas, all of which must hold.

    Operators ``>= <= > < = == !=`` (none means ``=``); versions are semver or the
    ``MAJOR[.MINOR]`` shorthand (``0.2`` is ``0.2.0``). Raises ValueError.
    """
    if not isinstance(text, str) or not text.strip() or len(text) > VERSION_RANGE_CHARS_MAX:
        raise ValueError("must be a non-empty list of version comparisons such as '>=0.2,<1'")
    out = []
    for part in text.split(","):
        m = _COMPARATOR_RE.fullmatch(part)
        if m is None:
            raise ValueError(f"{part.strip()!r} is not a comparison such as '>=0.2'")
        op = m.group(1) or "="
        out.append(("=" if op == "==" else op, parse_version(m.group(2), shorthand=True)))
    return tuple(out)


def version_in_range(version: Version, rng: tuple[tuple[str, Version], ...]) -> bool:
    """Whether ``version`` satisfies every comparison of a parsed range."""
    return all(_VERSION_OPS[op](version, bound) for op, bound in rng)


# --------------------------------------------------------------------------- schema DSL

_UNSET: Final[Any] = object()
Check = Callable[[Any, str], list[FieldError]]


@dataclass(frozen=True, eq=False, slots=True)
class Schema:
    """One node of a type's schema: an OpenAPI v3 schema plus Kubernetes extensions.

    ``type`` is ``object`` (``properties`` for a struct, ``additional`` for a map's
    values, ``preserve_unknown`` for an open subtree), ``array`` (``items``),
    ``string``, ``integer``, ``number``, ``boolean``, ``quantity`` (a resource
    quantity: string or number), ``int-or-string``, or ``any`` (any JSON value, kept
    as is). ``name`` makes the node a named component in OpenAPI (referenced, not
    inlined). ``list_type``/``list_map_keys``/``map_type`` drive server-side apply;
    ``patch_strategy``/``patch_merge_key`` drive strategic merge patch. ``check`` adds
    a semantic check of the node's value (given the value and its path).
    """

    type: str
    description: str = ""
    properties: Mapping[str, Schema] | None = None
    additional: Schema | None = None
    items: Schema | None = None
    required: tuple[str, ...] = ()
    enum: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    min_items: int | None = None
    format: str = ""
    default: Any = _UNSET
    name: str = ""
    gvk: tuple[tuple[str, str, str], ...] = ()
    preserve_unknown: bool = False
    list_type: str = ""
    list_map_keys: tuple[str, ...] = ()
    map_type: str = ""
    patch_strategy: str = ""
    patch_merge_key: str = ""
    check: Check | None = field(default=None, repr=False)

    def child(self, key: Any) -> Schema | None:
        """The schema of field or map key ``key`` of an object node, or None if unknown."""
        if self.type != "object":
            return None
        if self.properties is not None and key in self.properties:
            return self.properties[key]
        return self.additional

    def knows(self, key: Any) -> bool:
        """Whether ``key`` is a known field of this object node."""
        if self.type != "object" or self.preserve_unknown or self.additional is not None:
            return True
        return self.properties is not None and key in self.properties

    @property
    def has_default(self) -> bool:
        return self.default is not _UNSET


def _obj(
    name: str,
    description: str,
    properties: Mapping[str, Schema],
    *,
    required: tuple[str, ...] = (),
    gvk: tuple[tuple[str, str, str], ...] = (),
    map_type: str = "",
    patch_strategy: str = "",
    preserve_unknown: bool = False,
    check: Check | None = None,
    default: Any = _UNSET,
) -> Schema:
    return Schema(
        "object",
        description,
        properties=MappingProxyType(dict(properties)),
        required=required,
        name=name,
        gvk=gvk,
        map_type=map_type,
        patch_strategy=patch_strategy,
        preserve_unknown=preserve_unknown,
        check=check,
        default=default,
    )


def _map(values: Schema, description: str = "", *, check: Check | None = None) -> Schema:
    return Schema("object", description, additional=values, check=check)


def _arr(
    items: Schema,
    description: str = "",
    *,
    list_type: str = "atomic",
    keys: tuple[str, ...] = (),
    strategy: str = "",
    merge_key: str = "",
    min_items: int | None = None,
    check: Check | None = None,
) -> Schema:
    return Schema(
        "array",
        description,
        items=items,
        list_type=list_type,
        list_map_keys=keys,
        patch_strategy=strategy,
        patch_merge_key=merge_key,
        min_items=min_items,
        check=check,
    )


def _str(
    description: str = "",
    *,
    enum: tuple[str, ...] = (),
    fmt: str = "",
    default: Any = _UNSET,
    check: Check | None = None,
) -> Schema:
    return Schema("string", description, enum=enum, format=fmt, default=default, check=check)


def _int(
    description: str = "",
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    fmt: str = "int32",
    default: Any = _UNSET,
    check: Check | None = None,
) -> Schema:
    return Schema(
        "integer",
        description,
        minimum=minimum,
        maximum=maximum,
        format=fmt,
        default=default,
        check=check,
    )


def _int64(description: str = "", **kw: Any) -> Schema:
    return _int(description, fmt="int64", **kw)


def _num(
    description: str = "", *, minimum: float | None = None, maximum: float | None = None
) -> Schema:
    return Schema("number", description, minimum=minimum, maximum=maximum, format="double")


def _bool(description: str = "", *, default: Any = _UNSET) -> Schema:
    return Schema("boolean", description, default=default)


def _any(description: str = "") -> Schema:
    """An open object we do not model: any content, kept (no unknown fields)."""
    return Schema("object", description, preserve_unknown=True)


def _anyvalue(description: str = "") -> Schema:
    """Any JSON value at all."""
    return Schema("any", description)


def _strs(description: str = "", *, list_type: str = "atomic", strategy: str = "") -> Schema:
    return _arr(_str(), description, list_type=list_type, strategy=strategy)


# Shared leaves.
_TIME = Schema(
    "string",
    "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON. "
    "Wrappers are provided for many of the factory methods that the time package offers.",
    format="date-time",
    name="io.k8s.apimachinery.pkg.apis.meta.v1.Time",
)
_MICRO_TIME = Schema(
    "string",
    "MicroTime is version of Time with microsecond level precision.",
    format="date-time",
    name="io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime",
)
_QUANTITY = Schema(
    "quantity",
    "Quantity is a fixed-point representation of a number: a decimal with an optional "
    "suffix, such as 500m (0.5), 2, 4Gi (4·2³⁰) or 16G (16·10⁹).",
    name="io.k8s.apimachinery.pkg.api.resource.Quantity",
)
_INT_OR_STRING = Schema(
    "int-or-string",
    "IntOrString is a type that can hold an int32 or a string.",
    format="int-or-string",
    name="io.k8s.apimachinery.pkg.util.intstr.IntOrString",
)
_FIELDS_V1 = Schema(
    "object",
    "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON format.",
    preserve_unknown=True,
    name="io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
)
_API_VERSION = _str(
    "APIVersion defines the versioned schema of this representation of an object. "
    "Servers should convert recognized schemas to the latest internal value, and may "
    "reject unrecognized values."
)
_KIND = _str(
    "Kind is a string value representing the REST resource this object represents. "
    "Servers may infer this from the endpoint the client submits requests to. Cannot be "
    "updated. In CamelCase."
)


# --------------------------------------------------------------------------- semantic checks


def quantity_value(v: Any) -> Decimal | None:
    """A resource quantity (``"500m"``, ``"4Gi"``, ``2``, ``0.5``) in base units, or None."""
    if _is_number(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return Decimal(str(v)) if v >= 0 else None
    if isinstance(v, str):
        try:
            return parse_quantity(v)
        except ValueError:
            return None
    return None


_QUANTITY_DETAIL = "quantities must match the regular expression '^([0-9.]+)([eEinumkKMGTP]*)$'"


def _check_labels(value: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for k, v in value.items():
        errs.extend(invalid(path, k, m) for m in is_qualified_name(str(k)))
        if isinstance(v, str):
            errs.extend(invalid(path, v, m) for m in is_label_value(v))
    return errs


def _check_annotations(value: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    size = 0
    for k, v in value.items():
        errs.extend(invalid(path, k, m) for m in is_qualified_name(str(k).lower()))
        size += len(str(k)) + (len(v) if isinstance(v, str) else 0)
    if size > TOTAL_ANNOTATION_SIZE_BYTES_MAX:
        errs.append(too_long(path, TOTAL_ANNOTATION_SIZE_BYTES_MAX))
    return errs


def _check_finalizers(value: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for v in value:
        if isinstance(v, str):
            errs.extend(invalid(path, v, m) for m in is_qualified_name(v))
    return errs


_STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage", "storage")


def _is_extended_resource(name: str) -> bool:
    # Extended resources (nvidia.com/gpu) are integers; kubernetes.io/ names are native.
    return "/" in name and not name.split("/", 1)[0].endswith("kubernetes.io")


def _check_resource_list(value: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for k, v in value.items():
        name = str(k)
        p = _key(path, name)
        if name not in _STANDARD_RESOURCES and not name.startswith("hugepages-"):
            msgs = is_qualified_name(name)
            if msgs:
                errs.extend(invalid(path, name, m) for m in msgs)
                continue
        q = quantity_value(v)
        if q is not None and _is_extended_resource(name) and q != q.to_integral_value():
            errs.append(invalid(p, v, "must be an integer"))
    return errs


def _check_resources(value: Any, path: str) -> list[FieldError]:
    # requests may not exceed limits (ValidateResourceRequirements).
    limits, requests = value.get("limits"), value.get("requests")
    if not (isinstance(limits, dict) and isinstance(requests, dict)):
        return []
    errs = []
    for name, req in requests.items():
        if name not in limits:
            continue
        lq, rq = quantity_value(limits[name]), quantity_value(req)
        if lq is None or rq is None:
            continue
        if _is_extended_resource(str(name)) and lq != rq:
            errs.append(
                invalid(_key(_child(path, "requests"), name), req, f"must be equal to {name} limit")
            )
        elif rq > lq:
            errs.append(
                invalid(
                    _key(_child(path, "requests"), name),
                    req,
                    f"must be less than or equal to {name} limit of {limits[name]}",
                )
            )
    return errs


def _port_number(value: Any, path: str) -> list[FieldError]:
    if _is_int(value) and not 1 <= value <= 65535:
        return [invalid(path, value, "must be between 1 and 65535, inclusive")]
    return []


def _host_port(value: Any, path: str) -> list[FieldError]:
    if _is_int(value) and not 0 <= value <= 65535:
        return [invalid(path, value, "must be between 0 and 65535, inclusive")]
    return []


def _port_name(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, str) and value:
        return [invalid(path, value, m) for m in is_port_name(value)]
    return []


def _int_or_string_port(value: Any, path: str) -> list[FieldError]:
    # A probe's or a service's target port: a number 1-65535 or an IANA port name.
    if _is_int(value):
        return _port_number(value, path)
    if isinstance(value, str):
        if value.isdigit():
            return _port_number(int(value), path)
        return [invalid(path, value, m) for m in is_port_name(value)]
    return []


def _int_or_percent(value: Any, path: str) -> list[FieldError]:
    if _is_int(value):
        if value < 0:
            return [invalid(path, value, "must be greater than or equal to 0")]
        return []
    if isinstance(value, str) and not _PERCENT_RE.fullmatch(value):
        return [
            invalid(
                path,
                value,
                _regex_error(
                    "a valid percent string must be a numeric string followed by an ending '%'",
                    "[0-9]+%",
                    "1%",
                    "93%",
                ),
            )
        ]
    return []


def _dns_label(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, str) and value:
        return [invalid(path, value, m) for m in is_dns1123_label(value)]
    return []


def _dns_subdomain(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, str) and value:
        return [invalid(path, value, m) for m in is_dns1123_subdomain(value)]
    return []


def _qualified_name(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, str) and value:
        return [invalid(path, value, m) for m in is_qualified_name(value)]
    return []


def _env_name(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, str) and value:
        return [invalid(path, value, m) for m in _is_env_name(value)]
    return []


def _nonneg(description: str = "", **kw: Any) -> Schema:
    return _int(description, minimum=0, **kw)


# --------------------------------------------------------------------------- meta/v1

_META = "io.k8s.apimachinery.pkg.apis.meta.v1."

_OWNER_REFERENCE = _obj(
    _META + "OwnerReference",
    "OwnerReference contains enough information to let you identify an owning object. "
    "An owning object must be in the same namespace as the dependent, or be cluster-scoped, "
    "so there is no namespace field.",
    {
        "apiVersion": _str("API version of the referent."),
        "blockOwnerDeletion": _bool(
            "If true, AND if the owner has the foregroundDeletion finalizer, then the owner "
            "cannot be deleted from the key-value store until this reference is removed."
        ),
        "controller": _bool("If true, this reference points to the managing controller."),
        "kind": _str("Kind of the referent."),
        "name": _str("Name of the referent."),
        "uid": _str("UID of the referent."),
    },
    required=("apiVersion", "kind", "name", "uid"),
    map_type="atomic",
)
_MANAGED_FIELDS_ENTRY = _obj(
    _META + "ManagedFieldsEntry",
    "ManagedFieldsEntry is a workflow-id, a FieldSet and the group version of the resource "
    "that the fieldset applies to.",
    {
        "apiVersion": _str(
            "APIVersion defines the version of this resource that this field set applies to."
        ),
        "fieldsType": _str("FieldsType is the discriminator for the different fields format."),
        "fieldsV1": _FIELDS_V1,
        "manager": _str("Manager is an identifier of the workflow managing these fields."),
        "operation": _str(
            "Operation is the type of operation which lead to this ManagedFieldsEntry being "
            "created. The only valid values for this field are 'Apply' and 'Update'.",
            enum=("Apply", "Update"),
        ),
        "subresource": _str(
            "Subresource is the name of the subresource used to update that object, or "
            "empty string if the object was updated through the main resource."
        ),
        "time": _TIME,
    },
)
OBJECT_META = _obj(
    _META + "ObjectMeta",
    "ObjectMeta is metadata that all persisted resources must have, which includes all "
    "objects users must create.",
    {
        "annotations": _map(
            _str(),
            "Annotations is an unstructured key value map stored with a resource that may be "
            "set by external tools to store and retrieve arbitrary metadata.",
            check=_check_annotations,
        ),
        "creationTimestamp": _TIME,
        "deletionGracePeriodSeconds": _int64(
            "Number of seconds allowed for this object to gracefully terminate before it will "
            "be removed from the system. Only set when deletionTimestamp is also set."
        ),
        "deletionTimestamp": _TIME,
        "finalizers": _arr(
            _str(),
            "Must be empty before the object is deleted from the registry.",
            list_type="set",
            strategy="merge",
            check=_check_finalizers,
        ),
        "generateName": _str(
            "GenerateName is an optional prefix, used by the server, to generate a unique "
            "name ONLY IF the Name field has not been provided."
        ),
        "generation": _int64(
            "A sequence number representing a specific generation of the desired state.",
            minimum=0,
        ),
        "labels": _map(
            _str(),
            "Map of string keys and values that can be used to organize and categorize "
            "(scope and select) objects.",
            check=_check_labels,
        ),
        "managedFields": _arr(
            _MANAGED_FIELDS_ENTRY,
            "ManagedFields maps workflow-id and version to the set of fields that are managed "
            "by that workflow.",
        ),
        "name": _str(
            "Name must be unique within a namespace. Is required when creating resources, "
            "although some resources may allow a client to request the generation of an "
            "appropriate name automatically. Cannot be updated."
        ),
        "namespace": _str(
            "Namespace defines the space within which each name must be unique. An empty "
            'namespace is equivalent to the "default" namespace. Cannot be updated.'
        ),
        "ownerReferences": _arr(
            _OWNER_REFERENCE,
            "List of objects depended by this object.",
            list_type="map",
            keys=("uid",),
            strategy="merge",
            merge_key="uid",
        ),
        "resourceVersion": _str(
            "An opaque value that represents the internal version of this object that can be "
            "used by clients to determine when objects have changed."
        ),
        "selfLink": _str("Deprecated: selfLink is a legacy read-only field."),
        "uid": _str(
            "UID is the unique in time and space value for this object. It is typically "
            "generated by the server on successful creation of a resource."
        ),
    },
)
_LIST_META = _obj(
    _META + "ListMeta",
    "ListMeta describes metadata that synthetic resources must have, including lists and "
    "various status objects.",
    {
        "continue": _str("continue may be set if the user set a limit on the number of items."),
        "remainingItemCount": _int64(
            "The number of subsequent items in the list which are not included in this list."
        ),
        "resourceVersion": _str(
            "String that identifies the server's internal version of this object."
        ),
        "selfLink": _str("Deprecated: selfLink is a legacy read-only field."),
    },
)
_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _check_selector_requirement(value: Any, path: str) -> list[FieldError]:
    op, values = value.get("operator"), value.get("values")
    errs: list[FieldError] = []
    n = len(values) if isinstance(values, list) else 0
    if op in ("In", "NotIn") and n == 0:
        errs.append(
            required(_child(path, "values"), "must be specified when `operator` is 'In' or 'NotIn'")
        )
    elif op in ("Exists", "DoesNotExist") and n > 0:
        errs.append(
            forbidden(
                _child(path, "values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )
        )
    elif isinstance(op, str) and op and op not in _SELECTOR_OPERATORS:
        errs.append(invalid(_child(path, "operator"), op, "not a valid selector operator"))
    errs.extend(_qualified_name(value.get("key"), _child(path, "key")))
    if isinstance(values, list):
        for i, v in enumerate(values):
            if isinstance(v, str):
                errs.extend(
                    invalid(_index(_child(path, "values"), i), v, m) for m in is_label_value(v)
                )
    return errs


_LABEL_SELECTOR_REQUIREMENT = _obj(
    _META + "LabelSelectorRequirement",
    "A label selector requirement is a selector that contains values, a key, and an operator "
    "that relates the key and values.",
    {
        "key": _str("key is the label key that the selector applies to."),
        "operator": _str(
            "operator represents a key's relationship to a set of values. Valid operators are "
            "In, NotIn, Exists and DoesNotExist."
        ),
        "values": _strs("values is an array of string values."),
    },
    required=("key", "operator"),
    check=_check_selector_requirement,
)
LABEL_SELECTOR = _obj(
    _META + "LabelSelector",
    "A label selector is a label query over a set of resources. The result of matchLabels "
    "and matchExpressions are ANDed. An empty label selector matches all objects. A null "
    "label selector matches no objects.",
    {
        "matchExpressions": _arr(
            _LABEL_SELECTOR_REQUIREMENT,
            "matchExpressions is a list of label selector requirements. The requirements are "
            "ANDed.",
        ),
        "matchLabels": _map(
            _str(),
            "matchLabels is a map of {key,value} pairs. A single {key,value} in the matchLabels "
            'map is equivalent to an element of matchExpressions, whose key field is "key", '
            'the operator is "In", and the values array contains only "value".',
            check=_check_labels,
        ),
    },
    map_type="atomic",
)
_CONDITION = _obj(
    _META + "Condition",
    "Condition contains details for one aspect of the current state of this API Resource.",
    {
        "lastTransitionTime": _TIME,
        "message": _str(
            "message is a human readable message indicating details about the transition."
        ),
        "observedGeneration": _int64(
            "observedGeneration represents the .metadata.generation that the condition was "
            "set based upon.",
            minimum=0,
        ),
        "reason": _str(
            "reason contains a programmatic identifier indicating the reason for "
            "the condition's last transition."
        ),
        "status": _str(
            "status of the condition, one of True, False, Unknown.",
            enum=("True", "False", "Unknown"),
        ),
        "type": _str("type of condition in CamelCase or in foo.example.com/CamelCase."),
    },
    required=("lastTransitionTime", "message", "reason", "status", "type"),
)
_STATUS_CAUSE = _obj(
    _META + "StatusCause",
    "StatusCause provides more information about an api.Status failure, including cases "
    "when multiple errors are encountered.",
    {
        "field": _str("The field of the resource that has caused this error."),
        "message": _str("A human-readable description of the cause of the error."),
        "reason": _str("A machine-readable description of the cause of the error."),
    },
)
_STATUS_DETAILS = _obj(
    _META + "StatusDetails",
    "StatusDetails is a set of additional properties that MAY be set by the server to "
    "provide additional information about a response.",
    {
        "causes": _arr(
            _STATUS_CAUSE,
            "The Causes array includes more details associated with the StatusReason failure.",
        ),
        "group": _str(
            "The group attribute of the resource associated with the status StatusReason."
        ),
        "kind": _str("The kind attribute of the resource associated with the status StatusReason."),
        "name": _str("The name attribute of the resource associated with the status StatusReason."),
        "retryAfterSeconds": _int(
            "If specified, the time in seconds before the operation should be retried."
        ),
        "uid": _str("UID of the resource."),
    },
)
_STATUS = _obj(
    _META + "Status",
    "Status is a return value for calls that don't return other objects.",
    {
        "apiVersion": _API_VERSION,
        "code": _int("Suggested HTTP return code for this status, 0 if not set."),
        "details": _STATUS_DETAILS,
        "kind": _KIND,
        "message": _str("A human-readable description of the status of this operation."),
        "metadata": _LIST_META,
        "reason": _str(
            'A machine-readable description of why this operation is in the "Failure" status.'
        ),
        "status": _str('Status of the operation. One of: "Success" or "Failure".'),
    },
)
_PRECONDITIONS = _obj(
    _META + "Preconditions",
    "Preconditions must be fulfilled before an operation (update, delete, etc.) is carried out.",
    {
        "resourceVersion": _str("Specifies the target ResourceVersion"),
        "uid": _str("Specifies the target UID."),
    },
)
_DELETE_OPTIONS = _obj(
    _META + "DeleteOptions",
    "DeleteOptions may be provided when deleting an API object.",
    {
        "apiVersion": _API_VERSION,
        "dryRun": _strs("When present, indicates that modifications should not be persisted."),
        "gracePeriodSeconds": _int64(
            "The duration in seconds before the object should be deleted."
        ),
        "ignoreStoreReadErrorWithClusterBreakingPotential": _bool(
            "if set to true, it will trigger an unsafe deletion of the resource in case the "
            "normal deletion flow fails with a corrupt object error."
        ),
        "kind": _KIND,
        "orphanDependents": _bool("Deprecated: please use the PropagationPolicy."),
        "preconditions": _PRECONDITIONS,
        "propagationPolicy": _str(
            "Whether and how garbage collection will be performed. "
            "Acceptable values are: 'Orphan', 'Background', "
            "'Foreground'."
        ),
    },
)
_PATCH = Schema(
    "object",
    "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
    name=_META + "Patch",
    preserve_unknown=True,
)
_WATCH_EVENT = _obj(
    _META + "WatchEvent",
    "Event represents a single event to a watched resource.",
    {
        "object": _any(
            "Object is: * If Type is Added or Modified: the new state of the object. "
            "* If Type is Deleted: the state of the object immediately before "
            "deletion. * If Type is Error: *Status is recommended."
        ),
        "type": _str(),
    },
    required=("type", "object"),
)


def _list_of(item: Schema, name: str, description: str, gvk: tuple[str, str, str]) -> Schema:
    return _obj(
        name,
        description,
        {
            "apiVersion": _API_VERSION,
            "items": _arr(item, "List of objects."),
            "kind": _KIND,
            "metadata": _LIST_META,
        },
        required=("items",),
        gvk=(gvk,),
    )


# --------------------------------------------------------------------------- core/v1: pods

_CORE = "io.k8s.api.core.v1."
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_PROTOCOLS = ("SCTP", "TCP", "UDP")


def _ref(name: str, description: str, fields: Mapping[str, Schema], **kw: Any) -> Schema:
    return _obj(_CORE + name, description, fields, **kw)


_LOCAL_OBJECT_REFERENCE = _ref(
    "LocalObjectReference",
    "LocalObjectReference contains enough information to let you locate the referenced "
    "object inside the same namespace.",
    {"name": _str("Name of the referent.")},
    map_type="atomic",
)
_KEY_SELECTOR_FIELDS = {
    "key": _str("The key to select."),
    "name": _str("Name of the referent."),
    "optional": _bool("Specify whether the referent or its key must be defined"),
}
_OBJECT_FIELD_SELECTOR = _ref(
    "ObjectFieldSelector",
    "ObjectFieldSelector selects an APIVersioned field of an object.",
    {
        "apiVersion": _str(
            'Version of the schema the FieldPath is written in terms of, defaults to "v1".'
        ),
        "fieldPath": _str("Path of the field to select in the specified API version."),
    },
    required=("fieldPath",),
    map_type="atomic",
)
_RESOURCE_FIELD_SELECTOR = _ref(
    "ResourceFieldSelector",
    "ResourceFieldSelector represents container resources (cpu, memory) and their output format",
    {
        "containerName": _str("Container name: required for volumes, optional for env vars"),
        "divisor": _QUANTITY,
        "resource": _str("Required: resource to select"),
    },
    required=("resource",),
    map_type="atomic",
)
_ENV_VAR_SOURCE = _ref(
    "EnvVarSource",
    "EnvVarSource represents a source for the value of an EnvVar.",
    {
        "configMapKeyRef": _ref(
            "ConfigMapKeySelector",
            "Selects a key from a ConfigMap.",
            _KEY_SELECTOR_FIELDS,
            required=("key",),
            map_type="atomic",
        ),
        "fieldRef": _OBJECT_FIELD_SELECTOR,
        "fileKeyRef": _any("FileKeyRef selects a key of the env file."),
        "resourceFieldRef": _RESOURCE_FIELD_SELECTOR,
        "secretKeyRef": _ref(
            "SecretKeySelector",
            "SecretKeySelector selects a key of a Secret.",
            _KEY_SELECTOR_FIELDS,
            required=("key",),
            map_type="atomic",
        ),
    },
)
ENV_VAR = _ref(
    "EnvVar",
    "EnvVar represents an environment variable present in a Container.",
    {
        "name": _str("Name of the environment variable.", check=_env_name),
        "value": _str(
            "Variable references $(VAR_NAME) are expanded using the previously "
            "defined environment variables in the container and any service "
            "environment variables."
        ),
        "valueFrom": _ENV_VAR_SOURCE,
    },
    required=("name",),
)
_ENV_FROM_SOURCE = _ref(
    "EnvFromSource",
    "EnvFromSource represents the source of a set of ConfigMaps or Secrets",
    {
        "configMapRef": _ref(
            "ConfigMapEnvSource",
            "The ConfigMap to select from",
            {"name": _str("Name of the referent."), "optional": _bool()},
        ),
        "prefix": _str("Optional text to prepend to the name of each environment variable."),
        "secretRef": _ref(
            "SecretEnvSource",
            "The Secret to select from",
            {"name": _str("Name of the referent."), "optional": _bool()},
        ),
    },
)
CONTAINER_PORT = _ref(
    "ContainerPort",
    "ContainerPort represents a network port in a single container.",
    {
        "containerPort": _int(
            "Number of port to expose on the pod's IP address.", check=_port_number
        ),
        "hostIP": _str("What host IP to bind the external port to."),
        "hostPort": _int("Number of port to expose on the host.", check=_host_port),
        "name": _str(
            "If specified, this must be an IANA_SVC_NAME and unique within the pod.",
            check=_port_name,
        ),
        "protocol": _str(
            'Protocol for port. Must be UDP, TCP, or SCTP. Defaults to "TCP".',
            enum=_PROTOCOLS,
            default="TCP",
        ),
    },
    required=("containerPort",),
)
RESOURCE_REQUIREMENTS = _ref(
    "ResourceRequirements",
    "ResourceRequirements describes the compute resource requirements.",
    {
        "claims": _arr(
            _any("ResourceClaim references one entry in PodSpec.ResourceClaims."),
            "Claims lists the names of resources, defined in spec.resourceClaims, that are "
            "used by this container.",
            list_type="map",
            keys=("name",),
        ),
        "limits": _map(
            _QUANTITY,
            "Limits describes the maximum amount of compute resources allowed.",
            check=_check_resource_list,
        ),
        "requests": _map(
            _QUANTITY,
            "Requests describes the minimum amount of compute resources required.",
            check=_check_resource_list,
        ),
    },
    check=_check_resources,
)
_VOLUME_MOUNT = _ref(
    "VolumeMount",
    "VolumeMount describes a mounting of a Volume within a container.",
    {
        "mountPath": _str(
            "Path within the container at which the volume should be mounted. Must not contain ':'."
        ),
        "mountPropagation": _str(
            "mountPropagation determines how mounts are propagated from "
            "the host to container and the other way around.",
            enum=("None", "HostToContainer", "Bidirectional"),
        ),
        "name": _str("This must match the Name of a Volume."),
        "readOnly": _bool(
            "Mounted read-only if true, read-write otherwise (false or unspecified)."
        ),
        "recursiveReadOnly": _str(
            "RecursiveReadOnly specifies whether read-only mounts should be handled recursively."
        ),
        "subPath": _str(
            "Path within the volume from which the container's volume should be mounted."
        ),
        "subPathExpr": _str(
            "Expanded path within the volume from which the container's volume should be mounted."
        ),
        "bindMountOptions": _strs("Bind mount options (newer API servers)."),
    },
    required=("name", "mountPath"),
)
_VOLUME_DEVICE = _ref(
    "VolumeDevice",
    "volumeDevice describes a mapping of a raw block device within a container.",
    {
        "devicePath": _str(
            "devicePath is the path inside of the container that the device will be mapped to."
        ),
        "name": _str("name must match the name of a persistentVolumeClaim in the pod"),
    },
    required=("name", "devicePath"),
)
_EXEC_ACTION = _ref(
    "ExecAction",
    'ExecAction describes a "run in container" action.',
    {"command": _strs("Command is the command line to execute inside the container.")},
)
_HTTP_GET_ACTION = _ref(
    "HTTPGetAction",
    "HTTPGetAction describes an action based on HTTP Get requests.",
    {
        "host": _str("Host name to connect to, defaults to the pod IP."),
        "httpHeaders": _arr(
            _ref(
                "HTTPHeader",
                "HTTPHeader describes a custom header to be used in HTTP probes",
                {"name": _str("The header field name."), "value": _str("The header field value")},
                required=("name", "value"),
            ),
            "Custom headers to set in the request. HTTP allows repeated headers.",
        ),
        "path": _str("Path to access on the HTTP server."),
        "port": _INT_OR_STRING,
        "scheme": _str(
            "Scheme to use for connecting to the host. Defaults to HTTP.", enum=("HTTP", "HTTPS")
        ),
        "protocol": _str("Protocol (newer API servers)."),
    },
    required=("port",),
)
_TCP_SOCKET_ACTION = _ref(
    "TCPSocketAction",
    "TCPSocketAction describes an action based on opening a socket",
    {
        "host": _str("Optional: Host name to connect to, defaults to the pod IP."),
        "port": _INT_OR_STRING,
    },
    required=("port",),
)
_GRPC_ACTION = _ref(
    "GRPCAction",
    "GRPCAction specifies an action involving a GRPC service.",
    {
        "port": _int(
            "Port number of the gRPC service. Number must be in the range 1 to 65535.",
            check=_port_number,
        ),
        "service": _str(
            "Service is the name of the service to place in the gRPC HealthCheckRequest."
        ),
        "mode": _str("Mode (newer API servers)."),
    },
    required=("port",),
)
PROBE = _ref(
    "Probe",
    "Probe describes a health check to be performed against a container to determine whether "
    "it is alive or ready to receive traffic.",
    {
        "exec": _EXEC_ACTION,
        "failureThreshold": _int(
            "Minimum consecutive failures for the probe to be considered "
            "failed after having succeeded. Defaults to 3.",
            minimum=0,
        ),
        "grpc": _GRPC_ACTION,
        "httpGet": _HTTP_GET_ACTION,
        "initialDelaySeconds": _int(
            "Number of seconds after the container has started before "
            "liveness probes are initiated.",
            minimum=0,
        ),
        "periodSeconds": _int(
            "How often (in seconds) to perform the probe. Default to 10 seconds.", minimum=0
        ),
        "successThreshold": _int(
            "Minimum consecutive successes for the probe to be considered "
            "successful after having failed. Defaults to 1.",
            minimum=0,
        ),
        "tcpSocket": _TCP_SOCKET_ACTION,
        "terminationGracePeriodSeconds": _int64(
            "Optional duration in seconds the pod needs to terminate gracefully upon probe failure."
        ),
        "timeoutSeconds": _int(
            "Number of seconds after which the probe times out. Defaults to 1 second.", minimum=0
        ),
    },
)
_LIFECYCLE_HANDLER = _ref(
    "LifecycleHandler",
    "LifecycleHandler defines a specific action that should be taken in a lifecycle hook.",
    {
        "exec": _EXEC_ACTION,
        "httpGet": _HTTP_GET_ACTION,
        "sleep": _ref(
            "SleepAction",
            'SleepAction describes a "sleep" action.',
            {"seconds": _int64("Seconds is the number of seconds to sleep.")},
            required=("seconds",),
        ),
        "tcpSocket": _TCP_SOCKET_ACTION,
    },
)
_LIFECYCLE = _ref(
    "Lifecycle",
    "Lifecycle describes actions that the management system should take in response to "
    "container lifecycle events.",
    {
        "postStart": _LIFECYCLE_HANDLER,
        "preStop": _LIFECYCLE_HANDLER,
        "stopSignal": _str(
            "StopSignal defines which signal will be sent to a container when it is being stopped."
        ),
    },
)
_SE_LINUX_OPTIONS = _ref(
    "SELinuxOptions",
    "SELinuxOptions are the labels to be applied to the container",
    {
        k: _str(f"{k.capitalize()} is a SELinux {k} label that applies to the container.")
        for k in ("level", "role", "type", "user")
    },
)
_SECCOMP_PROFILE = _ref(
    "SeccompProfile",
    "SeccompProfile defines a pod/container's seccomp profile settings.",
    {
        "localhostProfile": _str(
            "localhostProfile indicates a profile defined in a file on the node should be used."
        ),
        "type": _str(
            "type indicates which kind of seccomp profile will be applied.",
            enum=("Localhost", "RuntimeDefault", "Unconfined"),
        ),
    },
    required=("type",),
)
_APP_ARMOR_PROFILE = _ref(
    "AppArmorProfile",
    "AppArmorProfile defines a pod or container's AppArmor settings.",
    {
        "localhostProfile": _str(
            "localhostProfile indicates a profile loaded on the node that should be used."
        ),
        "type": _str(
            "type indicates which kind of AppArmor profile will be applied.",
            enum=("Localhost", "RuntimeDefault", "Unconfined"),
        ),
    },
    required=("type",),
)
_WINDOWS_OPTIONS = _ref(
    "WindowsSecurityContextOptions",
    "WindowsSecurityContextOptions contain Windows-specific options and credentials.",
    {
        "gmsaCredentialSpec": _str(),
        "gmsaCredentialSpecName": _str(),
        "hostProcess": _bool(),
        "runAsUserName": _str(),
    },
)
_SECURITY_CONTEXT = _ref(
    "SecurityContext",
    "SecurityContext holds security configuration that will be applied to a container.",
    {
        "allowPrivilegeEscalation": _bool(
            "AllowPrivilegeEscalation controls whether a process "
            "can gain more privileges than its parent process."
        ),
        "appArmorProfile": _APP_ARMOR_PROFILE,
        "capabilities": _ref(
            "Capabilities",
            "Adds and removes POSIX capabilities from running containers.",
            {"add": _strs("Added capabilities"), "drop": _strs("Removed capabilities")},
        ),
        "privileged": _bool("Run container in privileged mode."),
        "procMount": _str("procMount denotes the type of proc mount to use for the containers."),
        "readOnlyRootFilesystem": _bool("Whether this container has a read-only root filesystem."),
        "runAsGroup": _int64("The GID to run the entrypoint of the container process."),
        "runAsNonRoot": _bool("Indicates that the container must run as a non-root user."),
        "runAsUser": _int64("The UID to run the entrypoint of the container process."),
        "seLinuxOptions": _SE_LINUX_OPTIONS,
        "seccompProfile": _SECCOMP_PROFILE,
        "windowsOptions": _WINDOWS_OPTIONS,
    },
)
_POD_SECURITY_CONTEXT = _ref(
    "PodSecurityContext",
    "PodSecurityContext holds pod-level security attributes and common container settings.",
    {
        "appArmorProfile": _APP_ARMOR_PROFILE,
        "fsGroup": _int64("A special supplemental group that applies to all containers in a pod."),
        "fsGroupChangePolicy": _str(
            "fsGroupChangePolicy defines behavior of changing "
            "ownership and permission of the volume."
        ),
        "runAsGroup": _int64("The GID to run the entrypoint of the container process."),
        "runAsNonRoot": _bool("Indicates that the container must run as a non-root user."),
        "runAsUser": _int64("The UID to run the entrypoint of the container process."),
        "seLinuxChangePolicy": _str(
            "seLinuxChangePolicy defines how the container's SELinux "
            "label is applied to all volumes used by the Pod."
        ),
        "seLinuxOptions": _SE_LINUX_OPTIONS,
        "seccompProfile": _SECCOMP_PROFILE,
        "supplementalGroups": _arr(
            _int64(), "A list of groups applied to the first process run in each container."
        ),
        "supplementalGroupsPolicy": _str(
            "Defines how supplemental groups of the first container processes are calculated."
        ),
        "sysctls": _arr(
            _ref(
                "Sysctl",
                "Sysctl defines a kernel parameter to be set",
                {
                    "name": _str("Name of a property to set"),
                    "value": _str("Value of a property to set"),
                },
                required=("name", "value"),
            ),
            "Sysctls hold a list of namespaced sysctls used for the pod.",
        ),
        "windowsOptions": _WINDOWS_OPTIONS,
    },
)


def _container(name: str, description: str, extra: Mapping[str, Schema]) -> Schema:
    return _ref(
        name,
        description,
        {
            "args": _strs("Arguments to the entrypoint."),
            "command": _strs("Entrypoint array. Not executed within a shell."),
            "env": _arr(
                ENV_VAR,
                "List of environment variables to set in the container.",
                list_type="map",
                keys=("name",),
                strategy="merge",
                merge_key="name",
            ),
            "envFrom": _arr(
                _ENV_FROM_SOURCE,
                "List of sources to populate environment variables in the container.",
            ),
            "image": _str("Container image name."),
            "imagePullPolicy": _str(
                "Image pull policy. One of Always, Never, IfNotPresent. "
                "Defaults to Always if :latest tag is specified, or "
                "IfNotPresent otherwise.",
                enum=_PULL_POLICIES,
            ),
            "lifecycle": _LIFECYCLE,
            "livenessProbe": PROBE,
            "name": _str(
                "Name of the container specified as a DNS_LABEL. Each container in a "
                "pod must have a unique name (DNS_LABEL). Cannot be updated.",
                check=_dns_label,
            ),
            "ports": _arr(
                CONTAINER_PORT,
                "List of ports to expose from the container.",
                list_type="map",
                keys=("containerPort", "protocol"),
                strategy="merge",
                merge_key="containerPort",
            ),
            "readinessProbe": PROBE,
            "resizePolicy": _arr(
                _any("ContainerResizePolicy represents resource resize policy for the container."),
                "Resources resize policy for the container.",
            ),
            "resources": RESOURCE_REQUIREMENTS,
            "restartPolicy": _str(
                "RestartPolicy defines the restart behavior of individual containers in a pod."
            ),
            "restartPolicyRules": _arr(
                _any("ContainerRestartRule describes how a container exit is handled."),
                "Container restart rules.",
            ),
            "securityContext": _SECURITY_CONTEXT,
            "startupProbe": PROBE,
            "stdin": _bool(
                "Whether this container should allocate a buffer for stdin in the "
                "container runtime."
            ),
            "stdinOnce": _bool(
                "Whether the container runtime should close the stdin channel "
                "after it has been opened by a single attach."
            ),
            "terminationMessagePath": _str(
                "Path at which the file to which the container's "
                "termination message will be written is mounted."
            ),
            "terminationMessagePolicy": _str(
                "Indicate how the termination message should be populated.",
                enum=("File", "FallbackToLogsOnError"),
            ),
            "tty": _bool("Whether this container should allocate a TTY for itself."),
            "volumeDevices": _arr(
                _VOLUME_DEVICE,
                "volumeDevices is the list of block devices to be used by the container.",
                list_type="map",
                keys=("devicePath",),
                strategy="merge",
                merge_key="devicePath",
            ),
            "volumeMounts": _arr(
                _VOLUME_MOUNT,
                "Pod volumes to mount into the container's filesystem.",
                list_type="map",
                keys=("mountPath",),
                strategy="merge",
                merge_key="mountPath",
            ),
            "workingDir": _str("Container's working directory."),
            **extra,
        },
        required=("name",),
    )


CONTAINER = _container(
    "Container", "A single application container that you want to run within a pod.", {}
)
_EPHEMERAL_CONTAINER = _container(
    "EphemeralContainer",
    "An EphemeralContainer is a temporary container that you may add to an existing Pod for "
    "user-initiated activities such as debugging.",
    {
        "targetContainerName": _str(
            "If set, the name of the container from PodSpec that this ephemeral container targets."
        )
    },
)
_KEY_TO_PATH = _ref(
    "KeyToPath",
    "Maps a string key to a path within a volume.",
    {
        "key": _str("key is the key to project."),
        "mode": _int("mode is Optional: mode bits used to set permissions on this file."),
        "path": _str("path is the relative path of the file to map the key to."),
        "user": _int64("user (newer API servers)."),
    },
    required=("key", "path"),
)
_DOWNWARD_API_FILE = _ref(
    "DownwardAPIVolumeFile",
    "DownwardAPIVolumeFile represents information to create the file containing the pod field",
    {
        "fieldRef": _OBJECT_FIELD_SELECTOR,
        "mode": _int("Optional: mode bits used to set permissions on this file."),
        "path": _str("Required: Path is the relative path name of the file to be created."),
        "resourceFieldRef": _RESOURCE_FIELD_SELECTOR,
        "user": _int64("user (newer API servers)."),
    },
    required=("path",),
)
_PROJECTION_ITEMS = {
    "items": _arr(
        _KEY_TO_PATH,
        "items if unspecified, each key-value pair in the Data field "
        "of the referenced object will be projected into the volume.",
    ),
    "name": _str("Name of the referent."),
    "optional": _bool("optional specify whether the object or its keys must be defined"),
}
_VOLUME_PROJECTION = _ref(
    "VolumeProjection",
    "Projection that may be projected along with other supported volume types.",
    {
        "clusterTrustBundle": _any(
            "ClusterTrustBundle allows a pod to access the "
            "`.spec.trustBundle` field of ClusterTrustBundle objects."
        ),
        "configMap": _ref(
            "ConfigMapProjection",
            "configMap information about the configMap data to project",
            _PROJECTION_ITEMS,
        ),
        "downwardAPI": _ref(
            "DownwardAPIProjection",
            "downwardAPI information about the downwardAPI data to project",
            {"items": _arr(_DOWNWARD_API_FILE, "Items is a list of DownwardAPIVolume file")},
        ),
        "podCertificate": _any("Projects an auto-rotating credential bundle."),
        "secret": _ref(
            "SecretProjection",
            "secret information about the secret data to project",
            _PROJECTION_ITEMS,
        ),
        "serviceAccountToken": _ref(
            "ServiceAccountTokenProjection",
            "serviceAccountToken is information about the serviceAccountToken data to project",
            {
                "audience": _str("audience is the intended audience of the token."),
                "expirationSeconds": _int64(
                    "expirationSeconds is the requested duration of "
                    "validity of the service account token."
                ),
                "path": _str(
                    "path is the path relative to the mount point of the file to "
                    "project the token into."
                ),
                "user": _int64("user (newer API servers)."),
            },
            required=("path",),
        ),
    },
)
_MODE_FIELDS = {
    "defaultMode": _int(
        "defaultMode is optional: mode bits used to set permissions on created files by default."
    ),
    "defaultUser": _int64("defaultUser (newer API servers)."),
}
_VOLUME_SOURCES: dict[str, Schema] = {
    "configMap": _ref(
        "ConfigMapVolumeSource",
        "configMap represents a configMap that should populate this volume",
        {**_PROJECTION_ITEMS, **_MODE_FIELDS},
    ),
    "csi": _ref(
        "CSIVolumeSource",
        "csi (Container Storage Interface) represents ephemeral "
        "storage that is handled by certain external CSI drivers.",
        {
            "driver": _str("driver is the name of the CSI driver that handles this volume."),
            "fsType": _str("fsType to mount."),
            "nodePublishSecretRef": _LOCAL_OBJECT_REFERENCE,
            "readOnly": _bool("readOnly specifies a read-only configuration for the volume."),
            "volumeAttributes": _map(_str(), "volumeAttributes stores driver-specific properties"),
        },
        required=("driver",),
    ),
    "downwardAPI": _ref(
        "DownwardAPIVolumeSource",
        "downwardAPI represents downward API about the pod that should populate this volume",
        {
            "items": _arr(_DOWNWARD_API_FILE, "Items is a list of downward API volume file"),
            **_MODE_FIELDS,
        },
    ),
    "emptyDir": _ref(
        "EmptyDirVolumeSource",
        "emptyDir represents a temporary directory that shares a pod's lifetime.",
        {
            "medium": _str(
                "medium represents what type of storage medium should back this directory."
            ),
            "sizeLimit": _QUANTITY,
            "mode": _int("mode (newer API servers)."),
        },
    ),
    "ephemeral": _any("ephemeral represents a volume that is handled by a cluster storage driver."),
    "hostPath": _ref(
        "HostPathVolumeSource",
        "hostPath represents a pre-existing file or "
        "directory on the host machine that is directly exposed to the container.",
        {
            "path": _str("path of the directory on the host."),
            "type": _str('type for HostPath Volume. Defaults to ""'),
        },
        required=("path",),
    ),
    "image": _ref(
        "ImageVolumeSource",
        "image represents an OCI object (a container image or "
        "artifact) pulled and mounted on the kubelet's host machine.",
        {
            "pullPolicy": _str("Policy for pulling OCI objects.", enum=_PULL_POLICIES),
            "reference": _str("Required: Image or artifact reference to be used."),
        },
    ),
    "nfs": _ref(
        "NFSVolumeSource",
        "nfs represents an NFS mount on the host that shares a pod's lifetime",
        {
            "path": _str("path that is exported by the NFS server."),
            "readOnly": _bool(
                "readOnly here will force the NFS export to be mounted with read-only permissions."
            ),
            "server": _str("server is the hostname or IP address of the NFS server."),
        },
        required=("server", "path"),
    ),
    "persistentVolumeClaim": _ref(
        "PersistentVolumeClaimVolumeSource",
        "persistentVolumeClaimVolumeSource represents a reference to a PersistentVolumeClaim "
        "in the same namespace.",
        {
            "claimName": _str(
                "claimName is the name of a PersistentVolumeClaim in the same "
                "namespace as the pod using this volume."
            ),
            "readOnly": _bool("readOnly Will force the ReadOnly setting in VolumeMounts."),
        },
        required=("claimName",),
    ),
    "projected": _ref(
        "ProjectedVolumeSource",
        "projected items for all in one resources secrets, configmaps, and downward API",
        {
            "sources": _arr(_VOLUME_PROJECTION, "sources is the list of volume projections."),
            **_MODE_FIELDS,
        },
    ),
    "secret": _ref(
        "SecretVolumeSource",
        "secret represents a secret that should populate this volume.",
        {
            "items": _PROJECTION_ITEMS["items"],
            "optional": _PROJECTION_ITEMS["optional"],
            "secretName": _str(
                "secretName is the name of the secret in the pod's namespace to use."
            ),
            **_MODE_FIELDS,
        },
    ),
}
# In-tree volume plugins we accept but do not model (most are deprecated).
_LEGACY_VOLUME_SOURCES = (
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "iscsi",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
)
for _legacy in _LEGACY_VOLUME_SOURCES:
    _VOLUME_SOURCES[_legacy] = _any(f"{_legacy} volume source (not modelled; kept as given).")
VOLUME = _ref(
    "Volume",
    "Volume represents a named volume in a pod that may be accessed by any container in the pod.",
    {
        "name": _str(
            "name of the volume. Must be a DNS_LABEL and unique within the pod.", check=_dns_label
        ),
        **dict(sorted(_VOLUME_SOURCES.items())),
    },
    required=("name",),
)
_NODE_SELECTOR_REQUIREMENT = _ref(
    "NodeSelectorRequirement",
    "A node selector requirement is a selector that contains values, a key, and an operator "
    "that relates the key and values.",
    {
        "key": _str("The label key that the selector applies to."),
        "operator": _str(
            "Represents a key's relationship to a set of values.",
            enum=("DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn"),
        ),
        "values": _strs("An array of string values."),
    },
    required=("key", "operator"),
)
_NODE_SELECTOR_TERM = _ref(
    "NodeSelectorTerm",
    "A null or empty node selector term matches no objects.",
    {
        "matchExpressions": _arr(
            _NODE_SELECTOR_REQUIREMENT, "A list of node selector requirements by node's labels."
        ),
        "matchFields": _arr(
            _NODE_SELECTOR_REQUIREMENT, "A list of node selector requirements by node's fields."
        ),
    },
    map_type="atomic",
)
_POD_AFFINITY_TERM = _ref(
    "PodAffinityTerm",
    "Defines a set of pods (namely those matching the labelSelector relative to the given "
    "namespace(s)) that this pod should be co-located (affinity) or not co-located "
    "(anti-affinity) with.",
    {
        "labelSelector": LABEL_SELECTOR,
        "matchLabelKeys": _strs(
            "MatchLabelKeys is a set of pod label keys to select which pods "
            "will be taken into consideration."
        ),
        "mismatchLabelKeys": _strs(
            "MismatchLabelKeys is a set of pod label keys to select which "
            "pods will be taken into consideration."
        ),
        "namespaceSelector": LABEL_SELECTOR,
        "namespaces": _strs(
            "namespaces specifies a static list of namespace names that the term applies to."
        ),
        "topologyKey": _str(
            "This pod should be co-located (affinity) or not co-located "
            "(anti-affinity) with the pods matching the labelSelector in the "
            "specified namespaces."
        ),
    },
    required=("topologyKey",),
)
_WEIGHTED_POD_AFFINITY_TERM = _ref(
    "WeightedPodAffinityTerm",
    "The weights of all of the matched WeightedPodAffinityTerm fields are added per-node to "
    "find the most preferred node(s)",
    {
        "podAffinityTerm": _POD_AFFINITY_TERM,
        "weight": _int(
            "weight associated with matching the corresponding podAffinityTerm, in "
            "the range 1-100.",
            minimum=1,
            maximum=100,
        ),
    },
    required=("weight", "podAffinityTerm"),
)


def _pod_affinity(name: str, description: str) -> Schema:
    return _ref(
        name,
        description,
        {
            "preferredDuringSchedulingIgnoredDuringExecution": _arr(
                _WEIGHTED_POD_AFFINITY_TERM,
                "The scheduler will prefer to schedule pods to nodes "
                "that satisfy the affinity expressions specified by this field.",
            ),
            "requiredDuringSchedulingIgnoredDuringExecution": _arr(
                _POD_AFFINITY_TERM,
                "If the affinity requirements specified by this field are not "
                "met at scheduling time, the pod will not be scheduled onto the node.",
            ),
        },
    )


_AFFINITY = _ref(
    "Affinity",
    "Affinity is a group of affinity scheduling rules.",
    {
        "nodeAffinity": _ref(
            "NodeAffinity",
            "Node affinity is a group of node affinity scheduling rules.",
            {
                "preferredDuringSchedulingIgnoredDuringExecution": _arr(
                    _ref(
                        "PreferredSchedulingTerm",
                        "An empty preferred scheduling term matches "
                        "all objects with implicit weight 0 (i.e. it's a no-op).",
                        {
                            "preference": _NODE_SELECTOR_TERM,
                            "weight": _int(
                                "Weight associated with matching the corresponding "
                                "nodeSelectorTerm, in the range 1-100.",
                                minimum=1,
                                maximum=100,
                            ),
                        },
                        required=("weight", "preference"),
                    ),
                    "The scheduler will prefer to schedule pods to nodes that satisfy the "
                    "affinity expressions specified by this field.",
                ),
                "requiredDuringSchedulingIgnoredDuringExecution": _ref(
                    "NodeSelector",
                    "A node selector represents the union of the results of one "
                    "or more label queries over a set of nodes.",
                    {
                        "nodeSelectorTerms": _arr(
                            _NODE_SELECTOR_TERM,
                            "Required. A list of node selector terms. The terms are ORed.",
                        )
                    },
                    required=("nodeSelectorTerms",),
                    map_type="atomic",
                ),
            },
        ),
        "podAffinity": _pod_affinity(
            "PodAffinity", "Pod affinity is a group of inter pod affinity scheduling rules."
        ),
        "podAntiAffinity": _pod_affinity(
            "PodAntiAffinity",
            "Pod anti affinity is a group of inter pod anti affinity scheduling rules.",
        ),
    },
)
_TOLERATION = _ref(
    "Toleration",
    "The pod this Toleration is attached to tolerates any taint that matches the triple "
    "<key,value,effect> using the matching operator <operator>.",
    {
        "effect": _str(
            "Effect indicates the taint effect to match. Empty means match all taint effects.",
            enum=("NoExecute", "NoSchedule", "PreferNoSchedule"),
        ),
        "key": _str("Key is the taint key that the toleration applies to."),
        "operator": _str(
            "Operator represents a key's relationship to the value.", enum=("Equal", "Exists")
        ),
        "tolerationSeconds": _int64(
            "TolerationSeconds represents the period of time the toleration tolerates the taint."
        ),
        "value": _str("Value is the taint value the toleration matches to."),
    },
)
_TOPOLOGY_SPREAD_CONSTRAINT = _ref(
    "TopologySpreadConstraint",
    "TopologySpreadConstraint specifies how to spread matching pods among the given topology.",
    {
        "labelSelector": LABEL_SELECTOR,
        "matchLabelKeys": _strs(
            "MatchLabelKeys is a set of pod label keys to select the pods "
            "over which spreading will be calculated."
        ),
        "maxSkew": _int(
            "MaxSkew describes the degree to which pods may be unevenly distributed.", minimum=1
        ),
        "minDomains": _int("MinDomains indicates a minimum number of eligible domains.", minimum=1),
        "nodeAffinityPolicy": _str(
            "NodeAffinityPolicy indicates how we will treat Pod's "
            "nodeAffinity/nodeSelector when calculating pod topology "
            "spread skew.",
            enum=("Honor", "Ignore"),
        ),
        "nodeTaintsPolicy": _str(
            "NodeTaintsPolicy indicates how we will treat node taints when "
            "calculating pod topology spread skew.",
            enum=("Honor", "Ignore"),
        ),
        "topologyKey": _str("TopologyKey is the key of node labels."),
        "whenUnsatisfiable": _str(
            "WhenUnsatisfiable indicates how to deal with a pod if it "
            "doesn't satisfy the spread constraint.",
            enum=("DoNotSchedule", "ScheduleAnyway"),
        ),
    },
    required=("maxSkew", "topologyKey", "whenUnsatisfiable"),
)
_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
POD_SPEC = _ref(
    "PodSpec",
    "PodSpec is a description of a pod.",
    {
        "activeDeadlineSeconds": _int64(
            "Optional duration in seconds the pod may be active on "
            "the node relative to StartTime before the system will "
            "actively try to mark it failed and kill associated "
            "containers.",
            minimum=1,
        ),
        "affinity": _AFFINITY,
        "automountServiceAccountToken": _bool(
            "AutomountServiceAccountToken indicates whether a "
            "service account token should be automatically "
            "mounted."
        ),
        "containers": _arr(
            CONTAINER,
            "List of containers belonging to the pod. Containers "
            "cannot currently be added or removed. There must be at least one "
            "container in a Pod. Cannot be updated.",
            list_type="map",
            keys=("name",),
            strategy="merge",
            merge_key="name",
            min_items=1,
        ),
        "dnsConfig": _ref(
            "PodDNSConfig",
            "Specifies the DNS parameters of a pod.",
            {
                "nameservers": _strs("A list of DNS name server IP addresses."),
                "options": _arr(
                    _ref(
                        "PodDNSConfigOption",
                        "PodDNSConfigOption defines DNS resolver options of a pod.",
                        {
                            "name": _str("Name is this DNS resolver option's name."),
                            "value": _str("Value is this DNS resolver option's value."),
                        },
                    ),
                    "A list of DNS resolver options.",
                ),
                "searches": _strs("A list of DNS search domains for host-name lookup."),
            },
        ),
        "dnsPolicy": _str(
            'Set DNS policy for the pod. Defaults to "ClusterFirst".', enum=_DNS_POLICIES
        ),
        "enableServiceLinks": _bool(
            "EnableServiceLinks indicates whether information about "
            "services should be injected into pod's environment "
            "variables."
        ),
        "ephemeralContainers": _arr(
            _EPHEMERAL_CONTAINER,
            "List of ephemeral containers run in this pod.",
            list_type="map",
            keys=("name",),
            strategy="merge",
            merge_key="name",
        ),
        "evictionResponders": _arr(
            _any("EvictionResponder (newer API servers)."),
            "Eviction responders (newer API servers).",
        ),
        "hostAliases": _arr(
            _ref(
                "HostAlias",
                "HostAlias holds the mapping between IP and "
                "hostnames that will be injected as an entry in the pod's "
                "hosts file.",
                {
                    "hostnames": _strs("Hostnames for the above IP address."),
                    "ip": _str("IP address of the host file entry."),
                },
                required=("ip",),
            ),
            "HostAliases is an optional list of hosts and IPs that will be "
            "injected into the pod's hosts file if specified.",
            list_type="map",
            keys=("ip",),
            strategy="merge",
            merge_key="ip",
        ),
        "hostIPC": _bool("Use the host's ipc namespace. Optional: Default to false."),
        "hostNetwork": _bool("Host networking requested for this pod. Default to false."),
        "hostPID": _bool("Use the host's pid namespace. Optional: Default to false."),
        "hostUsers": _bool("Use the host's user namespace. Optional: Default to true."),
        "hostname": _str(
            "Specifies the hostname of the Pod. If not specified, the pod's "
            "hostname will be set to a system-defined value.",
            check=_dns_label,
        ),
        "hostnameOverride": _str("HostnameOverride (newer API servers)."),
        "imagePullSecrets": _arr(
            _LOCAL_OBJECT_REFERENCE,
            "ImagePullSecrets is an optional "
            "list of references to secrets in the same namespace to use "
            "for pulling any of the images used by this PodSpec.",
            list_type="map",
            keys=("name",),
            strategy="merge",
            merge_key="name",
        ),
        "initContainers": _arr(
            CONTAINER,
            "List of initialization containers belonging to the pod.",
            list_type="map",
            keys=("name",),
            strategy="merge",
            merge_key="name",
        ),
        "nodeName": _str("NodeName indicates in which node this pod is scheduled."),
        "nodeSelector": _map(
            _str(),
            "NodeSelector is a selector which must be true for the pod to fit on a node.",
            check=_check_labels,
        ),
        "os": _ref(
            "PodOS",
            "PodOS defines the OS parameters of a pod.",
            {
                "name": _str(
                    "Name is the name of the operating system. The currently "
                    "supported values are linux and windows."
                )
            },
            required=("name",),
        ),
        "overhead": _map(
            _QUANTITY,
            "Overhead represents the resource overhead associated with "
            "running a pod for a given RuntimeClass.",
            check=_check_resource_list,
        ),
        "preemptionPolicy": _str(
            "PreemptionPolicy is the Policy for preempting pods with lower priority.",
            enum=("Never", "PreemptLowerPriority"),
        ),
        "priority": _int(
            "The priority value. Various system components use this field to "
            "find the priority of the pod."
        ),
        "priorityClassName": _str("If specified, indicates the pod's priority."),
        "readinessGates": _arr(
            _ref(
                "PodReadinessGate",
                "PodReadinessGate contains the reference to a pod condition",
                {
                    "conditionType": _str(
                        "ConditionType refers to a condition "
                        "in the pod's condition list with "
                        "matching type."
                    )
                },
                required=("conditionType",),
            ),
            "If specified, all readiness gates will be evaluated for pod readiness.",
        ),
        "resourceClaims": _arr(
            _any("PodResourceClaim references exactly one ResourceClaim."),
            "ResourceClaims defines which ResourceClaims must be allocated "
            "and reserved before the Pod is allowed to start.",
            list_type="map",
            keys=("name",),
            strategy="merge,retainKeys",
            merge_key="name",
        ),
        "resources": RESOURCE_REQUIREMENTS,
        "restartPolicy": _str(
            "Restart policy for all containers within the pod. One of "
            "Always, OnFailure, Never. Default to Always.",
            enum=_RESTART_POLICIES,
        ),
        "runtimeClassName": _str(
            "RuntimeClassName refers to a RuntimeClass object in the "
            "node.k8s.io group, which should be used to run this pod.",
            check=_dns_subdomain,
        ),
        "schedulerName": _str("If specified, the pod will be dispatched by specified scheduler."),
        "schedulingGates": _arr(
            _ref(
                "PodSchedulingGate",
                "PodSchedulingGate is associated to a Pod to guard its scheduling.",
                {"name": _str("Name of the scheduling gate.")},
                required=("name",),
            ),
            "SchedulingGates is an opaque list of values that if specified "
            "will block scheduling the pod.",
            list_type="map",
            keys=("name",),
            strategy="merge",
            merge_key="name",
        ),
        "schedulingGroup": _any("SchedulingGroup (newer API servers)."),
        "securityContext": _POD_SECURITY_CONTEXT,
        "serviceAccount": _str(
            "DeprecatedServiceAccount is a deprecated alias for ServiceAccountName."
        ),
        "serviceAccountName": _str(
            "ServiceAccountName is the name of the ServiceAccount to use to run this pod.",
            check=_dns_subdomain,
        ),
        "setHostnameAsFQDN": _bool(
            "If true the pod's hostname will be configured as the pod's "
            "FQDN, rather than the leaf name (the default)."
        ),
        "shareProcessNamespace": _bool(
            "Share a single process namespace between all of the containers in a pod."
        ),
        "subdomain": _str(
            "If specified, the fully qualified Pod hostname will be "
            '"<hostname>.<subdomain>.<pod namespace>.svc.<cluster domain>".',
            check=_dns_label,
        ),
        "terminationGracePeriodSeconds": _int64(
            "Optional duration in seconds the pod needs to "
            "terminate gracefully. Defaults to 30 seconds."
        ),
        "tolerations": _arr(_TOLERATION, "If specified, the pod's tolerations."),
        "topologySpreadConstraints": _arr(
            _TOPOLOGY_SPREAD_CONSTRAINT,
            "TopologySpreadConstraints "
            "describes how a group of pods ought to spread across "
            "topology domains.",
            list_type="map",
            keys=("topologyKey", "whenUnsatisfiable"),
            strategy="merge",
            merge_key="topologyKey",
        ),
        "volumes": _arr(
            VOLUME,
            "List of volumes that can be mounted by containers belonging to the pod.",
            list_type="map",
            keys=("name",),
            strategy="merge,retainKeys",
            merge_key="name",
        ),
    },
    required=("containers",),
)
_CONTAINER_STATE = _ref(
    "ContainerState",
    "ContainerState holds a possible state of container. Only one of its members may be "
    "specified. If none of them is specified, the default one is ContainerStateWaiting.",
    {
        "running": _ref(
            "ContainerStateRunning",
            "ContainerStateRunning is a running state of a container.",
            {"startedAt": _TIME},
        ),
        "terminated": _ref(
            "ContainerStateTerminated",
            "ContainerStateTerminated is a terminated state of a container.",
            {
                "containerID": _str("Container's ID in the format '<type>://<container_id>'"),
                "exitCode": _int("Exit status from the last termination of the container"),
                "finishedAt": _TIME,
                "message": _str("Message regarding the last termination of the container"),
                "reason": _str("(brief) reason from the last termination of the container"),
                "signal": _int("Signal from the last termination of the container"),
                "startedAt": _TIME,
            },
            required=("exitCode",),
        ),
        "waiting": _ref(
            "ContainerStateWaiting",
            "ContainerStateWaiting is a waiting state of a container.",
            {
                "message": _str("Message regarding why the container is not yet running."),
                "reason": _str("(brief) reason the container is not yet running."),
            },
        ),
    },
)
_CONTAINER_STATUS = _ref(
    "ContainerStatus",
    "ContainerStatus contains details for the current status of this container.",
    {
        "allocatedResources": _map(
            _QUANTITY,
            "AllocatedResources represents the compute "
            "resources allocated for this container by the node.",
        ),
        "allocatedResourcesStatus": _arr(
            _any(),
            "AllocatedResourcesStatus represents the "
            "status of various resources allocated for this Pod.",
        ),
        "containerID": _str(
            "ContainerID is the ID of the container in the format '<type>://<container_id>'."
        ),
        "image": _str("Image is the name of container image that the container is running."),
        "imageID": _str("ImageID is the image ID of the container's image."),
        "lastState": _CONTAINER_STATE,
        "name": _str("Name is a DNS_LABEL representing the unique name of the container."),
        "ready": _bool(
            "Ready specifies whether the container is currently passing its readiness check."
        ),
        "resources": RESOURCE_REQUIREMENTS,
        "restartCount": _int(
            "RestartCount holds the number of times the container has been restarted."
        ),
        "started": _bool(
            "Started indicates whether the container has finished its postStart "
            "lifecycle hook and passed its startup probe."
        ),
        "state": _CONTAINER_STATE,
        "stopSignal": _str("StopSignal reports the effective stop signal for this container"),
        "user": _any(
            "User represents user identity information initially attached to the "
            "first process of the container"
        ),
        "volumeMounts": _arr(_any(), "Status of volume mounts."),
    },
    required=("name", "ready", "restartCount", "image", "imageID"),
)
_POD_CONDITION = _ref(
    "PodCondition",
    "PodCondition contains details for the current condition of this pod.",
    {
        "lastProbeTime": _TIME,
        "lastTransitionTime": _TIME,
        "message": _str("Human-readable message indicating details about last transition."),
        "observedGeneration": _int64(
            "If set, this represents the .metadata.generation that the "
            "pod condition was set based upon."
        ),
        "reason": _str("Unique, one-word, CamelCase reason for the condition's last transition."),
        "status": _str("Status is the status of the condition. Can be True, False, Unknown."),
        "type": _str("Type is the type of the condition."),
    },
    required=("type", "status"),
)
_IP = {"ip": _str("IP is the IP address assigned to the pod")}
POD_STATUS = _ref(
    "PodStatus",
    "PodStatus represents information about the status of a pod. Status may trail the actual "
    "state of a system, especially if the node that hosts the pod cannot contact the control "
    "plane.",
    {
        "allocatedResources": _map(_QUANTITY, "AllocatedResources (newer API servers)."),
        "conditions": _arr(
            _POD_CONDITION,
            "Current service state of pod.",
            list_type="map",
            keys=("type",),
            strategy="merge",
            merge_key="type",
        ),
        "containerStatuses": _arr(_CONTAINER_STATUS, "Statuses of containers in this pod."),
        "ephemeralContainerStatuses": _arr(
            _CONTAINER_STATUS, "Statuses for any ephemeral containers that have run in this pod."
        ),
        "extendedResourceClaimStatus": _any("Extended resource claim status (newer API servers)."),
        "hostIP": _str("hostIP holds the IP address of the host to which the pod is assigned."),
        "hostIPs": _arr(
            _ref(
                "HostIP",
                "HostIP represents a single IP address allocated to the host.",
                _IP,
                required=("ip",),
            ),
            "hostIPs holds the IP addresses allocated to the host.",
            strategy="merge",
            merge_key="ip",
        ),
        "initContainerStatuses": _arr(
            _CONTAINER_STATUS, "Statuses of init containers in this pod."
        ),
        "message": _str(
            "A human readable message indicating details about why the pod is in this condition."
        ),
        "nodeAllocatableResourceClaimStatuses": _arr(_any(), "(newer API servers)."),
        "nominatedNodeName": _str(
            "nominatedNodeName is set only when this pod preempts other pods on the node."
        ),
        "observedGeneration": _int64(
            "If set, this represents the .metadata.generation that the "
            "pod status was set based upon."
        ),
        "phase": _str(
            "The phase of a Pod is a simple, high-level summary of where the Pod is "
            "in its lifecycle.",
            enum=("Pending", "Running", "Succeeded", "Failed", "Unknown"),
        ),
        "podIP": _str("podIP address allocated to the pod."),
        "podIPs": _arr(
            _ref(
                "PodIP",
                "PodIP represents a single IP address allocated to the pod.",
                _IP,
                required=("ip",),
            ),
            "podIPs holds the IP addresses allocated to the pod.",
            list_type="map",
            keys=("ip",),
            strategy="merge",
            merge_key="ip",
        ),
        "qosClass": _str(
            "The Quality of Service (QOS) classification assigned to the pod based "
            "on resource requirements.",
            enum=("BestEffort", "Burstable", "Guaranteed"),
        ),
        "reason": _str(
            "A brief CamelCase message indicating details about why the pod is in this state."
        ),
        "resize": _str("Status of resources resize desired for pod's containers."),
        "resourceClaimStatuses": _arr(
            _any(),
            "Status of resource claims.",
            list_type="map",
            keys=("name",),
            strategy="merge,retainKeys",
            merge_key="name",
        ),
        "resources": RESOURCE_REQUIREMENTS,
        "startTime": _TIME,
        "volumeHealth": _arr(_any(), "Volume health (newer API servers)."),
    },
)
POD = _ref(
    "Pod",
    "Pod is a collection of containers that can run on a host. This resource is created by "
    "clients and scheduled onto hosts.",
    {
        "apiVersion": _API_VERSION,
        "kind": _KIND,
        "metadata": OBJECT_META,
        "spec": POD_SPEC,
        "status": POD_STATUS,
    },
    gvk=(("", "Pod", "v1"),),
)
POD_TEMPLATE_SPEC = _ref(
    "PodTemplateSpec",
    "PodTemplateSpec describes the data a pod should have when created from a template",
    {"metadata": OBJECT_META, "spec": POD_SPEC},
)


# --------------------------------------------------------------------------- core/v1: others


def _conditions(item: Schema, description: str, *, list_type: str = "map") -> Schema:
    keys = ("type",) if list_type == "map" else ()
    return _arr(
        item, description, list_type=list_type, keys=keys, strategy="merge", merge_key="type"
    )


def _condition(name: str, description: str, times: tuple[str, ...]) -> Schema:
    fields: dict[str, Schema] = {t: _TIME for t in times}
    fields.update(
        message=_str("Human-readable message indicating details about last transition."),
        reason=_str("Unique, one-word, CamelCase reason for the condition's last transition."),
        status=_str("Status of the condition, one of True, False, Unknown."),
        type=_str("Type of the condition."),
    )
    return _obj(name, description, dict(sorted(fields.items())), required=("type", "status"))


_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SERVICE_PORT = _ref(
    "ServicePort",
    "ServicePort contains information on service's port.",
    {
        "appProtocol": _str("The application protocol for this port."),
        "name": _str(
            "The name of this port within the service. This must be a DNS_LABEL.", check=_dns_label
        ),
        "nodePort": _int(
            "The port on each node on which this service is exposed when type is "
            "NodePort or LoadBalancer.",
            check=_host_port,
        ),
        "port": _int("The port that will be exposed by this service.", check=_port_number),
        "protocol": _str(
            'The IP protocol for this port. Supports "TCP", "UDP", and "SCTP". Default is TCP.',
            enum=_PROTOCOLS,
            default="TCP",
        ),
        "targetPort": Schema(
            "int-or-string",
            "Number or name of the port to access on the pods targeted by the service.",
            name=_INT_OR_STRING.name,
            check=_int_or_string_port,
        ),
    },
    required=("port",),
)
SERVICE_SPEC = _ref(
    "ServiceSpec",
    "ServiceSpec describes the attributes that a user creates on a service.",
    {
        "allocateLoadBalancerNodePorts": _bool(
            "allocateLoadBalancerNodePorts defines if "
            "NodePorts will be automatically allocated for "
            "services with type LoadBalancer."
        ),
        "clusterIP": _str(
            "clusterIP is the IP address of the service and is usually assigned randomly."
        ),
        "clusterIPs": _strs("ClusterIPs is a list of IP addresses assigned to this service."),
        "externalIPs": _strs(
            "externalIPs is a list of IP addresses for which nodes in the "
            "cluster will also accept traffic for this service."
        ),
        "externalName": _str(
            "externalName is the external reference that discovery mechanisms "
            "will return as an alias for this service (e.g. a DNS CNAME "
            "record)."
        ),
        "externalTrafficPolicy": _str(
            "externalTrafficPolicy describes how nodes distribute "
            "service traffic they receive on one of the Service's "
            '"externally-facing" addresses.',
            enum=("Cluster", "Local"),
        ),
        "healthCheckNodePort": _int(
            "healthCheckNodePort specifies the healthcheck nodePort for the service."
        ),
        "internalTrafficPolicy": _str(
            "InternalTrafficPolicy describes how nodes distribute "
            "service traffic they receive on the ClusterIP.",
            enum=("Cluster", "Local"),
        ),
        "ipFamilies": _strs(
            "IPFamilies is a list of IP families (e.g. IPv4, IPv6) assigned to this service."
        ),
        "ipFamilyPolicy": _str(
            "IPFamilyPolicy represents the dual-stack-ness requested or required by this Service.",
            enum=("PreferDualStack", "RequireDualStack", "SingleStack"),
        ),
        "loadBalancerClass": _str(
            "loadBalancerClass is the class of the load balancer "
            "implementation this Service belongs to."
        ),
        "loadBalancerIP": _str("Deprecated: Only applies to Service Type: LoadBalancer."),
        "loadBalancerSourceRanges": _strs(
            "If specified and supported by the platform, this "
            "will restrict traffic through the cloud-provider "
            "load-balancer will be restricted to the specified "
            "client IPs."
        ),
        "ports": _arr(
            SERVICE_PORT,
            "The list of ports that are exposed by this service.",
            list_type="map",
            keys=("port", "protocol"),
            strategy="merge",
            merge_key="port",
        ),
        "publishNotReadyAddresses": _bool(
            "publishNotReadyAddresses indicates that any agent "
            "which deals with endpoints for this Service should "
            "disregard any indications of ready/not-ready."
        ),
        "selector": Schema(
            "object",
            "Route service traffic to pods with label keys and values matching this selector.",
            additional=_str(),
            map_type="atomic",
            check=_check_labels,
        ),
        "sessionAffinity": _str(
            'Supports "ClientIP" and "None". Used to maintain session affinity.',
            enum=("ClientIP", "None"),
        ),
        "sessionAffinityConfig": _ref(
            "SessionAffinityConfig",
            "SessionAffinityConfig represents the configurations of session affinity.",
            {
                "clientIP": _ref(
                    "ClientIPConfig",
                    "ClientIPConfig represents the configurations "
                    "of Client IP based session affinity.",
                    {
                        "timeoutSeconds": _int(
                            "timeoutSeconds specifies the seconds of "
                            "ClientIP type session sticky time.",
                            minimum=1,
                            maximum=86400,
                        )
                    },
                )
            },
        ),
        "trafficDistribution": _str(
            "TrafficDistribution offers a way to express preferences "
            "for how traffic is distributed to Service endpoints."
        ),
        "type": _str(
            "type determines how the Service is exposed. Defaults to ClusterIP.",
            enum=_SERVICE_TYPES,
        ),
    },
)
_LOAD_BALANCER_STATUS = _ref(
    "LoadBalancerStatus",
    "LoadBalancerStatus represents the status of a load-balancer.",
    {
        "ingress": _arr(
            _ref(
                "LoadBalancerIngress",
                "LoadBalancerIngress represents the status of a load-balancer ingress point.",
                {
                    "hostname": _str(
                        "Hostname is set for load-balancer ingress points that are DNS based."
                    ),
                    "ip": _str("IP is set for load-balancer ingress points that are IP based."),
                    "ipMode": _str("IPMode specifies how the load-balancer IP behaves."),
                    "ports": _arr(
                        _ref(
                            "PortStatus",
                            "PortStatus represents the error condition of a service port",
                            {"error": _str(), "port": _int(), "protocol": _str(enum=_PROTOCOLS)},
                            required=("port", "protocol"),
                        ),
                        "Ports is a list of records of service ports.",
                    ),
                },
            ),
            "Ingress is a list containing ingress points for the load-balancer.",
        )
    },
)
SERVICE = _ref(
    "Service",
    "Service is a named abstraction of software service (for example, mysql) consisting of "
    "local port (for example 3306) that the proxy listens on, and the selector that determines "
    "which pods will answer requests sent through the proxy.",
    {
        "apiVersion": _API_VERSION,
        "kind": _KIND,
        "metadata": OBJECT_META,
        "spec": SERVICE_SPEC,
        "status": _ref(
            "ServiceStatus",
            "ServiceStatus represents the current status of a service.",
            {
                "conditions": _conditions(_CONDITION, "Current service state"),
                "loadBalancer": _LOAD_BALANCER_STATUS,
            },
        ),
    },
    gvk=(("", "Service", "v1"),),
)
NAMESPACE = _ref(
    "Namespace",
    "Namespace provides a scope for Names. Use of multiple namespaces is optional.",
    {
        "apiVersion": _API_VERSION,
        "kind": _KIND,
        "metadata": OBJECT_META,
        "spec": _ref(
            "NamespaceSpec",
            "NamespaceSpec describes the attributes on a Namespace.",
            {
                "finalizers": _arr(
                    _str(),
                    "Finalizers is an opaque list of values that "
                    "must be empty to permanently remove object from "
                    "storage.",
                    check=_check_finalizers,
                )
            },
        ),
        "status": _ref(
            "NamespaceStatus",
            "NamespaceStatus is information about the current status of a Namespace.",
            {
                "conditions": _conditions(
                    _condition(
                        _CORE + "NamespaceCondition",
                        "NamespaceCondition contains details about state of namespace.",
                        ("lastTransitionTime",),
                    ),
                    "Represents the latest available observations of a namespace's current state.",
                ),
                "phase": _str(
                    "Phase is the current lifecycle phase of the namespace.",
                    enum=("Active", "Terminating"),
                ),
            },
        ),
    },
    gvk=(("", "Namespace", "v1"),),
)
_TAINT = _ref(
    "Taint",
    'The node this Taint is attached to has the "effect" on any pod that does not tolerate '
    "the Taint.",
    {
        "effect": _str(
            "Required. The effect of the taint on pods that do not tolerate the taint.",
            enum=("NoExecute", "NoSchedule", "PreferNoSchedule"),
        ),
        "key": _str("Required. The taint key to be applied to a node.", check=_qualified_name),
        "timeAdded": _TIME,
        "value": _str("The taint value corresponding to the taint key."),
    },
    required=("key", "effect"),
)
_NODE_SYSTEM_INFO = _ref(
    "NodeSystemInfo",
    "NodeSystemInfo is a set of ids/uuids to uniquely identify the node.",
    {
        "architecture": _str("The Architecture reported by the node"),
        "bootID": _str("Boot ID reported by the node."),
        "containerRuntimeVersion": _str(
            "ContainerRuntime Version reported by the node through "
            "runtime remote API (e.g. containerd://1.4.2)."
        ),
        "kernelVersion": _str("Kernel Version reported by the node from 'uname -r'."),
        "kubeProxyVersion": _str("Deprecated: KubeProxy Version reported by the node."),
        "kubeletVersion": _str("Kubelet Version reported by the node."),
        "machineID": _str("MachineID reported by the node."),
        "operatingSystem": _str("The Operating System reported by the node"),
        "osImage": _str("OS Image reported by the node from /etc/os-release."),
        "runningInUserNamespace": _bool("(newer API servers)"),
        "swap": _any("Swap Info reported by the node."),
        "systemUUID": _str("SystemUUID reported by the node."),
    },
)
NODE = _ref(
    "Node",
    "Node is a worker node in Kubernetes. Each node will have a unique identifier in the cache "
    "(i.e. in etcd).",
    {
        "apiVersion": _API_VERSION,
        "kind": _KIND,
        "metadata": OBJECT_META,
        "spec": _ref(
            "NodeSpec",
            "NodeSpec describes the attributes that a node is created with.",
            {
                "configSource": _any(
                    "Deprecated: Previously used to specify the source of the node's configuration."
                ),
                "externalID": _str("Deprecated. Not all kubelets will set this field."),
                "podCIDR": _str("PodCIDR represents the pod IP range assigned to the node."),
                "podCIDRs": _arr(
                    _str(),
                    "podCIDRs represents the IP ranges assigned to the node.",
                    list_type="set",
                    strategy="merge",
                ),
                "podPreemptionPolicy": _any("(newer API servers)"),
                "providerID": _str("ID of the node assigned by the cloud provider."),
                "taints": _arr(_TAINT, "If specified, the node's taints."),
                "unschedulable": _bool("Unschedulable controls node schedulability of new pods."),
            },
        ),
        "status": _ref(
            "NodeStatus",
            "NodeStatus is information about the current status of a node.",
            {
                "addresses": _arr(
                    _ref(
                        "NodeAddress",
                        "NodeAddress contains information for the node's address.",
                        {
                            "address": _str("The node address."),
                            "type": _str(
                                "Node address type, one of Hostname, ExternalIP or InternalIP."
                            ),
                        },
                        required=("type", "address"),
                    ),
                    "List of addresses reachable to the node.",
                    list_type="map",
                    keys=("type",),
                    strategy="merge",
                    merge_key="type",
                ),
                "allocatable": _map(
                    _QUANTITY,
                    "Allocatable represents the resources of a node "
                    "that are available for scheduling.",
                ),
                "capacity": _map(_QUANTITY, "Capacity represents the total resources of a node."),
                "conditions": _conditions(
                    _condition(
                        _CORE + "NodeCondition",
                        "NodeCondition contains condition information for a node.",
                        ("lastHeartbeatTime", "lastTransitionTime"),
                    ),
                    "Conditions is an array of current observed node conditions.",
                ),
                "config": _any(
                    "Status of the config assigned to the node via the dynamic "
                    "Kubelet config feature."
                ),
                "daemonEndpoints": _ref(
                    "NodeDaemonEndpoints",
                    "NodeDaemonEndpoints lists ports opened by daemons running on the Node.",
                    {
                        "kubeletEndpoint": _ref(
                            "DaemonEndpoint",
                            "DaemonEndpoint contains information about a single Daemon endpoint.",
                            {"Port": _int("Port number of the given endpoint.")},
                            required=("Port",),
                        )
                    },
                ),
                "declaredFeatures": _strs("(newer API servers)"),
                "features": _any(
                    "Features describes the set of features implemented by the CRI implementation."
                ),
                "images": _arr(
                    _ref(
                        "ContainerImage",
                        "Describe a container image",
                        {
                            "names": _strs("Names by which this image is known."),
                            "sizeBytes": _int64("The size of the image in bytes."),
                        },
                    ),
                    "List of container images on this node",
                ),
                "nodeInfo": _NODE_SYSTEM_INFO,
                "phase": _str("NodePhase is the recently observed lifecycle phase of the node."),
                "runtimeHandlers": _arr(_any(), "The available runtime handlers."),
                "volumesAttached": _arr(_any(), "List of volumes that are attached to the node."),
                "volumesInUse": _strs("List of attachable volumes in use (mounted) by the node."),
            },
        ),
    },
    gvk=(("", "Node", "v1"),),
)
_OBJECT_REFERENCE = _ref(
    "ObjectReference",
    "ObjectReference contains enough information to let you inspect or modify the referred object.",
    {
        "apiVersion": _str("API version of the referent."),
        "fieldPath": _str(
            "If referring to a piece of an object instead of an entire object, this "
            "string should contain a valid JSON/Go field access statement."
        ),
        "kind": _str("Kind of the referent."),
        "name": _str("Name of the referent."),
        "namespace": _str("Namespace of the referent."),
        "resourceVersion": _str(
            "Specific resourceVersion to which this reference is made, if any."
        ),
        "uid": _str("UID of the referent."),
    },
    map_type="atomic",
)
EVENT = _ref(
    "Event",
    "Event is a report of an event somewhere in the cluster.",
    {
        "action": _str("What action was taken/failed regarding to the Regarding object."),
        "apiVersion": _API_VERSION,
        "count": _int("The number of times this event has occurred."),
        "eventTime": _MICRO_TIME,
        "firstTimestamp": _TIME,
        "involvedObject": _OBJECT_REFERENCE,
        "kind": _KIND,
        "lastTimestamp": _TIME,
        "message": _str("A human-readable description of the status of this operation."),
        "metadata": OBJECT_META,
        "reason": _str(
            "This should be a short, machine understandable string that gives the "
            "reason for the transition into the object's current status."
        ),
        "related": _OBJECT_REFERENCE,
        "reportingComponent": _str(
            "Name of the controller that emitted this Event, e.g. `kubernetes.io/kubelet`."
        ),
        "reportingInstance": _str("ID of the controller instance, e.g. `kubelet-xyzf`."),
        "series": _ref(
            "EventSeries",
            "EventSeries contain information on series of events.",
            {
                "count": _int("Number of occurrences in this series up to the last heartbeat time"),
                "lastObservedTime": _MICRO_TIME,
            },
        ),
        "source": _ref(
            "EventSource",
            "EventSource contains information for an event.",
            {
                "component": _str("Component from which the event is generated."),
                "host": _str("Node name on which the event is generated."),
            },
        ),
        "type": _str(
            "Type of this event (Normal, Warning), new types could be added in the future"
        ),
    },
    required=("metadata", "involvedObject"),
    gvk=(("", "Event", "v1"),),
)


# --------------------------------------------------------------------------- apps/v1, batch/v1

_APPS = "io.k8s.api.apps.v1."
_BATCH = "io.k8s.api.batch.v1."
_INT_OR_PERCENT = Schema(
    "int-or-string", _INT_OR_STRING.description, name=_INT_OR_STRING.name, check=_int_or_percent
)
DEPLOYMENT = _obj(
    _APPS + "Deployment",
    "Deployment enables declarative updates for Pods and ReplicaSets.",
    {
        "apiVersion": _API_VERSION,
        "kind": _KIND,
        "metadata": OBJECT_META,
        "spec": _obj(
            _APPS + "DeploymentSpec",
            "DeploymentSpec is the specification of the desired behavior of the Deployment.",
            {
                "minReadySeconds": _nonneg(
                    "Minimum number of seconds for which a newly created "
                    "pod should be ready without any of its container "
                    "crashing, for it to be considered available."
                ),
                "paused": _bool("Indicates that the deployment is paused."),
                "progressDeadlineSeconds": _int(
                    "The maximum time in seconds for a deployment "
                    "to make progress before it is considered to be "
                    "failed. Defaults to 600s.",
                    minimum=0,
                ),
                "replicas": _nonneg("Number of desired pods. Defaults to 1."),
                "revisionHistoryLimit": _nonneg(
                    "The number of old ReplicaSets to retain to allow rollback. Defaults to 10."
                ),
                "selector": LABEL_SELECTOR,
                "strategy": _obj(
                    _APPS + "DeploymentStrategy",
                    "DeploymentStrategy describes how to replace existing pods with new ones.",
                    {
                        "rollingUpdate": _obj(
                            _APPS + "RollingUpdateDeployment",
                            "Spec to control the desired behavior of rolling update.",
                            {"maxSurge": _INT_OR_PERCENT, "maxUnavailable": _INT_OR_PERCENT},
                        ),
                        "type": _str(
                            'Type of deployment. Can be "Recreate" or '
                            '"RollingUpdate". Default is RollingUpdate.',
                            enum=("Recreate", "RollingUpdate"),
                        ),
                    },
                    patch_strategy="retainKeys",
                ),
                "template": POD_TEMPLATE_SPEC,
            },
            required=("selector", "template"),
        ),
        "status": _obj(
            _APPS + "DeploymentStatus",
            "DeploymentStatus is the most recently observed status of the Deployment.",
            {
                "availableReplicas": _int("Total number of available non-terminating pods."),
                "collisionCount": _int("Count of hash collisions for the Deployment."),
                "conditions": _conditions(
                    _condition(
                        _APPS + "DeploymentCondition",
                        "DeploymentCondition describes "
                        "the state of a deployment at a certain point.",
                        ("lastTransitionTime", "lastUpdateTime"),
                    ),
                    "Represents the latest available observations of a deployment's current state.",
                ),
                "observedGeneration": _int64(
                    "The generation observed by the deployment controller."
                ),
                "readyReplicas": _int(
                    "Total number of non-terminating pods targeted by this "
                    "Deployment with a Ready Condition."
                ),
                "replicas": _int(
                    "Total number of non-terminating pods targeted by this "
                    "deployment (their labels match the selector)."
                ),
                "terminatingReplicas": _int("Total number of terminating pods."),
                "unavailableReplicas": _int(
                    "Total number of unavailable pods targeted by this deployment."
                ),
                "updatedReplicas": _int(
                    "Total number of non-terminating pods targeted by this "
                    "deployment that have the desired template spec."
                ),
            },
        ),
    },
    gvk=(("apps", "Deployment", "v1"),),
)
_PVC_TEMPLATE = _obj(
    _CORE + "PersistentVolumeClaim",
    "PersistentVolumeClaim is a user's request for and claim to a persistent volume",
    {
        "apiVersion": _API_VERSION,
        "kind": _KIND,
        "metadata": OBJECT_META,
        "spec": _any(
            "spec defines the desired characteristics of a volume requested by a pod author."
        ),
        "status": _any(
            "status represents the current information/status of a persistent volume claim."
        ),
    },
)
STATEFUL_SET = _obj(
    _APPS + "StatefulSet",
    "StatefulSet represents a set of pods with consistent identities.",
    {
        "apiVersion": _API_VERSION,
        "kind": _KIND,
        "metadata": OBJECT_META,
        "spec": _obj(
            _APPS + "StatefulSetSpec",
            "A StatefulSetSpec is the specification of a StatefulSet.",
            {
                "minReadySeconds": _nonneg(
                    "Minimum number of seconds for which a newly created "
                    "pod should be ready without any of its container "
                    "crashing for it to be considered available."
                ),
                "ordinals": _obj(
                    _APPS + "StatefulSetOrdinals",
                    "StatefulSetOrdinals describes "
                    "the policy used for replica ordinal assignment in this "
                    "StatefulSet.",
                    {
                        "start": _nonneg(
                            "start is the number representing the first replica's index."
                        )
                    },
                ),
                "persistentVolumeClaimRetentionPolicy": _obj(
                    _APPS + "StatefulSetPersistentVolumeClaimRetentionPolicy",
                    "StatefulSetPersistentVolumeClaimRetentionPolicy describes the policy used "
                    "for PVCs created from the StatefulSet VolumeClaimTemplates.",
                    {
                        "whenDeleted": _str(
                            "WhenDeleted specifies what happens to PVCs created "
                            "from StatefulSet VolumeClaimTemplates when the "
                            "StatefulSet is deleted.",
                            enum=("Retain", "Delete"),
                        ),
                        "whenScaled": _str(
                            "WhenScaled specifies what happens to PVCs created from "
                            "StatefulSet VolumeClaimTemplates when the StatefulSet "
                            "is scaled down.",
                            enum=("Retain", "Delete"),
                        ),
                    },
                ),
                "podManagementPolicy": _str(
                    "podManagementPolicy controls how pods are created "
                    "during initial scale up, when replacing pods on "
                    "nodes, or when scaling down.",
                    enum=("OrderedReady", "Parallel"),
                ),
                "replicas": _nonneg(
                    "replicas is the desired number of replicas of the given Template."
                ),
                "revisionHistoryLimit": _nonneg(
                    "revisionHistoryLimit is the maximum number of "
                    "revisions that will be maintained in the "
                    "StatefulSet's revision history."
                ),
                "selector": LABEL_SELECTOR,
                "serviceName": _str(
                    "serviceName is the name of the service that governs this StatefulSet."
                ),
                "template": POD_TEMPLATE_SPEC,
                "updateStrategy": _obj(
                    _APPS + "StatefulSetUpdateStrategy",
                    "StatefulSetUpdateStrategy indicates the strategy that the StatefulSet "
                    "controller will use to perform updates.",
                    {
                        "rollingUpdate": _obj(
                            _APPS + "RollingUpdateStatefulSetStrategy",
                            "RollingUpdateStatefulSetStrategy is used to communicate parameter for "
                            "RollingUpdateStatefulSetStrategyType.",
                            {
                                "maxUnavailable": _INT_OR_PERCENT,
                                "partition": _nonneg(
                                    "Partition indicates the ordinal at which the "
                                    "StatefulSet should be partitioned for updates."
                                ),
                            },
                        ),
                        "type": _str(
                            "Type indicates the type of the StatefulSetUpdateStrategy. "
                            "Default is RollingUpdate.",
                            enum=("OnDelete", "RollingUpdate"),
                        ),
                    },
                ),
                "volumeClaimTemplates": _arr(
                    _PVC_TEMPLATE,
                    "volumeClaimTemplates is a list of claims that pods are allowed to reference.",
                ),
            },
            required=("selector", "template"),
        ),
        "status": _obj(
            _APPS + "StatefulSetStatus",
            "StatefulSetStatus represents the current state of a StatefulSet.",
            {
                "availableReplicas": _int(
                    "Total number of available pods (ready for at least "
                    "minReadySeconds) targeted by this statefulset."
                ),
                "collisionCount": _int(
                    "collisionCount is the count of hash collisions for the StatefulSet."
                ),
                "conditions": _conditions(
                    _condition(
                        _APPS + "StatefulSetCondition",
                        "StatefulSetCondition describes "
                        "the state of a statefulset at a certain point.",
                        ("lastTransitionTime",),
                    ),
                    "Represents the latest available observations of a statefulset's current "
                    "state.",
                ),
                "currentReplicas": _int(
                    "currentReplicas is the number of Pods created by the "
                    "StatefulSet controller from the StatefulSet version "
                    "indicated by currentRevision."
                ),
                "currentRevision": _str(
                    "currentRevision, if not empty, indicates the version "
                    "of the StatefulSet used to generate Pods in the "
                    "sequence [0,currentReplicas)."
                ),
                "observedGeneration": _int64(
                    "observedGeneration is the most recent generation "
                    "observed for this StatefulSet."
                ),
                "readyReplicas": _int(
                    "readyReplicas is the number of pods created for this "
                    "StatefulSet with a Ready Condition."
                ),
                "replicas": _int(
                    "replicas is the number of Pods created by the StatefulSet controller."
                ),
                "updateRevision": _str(
                    "updateRevision, if not empty, indicates the version of "
                    "the StatefulSet used to generate Pods in the sequence "
                    "[replicas-updatedReplicas,replicas)"
                ),
                "updatedReplicas": _int(
                    "updatedReplicas is the number of Pods created by the "
                    "StatefulSet controller from the StatefulSet version "
                    "indicated by updateRevision."
                ),
            },
            required=("replicas",),
        ),
    },
    gvk=(("apps", "StatefulSet", "v1"),),
)
JOB = _obj(
    _BATCH + "Job",
    "Job represents the configuration of a single job.",
    {
        "apiVersion": _API_VERSION,
        "kind": _KIND,
        "metadata": OBJECT_META,
        "spec": _obj(
            _BATCH + "JobSpec",
            "JobSpec describes how the job execution will look like.",
            {
                "activeDeadlineSeconds": _int64(
                    "Specifies the duration in seconds relative to "
                    "the startTime that the job may be continuously "
                    "active before the system tries to terminate "
                    "it.",
                    minimum=1,
                ),
                "backoffLimit": _nonneg(
                    "Specifies the number of retries before marking this job failed. Defaults to 6."
                ),
                "backoffLimitPerIndex": _nonneg(
                    "Specifies the limit for the number of retries "
                    "within an index before marking this index as "
                    "failed."
                ),
                "completionMode": _str(
                    "completionMode specifies how Pod completions are "
                    "tracked. It can be `NonIndexed` (default) or "
                    "`Indexed`.",
                    enum=("NonIndexed", "Indexed"),
                ),
                "completions": _nonneg(
                    "Specifies the desired number of successfully finished "
                    "pods the job should be run with."
                ),
                "managedBy": _str("ManagedBy field indicates the controller that manages a Job."),
                "manualSelector": _bool(
                    "manualSelector controls generation of pod labels and pod selectors."
                ),
                "maxFailedIndexes": _nonneg(
                    "Specifies the maximal number of failed indexes "
                    "before marking the Job as failed."
                ),
                "parallelism": _nonneg(
                    "Specifies the maximum desired number of pods the job "
                    "should run at any given time."
                ),
                "podFailurePolicy": _any("Specifies the policy of handling failed pods."),
                "podReplacementPolicy": _str(
                    "podReplacementPolicy specifies when to create replacement Pods.",
                    enum=("TerminatingOrFailed", "Failed"),
                ),
                "scheduling": _any("(newer API servers)"),
                "selector": LABEL_SELECTOR,
                "successPolicy": _any(
                    "successPolicy specifies the policy when the Job can be declared as succeeded."
                ),
                "suspend": _bool(
                    "suspend specifies whether the Job controller should create Pods or not."
                ),
                "template": POD_TEMPLATE_SPEC,
                "ttlSecondsAfterFinished": _nonneg(
                    "ttlSecondsAfterFinished limits the lifetime "
                    "of a Job that has finished execution."
                ),
            },
            required=("template",),
        ),
        "status": _obj(
            _BATCH + "JobStatus",
            "JobStatus represents the current state of a Job.",
            {
                "active": _int("The number of pending and running pods which are not terminating."),
                "completedIndexes": _str(
                    "completedIndexes holds the completed indexes when "
                    '.spec.completionMode = "Indexed" in a text format.'
                ),
                "completionTime": _TIME,
                "conditions": _conditions(
                    _condition(
                        _BATCH + "JobCondition",
                        "JobCondition describes current state of a job.",
                        ("lastProbeTime", "lastTransitionTime"),
                    ),
                    "The latest available observations of an object's current state.",
                    list_type="atomic",
                ),
                "failed": _int("The number of pods which reached phase Failed."),
                "failedIndexes": _str(
                    "FailedIndexes holds the failed indexes when spec.backoffLimitPerIndex is set."
                ),
                "ready": _int("The number of active pods which have a Ready condition."),
                "startTime": _TIME,
                "succeeded": _int("The number of pods which reached phase Succeeded."),
                "terminating": _int("The number of pods which are terminating."),
                "uncountedTerminatedPods": _obj(
                    _BATCH + "UncountedTerminatedPods",
                    "UncountedTerminatedPods holds UIDs of Pods that have terminated but haven't "
                    "been accounted in Job status counters.",
                    {
                        "failed": _arr(
                            _str(), "failed holds UIDs of failed Pods.", list_type="set"
                        ),
                        "succeeded": _arr(
                            _str(), "succeeded holds UIDs of succeeded Pods.", list_type="set"
                        ),
                    },
                ),
            },
        ),
    },
    gvk=(("batch", "Job", "v1"),),
)
SCALE = _obj(
    "io.k8s.api.autoscaling.v1.Scale",
    "Scale represents a scaling request for a resource.",
    {
        "apiVersion": _API_VERSION,
        "kind": _KIND,
        "metadata": OBJECT_META,
        "spec": _obj(
            "io.k8s.api.autoscaling.v1.ScaleSpec",
            "ScaleSpec describes the attributes of a scale subresource.",
            {
                "replicas": _nonneg(
                    "replicas is the desired number of instances for the scaled object."
                )
            },
        ),
        "status": _obj(
            "io.k8s.api.autoscaling.v1.ScaleStatus",
            "ScaleStatus represents the current status of a scale subresource.",
            {
                "replicas": _int(
                    "replicas is the actual number of observed instances of the scaled object."
                ),
                "selector": _str(
                    "selector is the label query over pods that should match the replicas count."
                ),
            },
            required=("replicas",),
        ),
    },
    gvk=(("autoscaling", "Scale", "v1"),),
)


# --------------------------------------------------------------------------- hyperion.io/v1alpha1
# A custom resource: its nested schemas are inline (as a CRD's structural schema is).

GOALS: Final = ("cost", "latency", "default")
CONSISTENCY_LEVELS: Final = ("eventual", "strong")


def _check_hwl_container(value: Any, path: str) -> list[FieldError]:
    # The process runtime runs `command`; a container runtime runs `image`.
    image, command = value.get("image"), value.get("command")
    if (isinstance(image, str) and image) or (isinstance(command, list) and command):
        return []
    return [required(_child(path, "image"), "image or command is required")]


def _check_version_range(value: Any, path: str) -> list[FieldError]:
    if not isinstance(value, str):
        return []
    try:
        parse_version_range(value)
    except ValueError as e:
        return [invalid(path, value, str(e))]
    return []


def _check_locality(value: Any, path: str) -> list[FieldError]:
    # "<cloud>[:<region>]", e.g. aws:us-east-1, so placement can score data locality.
    if not isinstance(value, str) or not value:
        return []
    cloud = value.split(":", 1)[0]
    if cloud not in CLOUDS:
        return [
            invalid(
                path, value, f"must be <cloud>[:<region>] with cloud one of {_quote_all(CLOUDS)}"
            )
        ]
    return []


def _inline(description: str, properties: Mapping[str, Schema], **kw: Any) -> Schema:
    return _obj("", description, properties, **kw)


_HWL_CONTAINER = _inline(
    "A process or container to run, one per replica.",
    {
        "args": _strs("Arguments to the entrypoint."),
        "command": _strs(
            "Entrypoint array, run without a shell. With no image, the process "
            "runtime runs it directly on the node."
        ),
        "env": _arr(
            _inline(
                "An environment variable.",
                {
                    "name": _str("Name of the environment variable.", check=_env_name),
                    "value": _str("Value of the environment variable."),
                    "valueFrom": _any("Source for the variable's value (as in a Pod)."),
                },
                required=("name",),
            ),
            "Environment variables to set.",
            list_type="map",
            keys=("name",),
        ),
        "image": _str("Container image name; optional for the process runtime."),
        "name": _str(
            "Name of the container, a DNS label unique within the workload.", check=_dns_label
        ),
        "ports": _arr(
            _inline(
                "A network port the container listens on.",
                {
                    "containerPort": _int("Port number.", check=_port_number),
                    "name": _str("An IANA service name for the port.", check=_port_name),
                    "protocol": _str(
                        "TCP, UDP or SCTP; defaults to TCP.", enum=_PROTOCOLS, default="TCP"
                    ),
                },
                required=("containerPort",),
            ),
            "Ports to expose.",
            list_type="map",
            keys=("containerPort", "protocol"),
        ),
        "resources": _inline(
            'Compute resources per replica: cpu ("2", "500m"), memory ("4Gi"), '
            "nvidia.com/gpu (an integer).",
            {
                "limits": _map(
                    Schema("quantity"), "The most a replica may use.", check=_check_resource_list
                ),
                "requests": _map(
                    Schema("quantity"),
                    "What placement reserves for a replica.",
                    check=_check_resource_list,
                ),
            },
            check=_check_resources,
        ),
        "workingDir": _str("Working directory of the process."),
    },
    required=("name",),
    check=_check_hwl_container,
)
_HWL_SPEC = _inline(
    "The desired state of a HyperionWorkload.",
    {
        "policy": _inline(
            "How the mesh places the replicas.",
            {
                "consistency": _str(
                    "eventual or strong: how replicas agree on state.",
                    enum=CONSISTENCY_LEVELS,
                    default="eventual",
                ),
                "constraints": _inline(
                    "Hard constraints (geographies, clouds, versions) and soft preferences "
                    "(preferSpot).",
                    {
                        "clouds": _arr(
                            _str(enum=CLOUDS),
                            "Clouds a replica may run in (hard).",
                            list_type="set",
                        ),
                        "geographies": _arr(
                            _str(enum=GEOGRAPHIES),
                            "Geographies a replica may run in (hard).",
                            list_type="set",
                        ),
                        "preferSpot": _bool("Prefer spot/preemptible machines (soft)."),
                        "versions": _str(
                            'A range of node software versions, e.g. ">=0.2,<1" (hard).',
                            check=_check_version_range,
                        ),
                    },
                ),
                "data": _inline(
                    "Where the workload's data lives, to place replicas near it.",
                    {
                        "locality": _str(
                            "<cloud>[:<region>] of the data, e.g. aws:us-east-1.",
                            check=_check_locality,
                        ),
                        "source": _str("URL of the data, e.g. s3://bucket/path."),
                    },
                ),
                "goal": _str(
                    "What placement optimizes: cost, latency or default (a balance).",
                    enum=GOALS,
                    default="default",
                ),
                "users": _arr(
                    _inline(
                        "A share of the workload's users.",
                        {
                            "geography": _str("Where these users are.", enum=GEOGRAPHIES),
                            "weight": _num("Their share of traffic, 0 to 1.", minimum=0, maximum=1),
                        },
                        required=("geography", "weight"),
                    ),
                    "Where the users are, to place replicas for latency.",
                    list_type="map",
                    keys=("geography",),
                ),
            },
            default={},
        ),
        "replicas": _int("Number of replicas. Defaults to 1.", minimum=0, default=1),
        "template": _inline(
            "What each replica runs.",
            {
                "metadata": _inline(
                    "Labels and annotations of the replicas.",
                    {
                        "annotations": _map(
                            _str(), "Annotations of the replicas.", check=_check_annotations
                        ),
                        "labels": _map(_str(), "Labels of the replicas.", check=_check_labels),
                    },
                ),
                "spec": _inline(
                    "The processes or containers of a replica.",
                    {
                        "containers": _arr(
                            _HWL_CONTAINER,
                            "The containers of a replica; at least one.",
                            list_type="map",
                            keys=("name",),
                            min_items=1,
                        ),
                        "nodeSelector": _map(
                            _str(), "Labels a node must have.", check=_check_labels
                        ),
                        "runtimeClassName": _str(
                            "The runtime to use (e.g. process, container).", check=_dns_subdomain
                        ),
                    },
                    required=("containers",),
                ),
            },
            required=("spec",),
        ),
    },
    required=("template",),
)
_HWL_STATUS = _inline(
    "The observed state of a HyperionWorkload, written by the mesh.",
    {
        "conditions": _arr(
            _inline(
                "One aspect of the workload's state.",
                {
                    "lastTransitionTime": _str("When the condition last changed.", fmt="date-time"),
                    "message": _str("Human-readable details."),
                    "observedGeneration": _int64(
                        "The generation the condition is about.", minimum=0
                    ),
                    "reason": _str("CamelCase reason for the last transition."),
                    "status": _str("True, False or Unknown.", enum=("True", "False", "Unknown")),
                    "type": _str("Type of the condition, e.g. Ready, Placed."),
                },
                required=("type", "status"),
            ),
            "Latest observations of the workload's state.",
            list_type="map",
            keys=("type",),
        ),
        "observedGeneration": _int64("The generation of the spec last acted on.", minimum=0),
        "phase": _str("Summary: Pending, Placing, Running, Degraded, Failed."),
        "placements": _arr(
            _inline(
                "Where one replica runs.",
                {
                    "cloud": _str("Cloud of the node."),
                    "node": _str("Name of the node."),
                    "pricePerHour": _num("Price of the node in USD per hour.", minimum=0),
                    "region": _str("Region of the node."),
                    "replica": _int("Replica index.", minimum=0),
                    "spot": _bool("Whether the node is a spot machine."),
                },
                required=("replica",),
            ),
            "Where each replica is placed.",
            list_type="map",
            keys=("replica",),
        ),
        "readyReplicas": _int("Replicas that are ready.", minimum=0),
        "replicas": _int("Replicas that exist.", minimum=0),
        "selector": _str("Label selector of the replicas, for the scale subresource."),
    },
)
HYPERION_WORKLOAD = _obj(
    "io.hyperion.v1alpha1.HyperionWorkload",
    "A HyperionWorkload asks the mesh to run replicas of a process or container, placed by "
    "policy (goal, constraints, data locality, users) across clouds and the edge.",
    {
        "apiVersion": _API_VERSION,
        "kind": _KIND,
        "metadata": OBJECT_META,
        "spec": _HWL_SPEC,
        "status": _HWL_STATUS,
    },
    required=("spec",),
    gvk=(("hyperion.io", "HyperionWorkload", "v1alpha1"),),
)

SCHEMAS: Mapping[str, Schema] = MappingProxyType(
    {
        NAMESPACES.key_resource: NAMESPACE,
        PODS.key_resource: POD,
        SERVICES.key_resource: SERVICE,
        NODES.key_resource: NODE,
        EVENTS.key_resource: EVENT,
        DEPLOYMENTS.key_resource: DEPLOYMENT,
        STATEFULSETS.key_resource: STATEFUL_SET,
        JOBS.key_resource: JOB,
        HYPERION_WORKLOADS.key_resource: HYPERION_WORKLOAD,
    }
)
assert set(SCHEMAS) == {r.key_resource for r in RESOURCES}


def schema_for(rt: ResourceType) -> Schema | None:
    """The schema of a served resource type (None for an unknown type)."""
    return SCHEMAS.get(rt.key_resource)


# --------------------------------------------------------------------------- structural walk
# Theory of operation: the walk follows the schema, never the value, so its depth is that
# of the schema (finite, no cycles); open subtrees ("any", preserve_unknown) are not
# entered. A value of the wrong type stops the walk at that field with one error.

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


def _number_text(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else str(n)


def _is_blank(v: Any) -> bool:
    return v is None or v == "" or (isinstance(v, list | dict) and not v)


def _list_key(item: Any, node: Schema) -> Any:
    """The list-map key of an item: its key fields (defaults filled), or None."""
    if not isinstance(item, dict) or node.items is None:
        return None
    values = []
    for k in node.list_map_keys:
        v = item.get(k)
        if v is None:
            sub = node.items.child(k)
            v = sub.default if sub is not None and sub.has_default else None
        if v is None or isinstance(v, dict | list):
            return None
        values.append((k, v))
    return tuple(values)


class _Walker:
    def __init__(self, custom: bool) -> None:
        self.custom = custom  # CRD semantics: "" is a value like any other
        self.errors: list[FieldError] = []

    def walk(self, node: Schema, value: Any, path: str) -> None:
        if value is None:
            return  # null is "not set", as when Kubernetes decodes into a pointer
        t = node.type
        errs = self.errors
        if t == "object":
            if not isinstance(value, dict):
                errs.append(type_invalid(path, value, "must be of type object"))
                return
            self._object(node, value, path)
        elif t == "array":
            if not isinstance(value, list):
                errs.append(type_invalid(path, value, "must be of type array"))
                return
            self._array(node, value, path)
        elif t == "string":
            if not isinstance(value, str):
                errs.append(type_invalid(path, value, "must be of type string"))
                return
            if node.enum and value not in node.enum and (value or self.custom):
                errs.append(not_supported(path, value, node.enum))
        elif t in ("integer", "number"):
            ok = _is_int(value) if t == "integer" else _is_number(value)
            if not ok or (isinstance(value, float) and not math.isfinite(value)):
                errs.append(type_invalid(path, value, f"must be of type {t}"))
                return
            self._bounds(node, value, path)
        elif t == "boolean":
            if not isinstance(value, bool):
                errs.append(type_invalid(path, value, "must be of type boolean"))
                return
        elif t == "quantity":
            if not (isinstance(value, str) or _is_number(value)):
                errs.append(type_invalid(path, value, "must be of type string or number"))
                return
            if quantity_value(value) is None:
                errs.append(invalid(path, value, _QUANTITY_DETAIL))
                return
        elif t == "int-or-string" and not (isinstance(value, str) or _is_int(value)):
            errs.append(type_invalid(path, value, "must be of type integer or string"))
            return
        if node.check is not None:
            errs.extend(node.check(value, path))

    def _bounds(self, node: Schema, value: float, path: str) -> None:
        lo, hi = _INT32 if node.format == "int32" else _INT64
        if node.type == "integer" and not lo <= value <= hi:
            self.errors.append(invalid(path, value, f"must be between {lo} and {hi}, inclusive"))
        elif node.minimum is not None and value < node.minimum:
            self.errors.append(
                invalid(
                    path, value, f"must be greater than or equal to {_number_text(node.minimum)}"
                )
            )
        elif node.maximum is not None and value > node.maximum:
            self.errors.append(
                invalid(path, value, f"must be less than or equal to {_number_text(node.maximum)}")
            )

    def _object(self, node: Schema, value: dict[Any, Any], path: str) -> None:
        props = node.properties
        if props is not None:
            for name in node.required:
                v = value.get(name)
                if (
                    v is None
                    or (v == "" and not self.custom)
                    or (isinstance(v, list) and not v and (props[name].min_items or 0) > 0)
                ):
                    self.errors.append(required(_child(path, name)))
        for k, v in value.items():
            if props is not None and k in props:
                self.walk(props[k], v, _child(path, k))
            elif node.additional is not None:
                self.walk(node.additional, v, _key(path, k))

    def _array(self, node: Schema, value: list[Any], path: str) -> None:
        if node.min_items and 0 < len(value) < node.min_items:
            self.errors.append(
                FieldError(
                    TOO_MANY,
                    path,
                    f"Too few: {len(value)}: must have at least {node.min_items} items",
                )
            )
        if node.items is not None:
            for i, v in enumerate(value):
                self.walk(node.items, v, _index(path, i))
        if node.list_type == "map" and node.list_map_keys:
            seen: set[Any] = set()
            for i, item in enumerate(value):
                key = _list_key(item, node)
                if key is None:
                    continue
                try:
                    new = key not in seen
                except TypeError:  # an unhashable key value: reported by its own type check
                    continue
                if not new:
                    if len(key) == 1:
                        self.errors.append(duplicate(_child(_index(path, i), key[0][0]), key[0][1]))
                    else:
                        self.errors.append(duplicate(_index(path, i), dict(key)))
                seen.add(key)
        elif node.list_type == "set":
            seen_values: list[Any] = []
            for i, v in enumerate(value):
                if isinstance(v, dict | list):
                    continue
                if any(json_equal(v, s) for s in seen_values):
                    self.errors.append(duplicate(_index(path, i), v))
                else:
                    seen_values.append(v)


# --------------------------------------------------------------------------- label selectors


def label_selector_matches(selector: Any, labels: Any) -> bool:
    """Whether a ``LabelSelector`` (matchLabels, matchExpressions) selects ``labels``.

    An empty selector selects everything; a malformed one nothing.
    """
    if not isinstance(selector, dict):
        return False
    labels = labels if isinstance(labels, dict) else {}
    match = selector.get("matchLabels") or {}
    if not isinstance(match, dict):
        return False
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    exprs = selector.get("matchExpressions") or []
    if not isinstance(exprs, list):
        return False
    for e in exprs:
        if not isinstance(e, dict):
            return False
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if not isinstance(values, list):
            return False
        present = key in labels if isinstance(key, str) else False
        if op == "In":
            ok = present and labels[key] in values
        elif op == "NotIn":
            ok = not present or labels[key] not in values
        elif op == "Exists":
            ok = present
        elif op == "DoesNotExist":
            ok = not present
        else:
            return False
        if not ok:
            return False
    return True


def _is_empty_selector(selector: Any) -> bool:
    return (
        isinstance(selector, dict)
        and not selector.get("matchLabels")
        and not selector.get("matchExpressions")
    )


# --------------------------------------------------------------------------- checks per kind


def _get(obj: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(p)
    return obj


def _dicts(v: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    if isinstance(v, list):
        for i, item in enumerate(v):
            if isinstance(item, dict):
                yield i, item


_NAME_CHECKS: Mapping[str, NameCheck] = MappingProxyType(
    {
        NAMESPACES.key_resource: NAME_DNS_LABEL,
        SERVICES.key_resource: NAME_DNS1035_LABEL,
        STATEFULSETS.key_resource: NAME_DNS_LABEL,
    }
)


def _validate_meta(rt: ResourceType, meta: Any, errs: list[FieldError]) -> None:
    if meta is None:
        errs.append(required("metadata.name", "name or generateName is required"))
        return
    if not isinstance(meta, dict):
        return  # reported by the structural walk
    name_ok = _NAME_CHECKS.get(rt.key_resource, NAME_DNS_SUBDOMAIN)
    name, generate = meta.get("name"), meta.get("generateName")
    if isinstance(generate, str) and generate:
        errs.extend(invalid("metadata.generateName", generate, m) for m in name_ok(generate, True))
    if name is None or name == "":
        if not (isinstance(generate, str) and generate):
            errs.append(required("metadata.name", "name or generateName is required"))
    elif isinstance(name, str):
        errs.extend(invalid("metadata.name", name, m) for m in name_ok(name, False))
    ns = meta.get("namespace")
    if rt.namespaced:
        if ns is None or ns == "":
            errs.append(required("metadata.namespace"))
        elif isinstance(ns, str):
            errs.extend(invalid("metadata.namespace", ns, m) for m in NAME_DNS_LABEL(ns, False))
    elif ns:
        errs.append(forbidden("metadata.namespace", "not allowed on this type"))
    controllers = [
        f"{r.get('kind')}/{r.get('name')}"
        for _, r in _dicts(meta.get("ownerReferences"))
        if r.get("controller") is True
    ]
    if len(controllers) > 1:
        errs.append(
            invalid(
                "metadata.ownerReferences",
                meta.get("ownerReferences"),
                'Only one reference can have Controller set to true. Found "true" in '
                f"references for {controllers[0]} and {controllers[1]}",
            )
        )
    for i, r in _dicts(meta.get("ownerReferences")):
        if r.get("apiVersion") == "v1" and r.get("kind") == "Event":
            errs.append(
                invalid(
                    _index("metadata.ownerReferences", i),
                    r,
                    "/v1, Kind=Event is disallowed from being an owner",
                )
            )


def _validate_containers(
    spec: dict[str, Any], path: str, errs: list[FieldError], *, need_image: bool
) -> None:
    volumes = {v.get("name") for _, v in _dicts(spec.get("volumes"))}
    names: dict[Any, str] = {}
    port_names: set[str] = set()
    for field_name in ("initContainers", "containers"):
        lpath = _child(path, field_name)
        for i, c in _dicts(spec.get(field_name)):
            cpath = _index(lpath, i)
            name = c.get("name")
            if isinstance(name, str) and name:
                if name in names and names[name] != field_name:
                    errs.append(duplicate(_child(cpath, "name"), name))
                names.setdefault(name, field_name)
            image = c.get("image")
            if need_image and (image is None or image == ""):
                errs.append(required(_child(cpath, "image")))
            elif isinstance(image, str) and image != image.strip():
                errs.append(
                    invalid(
                        _child(cpath, "image"),
                        image,
                        "must not have leading or trailing whitespace",
                    )
                )
            for j, port in _dicts(c.get("ports")):
                pname = port.get("name")
                if isinstance(pname, str) and pname:
                    if pname in port_names:
                        errs.append(
                            duplicate(_child(_index(_child(cpath, "ports"), j), "name"), pname)
                        )
                    port_names.add(pname)
            for j, m in _dicts(c.get("volumeMounts")):
                vname = m.get("name")
                if isinstance(vname, str) and vname and vname not in volumes:
                    errs.append(
                        not_found(_child(_index(_child(cpath, "volumeMounts"), j), "name"), vname)
                    )


def _validate_pod_spec(spec: Any, path: str, errs: list[FieldError]) -> None:
    if not isinstance(spec, dict):
        return
    _validate_containers(spec, path, errs, need_image=True)
    for i, t in _dicts(spec.get("tolerations")):
        tpath = _index(_child(path, "tolerations"), i)
        op, key, value = t.get("operator"), t.get("key"), t.get("value")
        if op == "Exists" and isinstance(value, str) and value:
            errs.append(
                invalid(
                    _child(tpath, "operator"),
                    value,
                    "value must be empty when `operator` is 'Exists'",
                )
            )
        if (key is None or key == "") and op != "Exists":
            errs.append(
                invalid(
                    _child(tpath, "operator"),
                    op or "",
                    "operator must be Exists "
                    'when `key` is empty, which means "match all values and all '
                    'keys"',
                )
            )
        errs.extend(_qualified_name(key, _child(tpath, "key")))


def _validate_pod_template(
    template: Any,
    path: str,
    errs: list[FieldError],
    *,
    restart_policies: tuple[str, ...],
) -> None:
    if not isinstance(template, dict):
        return
    spec = template.get("spec")
    spath = _child(path, "spec")
    if spec is None:
        errs.append(required(spath))
        return
    _validate_pod_spec(spec, spath, errs)
    if not isinstance(spec, dict):
        return
    policy = spec.get("restartPolicy")
    ppath = _child(spath, "restartPolicy")
    if policy is None or policy == "":
        if restart_policies != ("Always",):
            errs.append(required(ppath, f"valid values: {_quote_all(restart_policies)}"))
    elif isinstance(policy, str) and policy not in restart_policies:
        errs.append(not_supported(ppath, policy, restart_policies))


def _validate_selector_and_template(
    spec: dict[str, Any], errs: list[FieldError], kind: str
) -> None:
    # A missing selector is the structural walk's "Required value" (or, for a job, is
    # generated); here: not empty, and it must select the template's labels.
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        return
    if _is_empty_selector(selector):
        errs.append(invalid("spec.selector", selector, f"empty selector is invalid for {kind}"))
        return
    labels = _get(spec, "template", "metadata", "labels")
    if isinstance(spec.get("template"), dict) and not label_selector_matches(selector, labels):
        errs.append(
            invalid(
                "spec.template.metadata.labels",
                labels if labels is not None else {},
                "`selector` does not match template `labels`",
            )
        )


def _validate_pod(obj: dict[str, Any], errs: list[FieldError]) -> None:
    _validate_pod_spec(obj.get("spec"), "spec", errs)
    if obj.get("spec") is None:
        errs.append(required("spec.containers"))


def _validate_service(obj: dict[str, Any], errs: list[FieldError]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        if spec is None:
            errs.append(required("spec.ports"))
        return
    stype = spec.get("type") or "ClusterIP"
    ports = spec.get("ports")
    if stype == "ExternalName":
        name = spec.get("externalName")
        if name is None or name == "":
            errs.append(required("spec.externalName"))
        elif isinstance(name, str):
            errs.extend(
                invalid("spec.externalName", name, m)
                for m in is_dns1123_subdomain(name.rstrip("."))
            )
    elif spec.get("clusterIP") != "None" and (ports is None or ports == []):
        errs.append(required("spec.ports"))
    items = list(_dicts(ports))
    names: set[Any] = set()
    for i, p in items:
        ppath = _index("spec.ports", i)
        name = p.get("name")
        if len(items) > 1 and (name is None or name == ""):
            errs.append(required(_child(ppath, "name")))
        elif isinstance(name, str) and name:
            if name in names:
                errs.append(duplicate(_child(ppath, "name"), name))
            names.add(name)
        node_port = p.get("nodePort")
        if _is_int(node_port) and node_port != 0 and stype not in ("NodePort", "LoadBalancer"):
            errs.append(
                forbidden(_child(ppath, "nodePort"), f"may not be used when `type` is '{stype}'")
            )


def _validate_deployment(obj: dict[str, Any], errs: list[FieldError]) -> None:
    spec = obj.get("spec")
    if spec is None:
        errs.append(required("spec.selector"))
        errs.append(required("spec.template"))
        return
    if not isinstance(spec, dict):
        return
    _validate_selector_and_template(spec, errs, "deployment")
    _validate_pod_template(
        spec.get("template"), "spec.template", errs, restart_policies=("Always",)
    )
    strategy = spec.get("strategy")
    if isinstance(strategy, dict):
        stype, rolling = strategy.get("type"), strategy.get("rollingUpdate")
        if stype == "Recreate" and rolling is not None:
            errs.append(
                forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                )
            )
        elif isinstance(rolling, dict):
            surge, unavailable = rolling.get("maxSurge"), rolling.get("maxUnavailable")
            zero = (0, "0%")
            if (
                surge in zero
                and unavailable in zero
                and not isinstance(surge, bool)
                and (not isinstance(unavailable, bool))
            ):
                errs.append(
                    invalid(
                        "spec.strategy.rollingUpdate.maxUnavailable",
                        unavailable,
                        "may not be 0 when `maxSurge` is 0",
                    )
                )
            if (
                isinstance(unavailable, str)
                and _PERCENT_RE.fullmatch(unavailable)
                and int(unavailable[:-1]) > 100
            ):
                errs.append(
                    invalid(
                        "spec.strategy.rollingUpdate.maxUnavailable",
                        unavailable,
                        "must not be greater than 100%",
                    )
                )
    deadline, min_ready = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds", 0)
    if isinstance(deadline, int) and isinstance(min_ready, int) and deadline <= min_ready:
        errs.append(
            invalid(
                "spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"
            )
        )


def _validate_statefulset(obj: dict[str, Any], errs: list[FieldError]) -> None:
    spec = obj.get("spec")
    if spec is None:
        errs.append(required("spec.selector"))
        errs.append(required("spec.template"))
        return
    if not isinstance(spec, dict):
        return
    _validate_selector_and_template(spec, errs, "statefulset")
    _validate_pod_template(
        spec.get("template"), "spec.template", errs, restart_policies=("Always",)
    )
    strategy = spec.get("updateStrategy")
    if (
        isinstance(strategy, dict)
        and strategy.get("type") == "OnDelete"
        and strategy.get("rollingUpdate") is not None
    ):
        errs.append(
            invalid(
                "spec.updateStrategy.rollingUpdate",
                strategy.get("rollingUpdate"),
                "only allowed for updateStrategy 'RollingUpdate'",
            )
        )
    service = spec.get("serviceName")
    if isinstance(service, str) and service:
        errs.extend(invalid("spec.serviceName", service, m) for m in is_dns1123_label(service))


def _validate_job(obj: dict[str, Any], errs: list[FieldError]) -> None:
    spec = obj.get("spec")
    if spec is None:
        errs.append(required("spec.template"))
        return
    if not isinstance(spec, dict):
        return
    if spec.get("manualSelector") is True and spec.get("selector") is None:
        errs.append(required("spec.selector"))
    _validate_selector_and_template(spec, errs, "job")
    _validate_pod_template(
        spec.get("template"), "spec.template", errs, restart_policies=("OnFailure", "Never")
    )
    if spec.get("completionMode") == "Indexed" and spec.get("completions") is None:
        errs.append(required("spec.completions", "when completion mode is Indexed"))


def _validate_event(obj: dict[str, Any], errs: list[FieldError]) -> None:
    ns = _get(obj, "metadata", "namespace")
    involved = obj.get("involvedObject")
    if not isinstance(involved, dict) or not isinstance(ns, str):
        return
    ins = involved.get("namespace")
    if ins is None or ins == "":
        if ns not in ("", "default"):
            errs.append(
                invalid("involvedObject.namespace", ins or "", "does not match event.namespace")
            )
    elif ins != ns:
        errs.append(invalid("involvedObject.namespace", ins, "does not match event.namespace"))


def _validate_hwl(obj: dict[str, Any], errs: list[FieldError]) -> None:
    spec = _get(obj, "spec", "template", "spec")
    if isinstance(spec, dict):
        _validate_containers(spec, "spec.template.spec", errs, need_image=False)


_KIND_CHECKS: Mapping[str, Callable[[dict[str, Any], list[FieldError]], None]] = MappingProxyType(
    {
        PODS.key_resource: _validate_pod,
        SERVICES.key_resource: _validate_service,
        DEPLOYMENTS.key_resource: _validate_deployment,
        STATEFULSETS.key_resource: _validate_statefulset,
        JOBS.key_resource: _validate_job,
        EVENTS.key_resource: _validate_event,
        HYPERION_WORKLOADS.key_resource: _validate_hwl,
    }
)


def _too_deep(obj: Any) -> list[FieldError]:
    if nesting_depth(obj) > MAX_DEPTH:
        return [
            FieldError(INVALID, "", f"Invalid value: object nesting exceeds {MAX_DEPTH} levels")
        ]
    return []


def validate(rt: ResourceType, obj: Any) -> list[FieldError]:
    """The validation errors of ``obj`` as a ``rt`` to create (empty: valid).

    Structural checks from the schema (types, required fields, enums, bounds, list-map
    key uniqueness, formats), then the kind's semantic checks as the Kubernetes API
    server makes them. Expects defaults applied (``apply_defaults``) as the server
    does before validating. Never raises.
    """
    node = schema_for(rt)
    if node is None:
        return [FieldError(INVALID, "", f"Invalid value: {rt.kind}: not a served kind")]
    if not isinstance(obj, dict):
        return [type_invalid("", obj, "must be of type object")]
    deep = _too_deep(obj)
    if deep:
        return deep
    walker = _Walker(custom=rt.is_custom)
    walker.walk(node, obj, "")
    errs = walker.errors
    _validate_meta(rt, obj.get("metadata"), errs)
    check = _KIND_CHECKS.get(rt.key_resource)
    if check is not None:
        check(obj, errs)
    return list(dict.fromkeys(errs))


_POD_MUTABLE_MESSAGE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)
_STATEFULSET_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def _immutable(errs: list[FieldError], path: str, new: Any, old: Any) -> None:
    if not json_equal(new, old):
        errs.append(invalid(path, new if new is not None else "", "field is immutable"))


def validate_update(rt: ResourceType, new: Any, old: Any) -> list[FieldError]:
    """The validation errors of replacing ``old`` by ``new`` (both full objects).

    ``validate(rt, new)`` plus what Kubernetes forbids changing: name, namespace, uid
    and creationTimestamp; a Deployment's, StatefulSet's or Job's selector; a Job's
    template, completions and completion mode; StatefulSet spec fields other than
    replicas, ordinals, template, updateStrategy, revisionHistoryLimit,
    persistentVolumeClaimRetentionPolicy and minReadySeconds; a Service's clusterIP once
    set; a Pod's spec except images, activeDeadlineSeconds, tolerations and
    terminationGracePeriodSeconds. Never raises.
    """
    errs = validate(rt, new)
    if not (isinstance(new, dict) and isinstance(old, dict)) or nesting_depth(old) > MAX_DEPTH:
        return errs
    for f in ("name", "namespace", "uid", "creationTimestamp"):
        nv, ov = _get(new, "metadata", f), _get(old, "metadata", f)
        if ov not in (None, "") and not json_equal(nv, ov):
            errs.append(
                invalid(f"metadata.{f}", nv if nv is not None else "", "field is immutable")
            )
    nspec, ospec = new.get("spec"), old.get("spec")
    if not (isinstance(nspec, dict) and isinstance(ospec, dict)):
        return errs
    key = rt.key_resource
    if key in (DEPLOYMENTS.key_resource, JOBS.key_resource):
        _immutable(errs, "spec.selector", nspec.get("selector"), ospec.get("selector"))
    if key == JOBS.key_resource:
        if ospec.get("suspend") is not True:
            _immutable(errs, "spec.template", nspec.get("template"), ospec.get("template"))
        _immutable(errs, "spec.completions", nspec.get("completions"), ospec.get("completions"))
        _immutable(
            errs, "spec.completionMode", nspec.get("completionMode"), ospec.get("completionMode")
        )
    elif key == STATEFULSETS.key_resource:
        strip_new = {k: v for k, v in nspec.items() if k not in _STATEFULSET_MUTABLE}
        strip_old = {k: v for k, v in ospec.items() if k not in _STATEFULSET_MUTABLE}
        if not json_equal(strip_new, strip_old):
            errs.append(
                forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than "
                    + ", ".join(f"'{f}'" for f in _STATEFULSET_MUTABLE[:-1])
                    + f" and '{_STATEFULSET_MUTABLE[-1]}' are forbidden",
                )
            )
    elif key == SERVICES.key_resource:
        oip = ospec.get("clusterIP")
        if oip not in (None, "") and not json_equal(nspec.get("clusterIP"), oip):
            errs.append(
                invalid("spec.clusterIP", nspec.get("clusterIP") or "", "field is immutable")
            )
    elif key == PODS.key_resource and not json_equal(_pod_masked(nspec, ospec), ospec):
        errs.append(forbidden("spec", _POD_MUTABLE_MESSAGE))
    return list(dict.fromkeys(errs))


def _pod_masked(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """``new`` with the fields a pod update may change set back to ``old``'s values."""
    masked = copy_json(new)
    for f in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
        if f in old:
            masked[f] = copy_json(old[f])
        else:
            masked.pop(f, None)
    for f in ("containers", "initContainers"):
        olds, news = old.get(f), masked.get(f)
        if isinstance(olds, list) and isinstance(news, list) and len(olds) == len(news):
            for o, n in zip(olds, news, strict=True):
                if isinstance(o, dict) and isinstance(n, dict):
                    if "image" in o:
                        n["image"] = o["image"]
                    else:
                        n.pop("image", None)
    assert isinstance(masked, dict)
    return masked


# --------------------------------------------------------------------------- unknown fields


def _unknown(node: Schema, value: Any, path: str, out: list[str]) -> None:
    t = node.type
    if t == "object" and isinstance(value, dict):
        props = node.properties
        for k, v in value.items():
            if props is not None and k in props:
                _unknown(props[k], v, _child(path, str(k)), out)
            elif node.additional is not None:
                _unknown(node.additional, v, _key(path, k), out)
            elif not node.preserve_unknown:
                out.append(_child(path, str(k)))
    elif t == "array" and isinstance(value, list) and node.items is not None:
        for i, v in enumerate(value):
            _unknown(node.items, v, _index(path, i), out)


def unknown_fields(rt: ResourceType, obj: Any) -> list[str]:
    """Paths of the fields of ``obj`` its schema does not know, in document order.

    ``spec.foo``, ``spec.template.spec.containers[0].bar``: what ``fieldValidation=
    Strict`` rejects (``strict_error_message``) and ``Warn`` reports. Subtrees the
    schema leaves open report nothing; values of the wrong type are ``validate``'s
    business. Never raises.
    """
    node = schema_for(rt)
    out: list[str] = []
    if node is not None and isinstance(obj, dict):
        _unknown(node, obj, "", out)
    return out


def _prune(node: Schema, value: Any) -> Any:
    t = node.type
    if t == "object" and isinstance(value, dict):
        props = node.properties
        out = {}
        for k, v in value.items():
            if props is not None and k in props:
                out[k] = _prune(props[k], v)
            elif node.additional is not None:
                out[k] = _prune(node.additional, v)
            elif node.preserve_unknown:
                out[k] = copy_json(v)
        return out
    if t == "array" and isinstance(value, list) and node.items is not None:
        return [_prune(node.items, v) for v in value]
    return copy_json(value)


def prune(rt: ResourceType, obj: Any) -> Any:
    """A copy of ``obj`` without the fields ``unknown_fields`` reports.

    What the API server does with unknown fields when validation is ``Ignore`` (and
    always for a structural CRD). The input is not modified. Never raises.
    """
    node = schema_for(rt)
    if node is None:
        return copy_json(obj)
    return _prune(node, obj)


# --------------------------------------------------------------------------- defaults


def _set_default(d: dict[str, Any], key: str, value: Any) -> None:
    if d.get(key) is None or d.get(key) == "":
        d[key] = value


def _schema_defaults(node: Schema, value: Any) -> None:
    """Fill the ``default`` values of the schema in place (structural CRD defaulting)."""
    if node.type == "object" and isinstance(value, dict):
        if node.properties is not None:
            for k, sub in node.properties.items():
                if sub.has_default and value.get(k) is None:
                    value[k] = copy_json(sub.default)
            for k, v in value.items():
                prop = node.properties.get(k) if isinstance(k, str) else None
                if prop is not None:
                    _schema_defaults(prop, v)
        elif node.additional is not None:
            for v in value.values():
                _schema_defaults(node.additional, v)
    elif node.type == "array" and isinstance(value, list) and node.items is not None:
        for v in value:
            _schema_defaults(node.items, v)


def image_pull_policy(image: Any) -> str:
    """Kubernetes' default pull policy: Always for ``:latest`` or no tag, else IfNotPresent."""
    if not isinstance(image, str) or not image:
        return "IfNotPresent"
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    if not tag and "@" in image:
        return "IfNotPresent"  # pinned by digest
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for k, v in (
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ):
        _set_default(probe, k, v)
    _default_http_get(probe.get("httpGet"))


def _default_http_get(action: Any) -> None:
    if isinstance(action, dict):
        _set_default(action, "path", "/")
        _set_default(action, "scheme", "HTTP")


def _default_container(c: dict[str, Any]) -> None:
    _set_default(c, "imagePullPolicy", image_pull_policy(c.get("image")))
    _set_default(c, "terminationMessagePath", "/dev/termination-log")
    _set_default(c, "terminationMessagePolicy", "File")
    if c.get("resources") is None:
        c["resources"] = {}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(probe))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if isinstance(lifecycle.get(hook), dict):
                _default_http_get(lifecycle[hook].get("httpGet"))
    for _, env in _dicts(c.get("env")):
        field_ref = _get(env, "valueFrom", "fieldRef")
        if isinstance(field_ref, dict):
            _set_default(field_ref, "apiVersion", "v1")


_VOLUME_SOURCE_NAMES = tuple(_VOLUME_SOURCES)
_DEFAULT_MODE = 0o644  # 420, what kubectl shows as defaultMode


def _default_volume(v: dict[str, Any]) -> None:
    if not any(v.get(k) is not None for k in _VOLUME_SOURCE_NAMES):
        v["emptyDir"] = {}
    for source in ("configMap", "secret", "downwardAPI", "projected"):
        if isinstance(v.get(source), dict):
            _set_default(v[source], "defaultMode", _DEFAULT_MODE)
    if isinstance(v.get("hostPath"), dict) and v["hostPath"].get("type") is None:
        v["hostPath"]["type"] = ""
    for _, item in _dicts(_get(v, "downwardAPI", "items")):
        if isinstance(item.get("fieldRef"), dict):
            _set_default(item["fieldRef"], "apiVersion", "v1")


def _default_pod_spec(spec: Any) -> None:
    if not isinstance(spec, dict):
        return
    _set_default(spec, "dnsPolicy", "ClusterFirst")
    _set_default(spec, "restartPolicy", "Always")
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    _set_default(spec, "terminationGracePeriodSeconds", 30)
    _set_default(spec, "schedulerName", "default-scheduler")
    for f in ("initContainers", "containers", "ephemeralContainers"):
        for _, c in _dicts(spec.get(f)):
            _default_container(c)
    for _, v in _dicts(spec.get("volumes")):
        _default_volume(v)


def _default_pod(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    _default_pod_spec(spec)
    if not isinstance(spec, dict):
        return
    _set_default(spec, "enableServiceLinks", True)
    # A pod with limits but no requests requests its limits (SetDefaults_Pod).
    for f in ("initContainers", "containers"):
        for _, c in _dicts(spec.get(f)):
            res = c.get("resources")
            if isinstance(res, dict) and isinstance(res.get("limits"), dict) and res["limits"]:
                requests = res.get("requests")
                if requests is None:
                    requests = res["requests"] = {}
                if isinstance(requests, dict):
                    for name, q in res["limits"].items():
                        if quantity_value(q) is not None:
                            requests.setdefault(name, copy_json(q))


def _default_template(spec: dict[str, Any]) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        _default_pod_spec(template.get("spec"))


def _default_service(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    _set_default(spec, "type", "ClusterIP")
    _set_default(spec, "sessionAffinity", "None")
    stype = spec.get("type")
    for _, p in _dicts(spec.get("ports")):
        if p.get("targetPort") in (None, 0, "") and _is_int(p.get("port")):
            p["targetPort"] = p["port"]
    if stype != "ExternalName":
        _set_default(spec, "internalTrafficPolicy", "Cluster")
    if stype in ("NodePort", "LoadBalancer"):
        _set_default(spec, "externalTrafficPolicy", "Cluster")
    if stype == "LoadBalancer":
        _set_default(spec, "allocateLoadBalancerNodePorts", True)


def _default_namespace(obj: dict[str, Any]) -> None:
    meta, name = obj.get("metadata"), _get(obj, "metadata", "name")
    if isinstance(meta, dict) and isinstance(name, str) and name:
        labels = meta.get("labels")
        if labels is None:
            labels = meta["labels"] = {}
        if isinstance(labels, dict):
            labels["kubernetes.io/metadata.name"] = name
    status = obj.get("status")
    if status is None:
        status = obj["status"] = {}
    if isinstance(status, dict):
        _set_default(status, "phase", "Active")


def _default_node(obj: dict[str, Any]) -> None:
    status = obj.get("status")
    if (
        isinstance(status, dict)
        and isinstance(status.get("capacity"), dict)
        and status.get("allocatable") is None
    ):
        status["allocatable"] = copy_json(status["capacity"])


def _default_deployment(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    _set_default(spec, "replicas", 1)
    strategy = spec.get("strategy")
    if strategy is None:
        strategy = spec["strategy"] = {}
    if isinstance(strategy, dict):
        _set_default(strategy, "type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = strategy.get("rollingUpdate")
            if rolling is None:
                rolling = strategy["rollingUpdate"] = {}
            if isinstance(rolling, dict):
                _set_default(rolling, "maxUnavailable", "25%")
                _set_default(rolling, "maxSurge", "25%")
    _set_default(spec, "revisionHistoryLimit", 10)
    _set_default(spec, "progressDeadlineSeconds", 600)
    _default_template(spec)


def _default_statefulset(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    _set_default(spec, "podManagementPolicy", "OrderedReady")
    strategy = spec.get("updateStrategy")
    if strategy is None:
        strategy = spec["updateStrategy"] = {}
    if isinstance(strategy, dict):
        _set_default(strategy, "type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = strategy.get("rollingUpdate")
            if rolling is None:
                rolling = strategy["rollingUpdate"] = {}
            if isinstance(rolling, dict):
                _set_default(rolling, "partition", 0)
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if retention is None:
        retention = spec["persistentVolumeClaimRetentionPolicy"] = {}
    if isinstance(retention, dict):
        _set_default(retention, "whenDeleted", "Retain")
        _set_default(retention, "whenScaled", "Retain")
    _set_default(spec, "replicas", 1)
    _set_default(spec, "revisionHistoryLimit", 10)
    _default_template(spec)


JOB_UID_LABEL: Final = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL: Final = "batch.kubernetes.io/job-name"


def _default_job(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    _set_default(spec, "parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2**31 - 1 if spec.get("backoffLimitPerIndex") is not None else 6
    _set_default(spec, "completionMode", "NonIndexed")
    _set_default(spec, "suspend", False)
    _set_default(
        spec,
        "podReplacementPolicy",
        "Failed" if spec.get("podFailurePolicy") is not None else "TerminatingOrFailed",
    )
    _default_template(spec)
    _generate_job_selector(obj, spec)
    template_labels = _get(spec, "template", "metadata", "labels")
    meta = obj.get("metadata")
    if isinstance(meta, dict) and isinstance(template_labels, dict) and not meta.get("labels"):
        meta["labels"] = copy_json(template_labels)


def _generate_job_selector(obj: dict[str, Any], spec: dict[str, Any]) -> None:
    # The job registry's PrepareForCreate: unless manualSelector, the job selects its pods
    # by its uid, and the template carries the uid and name labels (legacy names too).
    uid, name = _get(obj, "metadata", "uid"), _get(obj, "metadata", "name")
    if spec.get("manualSelector") is True or not (isinstance(uid, str) and uid):
        return
    template = spec.get("template")
    if not isinstance(template, dict):
        return
    meta = template.get("metadata")
    if meta is None:
        meta = template["metadata"] = {}
    if not isinstance(meta, dict):
        return
    labels = meta.get("labels")
    if labels is None:
        labels = meta["labels"] = {}
    if not isinstance(labels, dict):
        return
    labels.setdefault(JOB_UID_LABEL, uid)
    labels.setdefault("controller-uid", uid)
    if isinstance(name, str) and name:
        labels.setdefault(JOB_NAME_LABEL, name)
        labels.setdefault("job-name", name)
    selector = spec.get("selector")
    if selector is None:
        spec["selector"] = {"matchLabels": {JOB_UID_LABEL: uid}}
    elif isinstance(selector, dict):
        match = selector.get("matchLabels")
        if match is None:
            match = selector["matchLabels"] = {}
        if isinstance(match, dict):
            match.setdefault(JOB_UID_LABEL, uid)


_KIND_DEFAULTS: Mapping[str, Callable[[dict[str, Any]], None]] = MappingProxyType(
    {
        PODS.key_resource: _default_pod,
        SERVICES.key_resource: _default_service,
        NAMESPACES.key_resource: _default_namespace,
        NODES.key_resource: _default_node,
        DEPLOYMENTS.key_resource: _default_deployment,
        STATEFULSETS.key_resource: _default_statefulset,
        JOBS.key_resource: _default_job,
    }
)


def apply_defaults(rt: ResourceType, obj: Any) -> Any:
    """A copy of ``obj`` with the defaults the API server fills in.

    The schema's ``default`` values (the CRD's: ``spec.replicas`` 1, ``policy.goal``
    default, ``policy.consistency`` eventual; port protocols TCP), then the kind's
    ``SetDefaults_*`` as kubectl output shows them: pod specs (restartPolicy,
    dnsPolicy, terminationGracePeriodSeconds, schedulerName, securityContext, container
    imagePullPolicy / terminationMessage* / resources, probe timings, volume modes),
    Deployment (replicas, RollingUpdate 25%/25%, revisionHistoryLimit,
    progressDeadlineSeconds), StatefulSet, Job (completions, parallelism, backoffLimit,
    completionMode, suspend, podReplacementPolicy, and, given ``metadata.uid``, the
    generated selector and pod labels), Service (type, sessionAffinity, targetPort,
    traffic policies), Namespace (the ``kubernetes.io/metadata.name`` label, phase
    Active) and Node (allocatable from capacity). Fields of the wrong type are left
    alone for ``validate`` to report. The input is not modified; never raises.
    """
    out = copy_json(obj)
    node = schema_for(rt)
    if node is None or not isinstance(out, dict) or nesting_depth(out) > MAX_DEPTH:
        return out
    _schema_defaults(node, out)
    fill = _KIND_DEFAULTS.get(rt.key_resource)
    if fill is not None:
        fill(out)
    return out


# --------------------------------------------------------------------------- OpenAPI v3
# One document per group-version, self-contained (every $ref resolves inside it), as
# /openapi/v3/apis/<group>/<version> is. Named schemas become components referenced as
# {"allOf": [{"$ref": ...}]} with the field's extensions beside, as Kubernetes writes
# them: kubectl's strategic-merge patch metadata reads the extensions on the field and
# then follows allOf[0].$ref.

_REF_PREFIX = "#/components/schemas/"
_QUANTITY_PATTERN = (
    "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    "([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$"
)


class _OpenAPIWriter:
    def __init__(self) -> None:
        self.components: dict[str, dict[str, Any]] = {}

    def field(self, node: Schema) -> dict[str, Any]:
        """The schema of a field whose type is ``node`` (a reference if named)."""
        if not node.name:
            return self.inline(node)
        self.component(node)
        out: dict[str, Any] = {"allOf": [{"$ref": _REF_PREFIX + node.name}]}
        if node.type == "object":
            out["default"] = {}
        if node.patch_strategy:
            out["x-kubernetes-patch-strategy"] = node.patch_strategy
        return out

    def component(self, node: Schema) -> None:
        if node.name in self.components:
            return
        self.components[node.name] = {}  # placeholder: no infinite recursion
        self.components[node.name] = self.inline(node, as_component=True)

    def inline(self, node: Schema, *, as_component: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if node.description:
            out["description"] = node.description
        t = node.type
        if t == "object":
            out["type"] = "object"
            if node.properties is not None:
                out["properties"] = {k: self.field(v) for k, v in node.properties.items()}
            if node.additional is not None:
                out["additionalProperties"] = self.field(node.additional)
            if node.preserve_unknown:
                out["x-kubernetes-preserve-unknown-fields"] = True
            if node.map_type:
                out["x-kubernetes-map-type"] = node.map_type
        elif t == "array":
            out["type"] = "array"
            if node.items is not None:
                out["items"] = self.field(node.items)
            if node.list_type:
                out["x-kubernetes-list-type"] = node.list_type
            if node.list_map_keys:
                out["x-kubernetes-list-map-keys"] = list(node.list_map_keys)
            if node.patch_merge_key:
                out["x-kubernetes-patch-merge-key"] = node.patch_merge_key
            if node.patch_strategy:
                out["x-kubernetes-patch-strategy"] = node.patch_strategy
            if node.min_items:
                out["minItems"] = node.min_items
        elif t == "quantity":
            if node.name:
                out["oneOf"] = [{"type": "string"}, {"type": "number"}]
            else:
                out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
                out["pattern"] = _QUANTITY_PATTERN
                out["x-kubernetes-int-or-string"] = True
        elif t == "int-or-string":
            if node.name:
                out["format"] = "int-or-string"
                out["oneOf"] = [{"type": "integer"}, {"type": "string"}]
            else:
                out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
                out["x-kubernetes-int-or-string"] = True
        elif t == "any":
            out["x-kubernetes-preserve-unknown-fields"] = True
        else:
            out["type"] = t
            if node.format:
                out["format"] = node.format
            if node.enum:
                out["enum"] = list(node.enum)
            if node.minimum is not None:
                out["minimum"] = node.minimum
            if node.maximum is not None:
                out["maximum"] = node.maximum
        if node.required:
            out["required"] = list(node.required)
        if node.has_default:
            out["default"] = copy_json(node.default)
        if as_component and node.gvk:
            out["x-kubernetes-group-version-kind"] = [
                {"group": g, "kind": k, "version": v} for g, k, v in node.gvk
            ]
        if not as_component and node.patch_strategy and t == "object":
            out["x-kubernetes-patch-strategy"] = node.patch_strategy
        return out


def _camel(text: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[.\-]", text) if p)


def _query(name: str, description: str, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": type_}}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "description": description,
        "required": True,
        "schema": {"type": "string", "uniqueItems": True},
    }


_PRETTY = _query("pretty", "If 'true', then the output is pretty printed.")
_DRY_RUN = _query(
    "dryRun",
    "When present, indicates that modifications should not be persisted. Valid values are: "
    "All: all dry run stages will be processed",
)
_FIELD_MANAGER = _query(
    "fieldManager",
    "fieldManager is a name associated with the actor or entity that is making these changes.",
)
_FIELD_VALIDATION = _query(
    "fieldValidation",
    "fieldValidation instructs the server on how to handle objects in the request "
    "(POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: Ignore, Warn "
    "(the default) and Strict.",
)
_FORCE = _query(
    "force",
    'Force is going to "force" Apply requests: re-acquire conflicting fields owned by other '
    "people. Force flag must be unset for non-apply patch requests.",
    "boolean",
)
_WRITE_PARAMS = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
_LIST_PARAMS = [
    _query(
        "allowWatchBookmarks",
        'allowWatchBookmarks requests watch events with type "BOOKMARK".',
        "boolean",
    ),
    _query(
        "continue",
        "The continue option should be set when retrieving more results from the server.",
    ),
    _query(
        "fieldSelector",
        "A selector to restrict the list of returned objects by their "
        "fields. Defaults to everything.",
    ),
    _query(
        "labelSelector",
        "A selector to restrict the list of returned objects by their "
        "labels. Defaults to everything.",
    ),
    _query("limit", "limit is a maximum number of responses to return for a list call.", "integer"),
    _query(
        "resourceVersion",
        "resourceVersion sets a constraint on what resource versions a request may be served from.",
    ),
    _query(
        "resourceVersionMatch",
        "resourceVersionMatch determines how resourceVersion is applied to list calls.",
    ),
    _query(
        "sendInitialEvents",
        "`sendInitialEvents=true` may be set together with `watch=true`.",
        "boolean",
    ),
    _query("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
    _query(
        "watch",
        "Watch for changes to the described resources and return them as a stream "
        "of add, update, and remove notifications.",
        "boolean",
    ),
]
_DELETE_PARAMS = [
    _DRY_RUN,
    _query(
        "gracePeriodSeconds",
        "The duration in seconds before the object should be deleted.",
        "integer",
    ),
    _query(
        "ignoreStoreReadErrorWithClusterBreakingPotential",
        "if set to true, it will trigger "
        "an unsafe deletion of the resource in case the normal deletion flow fails with a "
        "corrupt object error.",
        "boolean",
    ),
    _query("orphanDependents", "Deprecated: please use the PropagationPolicy.", "boolean"),
    _query("propagationPolicy", "Whether and how garbage collection will be performed."),
]
_PATCH_TYPES_BUILTIN = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
# A custom resource takes no strategic merge patch: kubectl sees that here and sends a
# JSON merge patch instead (kubectl apply's gvkSupportsPatchOpenAPIV3).
_PATCH_TYPES_CUSTOM = _PATCH_TYPES_BUILTIN[:3]
_MEDIA = ("application/json", "application/yaml")


def _content(ref: str) -> dict[str, Any]:
    return {m: {"schema": {"$ref": _REF_PREFIX + ref}} for m in _MEDIA}


def _response(ref: str, *codes: tuple[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        code: {"description": text, "content": _content(ref)} for code, text in codes
    }
    out["401"] = {"description": "Unauthorized"}
    return out


_OK = ("200", "OK")


def _op(
    rt: ResourceType,
    verb: str,
    action: str,
    kind_name: str,
    description: str,
    *,
    gvk: tuple[str, str, str] | None = None,
    scope: str = "",
    suffix: str = "",
) -> dict[str, Any]:
    group, kind, version = gvk or (rt.group, rt.kind, rt.version)
    tag_group = _camel(rt.group) if rt.group else "Core"
    op_id = f"{verb}{tag_group}{_camel(rt.version)}{scope}{kind_name}{suffix}"
    return {
        "tags": [f"{tag_group[:1].lower()}{tag_group[1:]}_{rt.version}"],
        "description": description,
        "operationId": op_id,
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": group, "kind": kind, "version": version},
    }


def _resource_paths(rt: ResourceType, node: Schema, paths: dict[str, Any]) -> None:
    kind, ref, list_ref = rt.kind, node.name, node.name + "List"
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    scope = "Namespaced" if rt.namespaced else ""
    base = (
        f"{prefix}/namespaces/{{namespace}}/{rt.plural}"
        if rt.namespaced
        else (f"{prefix}/{rt.plural}")
    )
    ns_param = (
        [_path_param("namespace", "object name and auth scope, such as for teams and projects")]
        if rt.namespaced
        else []
    )
    name_param = _path_param("name", f"name of the {kind}")
    patch_types = _PATCH_TYPES_CUSTOM if rt.is_custom else _PATCH_TYPES_BUILTIN
    patch_body = {
        "content": {t: {"schema": {"$ref": _REF_PREFIX + _META + "Patch"}} for t in patch_types},
        "required": True,
    }

    def body(r: str) -> dict[str, Any]:
        return {"content": {"*/*": {"schema": {"$ref": _REF_PREFIX + r}}}, "required": True}

    collection: dict[str, Any] = {"parameters": [*ns_param, _PRETTY]}
    collection["get"] = {
        **_op(rt, "list", "list", kind, f"list or watch objects of kind {kind}", scope=scope),
        "parameters": _LIST_PARAMS,
        "responses": _response(list_ref, _OK),
    }
    if "create" in rt.verbs:
        collection["post"] = {
            **_op(rt, "create", "post", kind, f"create a {kind}", scope=scope),
            "parameters": _WRITE_PARAMS,
            "requestBody": body(ref),
            "responses": _response(ref, _OK, ("201", "Created"), ("202", "Accepted")),
        }
    if "deletecollection" in rt.verbs:
        collection["delete"] = {
            **_op(
                rt,
                "deletecollection",
                "deletecollection",
                kind,
                f"delete collection of {kind}",
                scope=scope,
                suffix="",
            ),
            "parameters": _DELETE_PARAMS + _LIST_PARAMS,
            "requestBody": {
                "content": {"*/*": {"schema": {"$ref": _REF_PREFIX + _META + "DeleteOptions"}}}
            },
            "responses": _response(_META + "Status", _OK),
        }
        collection["delete"]["operationId"] = (
            f"deleteCollection{collection['delete']['operationId'][len('deletecollection') :]}"
        )
    paths[base] = collection

    item: dict[str, Any] = {"parameters": [name_param, *ns_param, _PRETTY]}
    item["get"] = {
        **_op(rt, "read", "get", kind, f"read the specified {kind}", scope=scope),
        "responses": _response(ref, _OK),
    }
    item["put"] = {
        **_op(rt, "replace", "put", kind, f"replace the specified {kind}", scope=scope),
        "parameters": _WRITE_PARAMS,
        "requestBody": body(ref),
        "responses": _response(ref, _OK, ("201", "Created")),
    }
    item["patch"] = {
        **_op(rt, "patch", "patch", kind, f"partially update the specified {kind}", scope=scope),
        "parameters": [*_WRITE_PARAMS, _FORCE],
        "requestBody": patch_body,
        "responses": _response(ref, _OK, ("201", "Created")),
    }
    item["delete"] = {
        **_op(rt, "delete", "delete", kind, f"delete a {kind}", scope=scope),
        "parameters": _DELETE_PARAMS,
        "requestBody": {
            "content": {"*/*": {"schema": {"$ref": _REF_PREFIX + _META + "DeleteOptions"}}}
        },
        "responses": _response(_META + "Status", _OK, ("202", "Accepted")),
    }
    paths[f"{base}/{{name}}"] = item

    for sub in rt.subresources:
        sub_path = f"{base}/{{name}}/{sub}"
        params = [name_param, *ns_param, _PRETTY]
        if sub == "log":
            paths[sub_path] = {
                "parameters": params,
                "get": {
                    **_op(
                        rt,
                        "read",
                        "get",
                        kind,
                        f"read log of the specified {kind}",
                        scope=scope,
                        suffix="Log",
                    ),
                    "parameters": [
                        _query("container", "The container for which to stream logs."),
                        _query("follow", "Follow the log stream of the pod.", "boolean"),
                        _query(
                            "limitBytes",
                            "If set, the number of bytes to read from the "
                            "server before terminating the log output.",
                            "integer",
                        ),
                        _query("previous", "Return previous terminated container logs.", "boolean"),
                        _query(
                            "sinceSeconds",
                            "A relative time in seconds before the current "
                            "time from which to show logs.",
                            "integer",
                        ),
                        _query("sinceTime", "An RFC3339 timestamp from which to show logs."),
                        _query(
                            "tailLines",
                            "If set, the number of lines from the end of the logs to show.",
                            "integer",
                        ),
                        _query(
                            "timestamps",
                            "If true, add an RFC3339 timestamp at the "
                            "beginning of every line of log output.",
                            "boolean",
                        ),
                    ],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "401": {"description": "Unauthorized"},
                    },
                },
            }
            continue
        sref = SCALE.name if sub == "scale" else ref
        sgvk = ("autoscaling", "Scale", "v1") if sub == "scale" else None
        suffix = _camel(sub)
        paths[sub_path] = {
            "parameters": params,
            "get": {
                **_op(
                    rt,
                    "read",
                    "get",
                    kind,
                    f"read {sub} of the specified {kind}",
                    gvk=sgvk,
                    scope=scope,
                    suffix=suffix,
                ),
                "responses": _response(sref, _OK),
            },
            "put": {
                **_op(
                    rt,
                    "replace",
                    "put",
                    kind,
                    f"replace {sub} of the specified {kind}",
                    gvk=sgvk,
                    scope=scope,
                    suffix=suffix,
                ),
                "parameters": _WRITE_PARAMS,
                "requestBody": body(sref),
                "responses": _response(sref, _OK, ("201", "Created")),
            },
            "patch": {
                **_op(
                    rt,
                    "patch",
                    "patch",
                    kind,
                    f"partially update {sub} of the specified {kind}",
                    gvk=sgvk,
                    scope=scope,
                    suffix=suffix,
                ),
                "parameters": [*_WRITE_PARAMS, _FORCE],
                "requestBody": patch_body,
                "responses": _response(sref, _OK, ("201", "Created")),
            },
        }
    if rt.namespaced:
        paths[f"{prefix}/{rt.plural}"] = {
            "parameters": [_PRETTY],
            "get": {
                **_op(
                    rt,
                    "list",
                    "list",
                    kind,
                    f"list or watch objects of kind {kind}",
                    suffix="ForAllNamespaces",
                ),
                "parameters": _LIST_PARAMS,
                "responses": _response(list_ref, _OK),
            },
        }


def _build_doc(group: str, version: str) -> dict[str, Any] | None:
    served = [r for r in RESOURCES if (r.group, r.version) == (group, version)]
    if not served:
        return None
    writer = _OpenAPIWriter()
    paths: dict[str, Any] = {}
    for rt in served:
        node = SCHEMAS[rt.key_resource]
        writer.component(node)
        writer.component(
            _list_of(
                node,
                node.name + "List",
                f"{rt.list_kind} is a list of {rt.kind}.",
                (rt.group, rt.list_kind, rt.version),
            )
        )
        if "scale" in rt.subresources:
            writer.component(SCALE)
        _resource_paths(rt, node, paths)
    for shared in (_STATUS, _DELETE_OPTIONS, _PATCH, _WATCH_EVENT):
        writer.component(shared)
    # Status, DeleteOptions and WatchEvent are served in every group-version.
    gv_kinds = [(group, version)]
    for name, kind in (
        (_STATUS.name, "Status"),
        (_DELETE_OPTIONS.name, "DeleteOptions"),
        (_WATCH_EVENT.name, "WatchEvent"),
    ):
        writer.components[name]["x-kubernetes-group-version-kind"] = [
            {"group": g, "kind": kind, "version": v} for g, v in gv_kinds
        ]
    return {
        "openapi": "3.0.0",
        "info": {"title": "Hyperion Kubernetes-compatible API", "version": "v1.32.0"},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(writer.components.items())),
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "description": "Bearer Token authentication",
                    "name": "authorization",
                    "in": "header",
                }
            },
        },
        "security": [{"BearerToken": []}],
    }


@functools.cache
def openapi_v3_doc_json(group: str, version: str) -> bytes | None:
    """The OpenAPI v3 document of a group-version as canonical JSON bytes (memoized)."""
    doc = _build_doc(group, version)
    if doc is None:
        return None
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def openapi_v3_doc(group: str, version: str) -> dict[str, Any] | None:
    """The document served at ``/openapi/v3/api/v1`` or ``/openapi/v3/apis/<g>/<v>``.

    Paths for every served resource and verb (list, create, deletecollection, read,
    replace, patch, delete, the status/scale/log subresources, the all-namespaces list),
    each writing operation with the ``dryRun``, ``fieldManager`` and ``fieldValidation``
    query parameters, and ``components.schemas`` with every schema they reference. A
    fresh dict each call; None for a group-version we do not serve.
    """
    data = openapi_v3_doc_json(group, version)
    return None if data is None else json.loads(data)


def openapi_v3_path(group: str, version: str) -> str:
    """The index key of a group-version: ``api/v1``, ``apis/apps/v1``."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_index(base: str = "") -> dict[str, Any]:
    """The ``/openapi/v3`` index: each group-version's path and its document's URL.

    ``serverRelativeURL`` carries the document's hash (uppercase hex SHA-512), so
    clients may cache documents forever; ``base`` is prefixed to the URL.
    """
    paths = {}
    for group, version in group_versions():
        data = openapi_v3_doc_json(group, version)
        assert data is not None
        digest = hashlib.sha512(data).hexdigest().upper()
        key = openapi_v3_path(group, version)
        paths[key] = {"serverRelativeURL": f"{base}/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}


# --------------------------------------------------------------------------- OpenAPI v2 (minimal)
# kubectl before 1.29 reads /openapi/v2, as protobuf only (gnostic's openapi.v2.Document),
# to learn whether the server validates fields (the fieldValidation parameter of a
# PATCH operation) and which patch types a kind takes (its consumes). This document
# carries exactly that: every path and operation with its parameters, consumes and
# extensions, and no definitions, so that kubectl skips client-side schema validation
# and computes strategic merge patches from its built-in types. Newer kubectl uses v3.

_V2_DOCUMENT = {"swagger": 1, "info": 2, "paths": 8}
_V2_OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _pb_bytes(field_number: int, data: bytes) -> bytes:
    return _varint(field_number << 3 | 2) + _varint(len(data)) + data


def _pb_str(field_number: int, text: str) -> bytes:
    return _pb_bytes(field_number, text.encode()) if text else b""


def _pb_bool(field_number: int, value: bool) -> bytes:
    return _varint(field_number << 3) + b"\x01" if value else b""


def _pb_extension(field_number: int, name: str, value: Any) -> bytes:
    # NamedAny{name=1, value=Any{yaml=2}}
    import yaml  # PyYAML: only here, where extensions are written as YAML

    text = yaml.safe_dump(value, default_flow_style=False, sort_keys=True)
    return _pb_bytes(field_number, _pb_str(1, name) + _pb_bytes(2, _pb_str(2, text)))


def _pb_parameter(param: Mapping[str, Any]) -> bytes:
    # ParametersItem{parameter=1: Parameter{non_body_parameter=2: NonBodyParameter{
    #   query_parameter_sub_schema=3 | path_parameter_sub_schema=4}}}
    kind = param.get("in")
    schema_type = param.get("schema", {}).get("type", "string")
    if kind == "path":
        # PathParameterSubSchema: required=1, in=2, description=3, name=4, type=5
        sub = (
            _pb_bool(1, True)
            + _pb_str(2, "path")
            + _pb_str(3, param.get("description", ""))
            + _pb_str(4, param["name"])
            + _pb_str(5, schema_type)
        )
        non_body = _pb_bytes(4, sub)
    else:
        # QueryParameterSubSchema: in=2, description=3, name=4, type=6, unique_items=20
        sub = (
            _pb_str(2, "query")
            + _pb_str(3, param.get("description", ""))
            + _pb_str(4, param["name"])
            + _pb_str(6, schema_type)
        )
        non_body = _pb_bytes(3, sub)
    return _pb_bytes(1, _pb_bytes(2, non_body))


def _pb_operation(op: Mapping[str, Any]) -> bytes:
    # Operation: tags=1, description=3, operation_id=5, produces=6, consumes=7,
    # parameters=8, responses=9, schemes=10, vendor_extension=13
    out = b"".join(_pb_str(1, t) for t in op.get("tags", ()))
    out += _pb_str(3, op.get("description", "")) + _pb_str(5, op.get("operationId", ""))
    out += b"".join(_pb_str(6, m) for m in _MEDIA)
    consumes = list(op.get("requestBody", {}).get("content", {}))
    out += b"".join(_pb_str(7, m) for m in consumes)
    out += b"".join(_pb_bytes(8, _pb_parameter(p)) for p in op.get("parameters", ()))
    # Responses{response_code=1: NamedResponseValue{name=1, value=ResponseValue{
    #   response=1: Response{description=1}}}}
    codes = b"".join(
        _pb_bytes(
            1, _pb_str(1, code) + _pb_bytes(2, _pb_bytes(1, _pb_str(1, r.get("description", ""))))
        )
        for code, r in op.get("responses", {}).items()
    )
    out += _pb_bytes(9, codes) + _pb_str(10, "https")
    out += b"".join(
        _pb_extension(13, k, v) for k, v in sorted(op.items()) if k.startswith("x-kubernetes-")
    )
    return out


def _pb_path_item(item: Mapping[str, Any]) -> bytes:
    # PathItem: get=2 put=3 post=4 delete=5 options=6 head=7 patch=8 parameters=9
    out = b""
    for number, verb in enumerate(_V2_OPERATIONS, start=2):
        if verb in item:
            out += _pb_bytes(number, _pb_operation(item[verb]))
    out += b"".join(_pb_bytes(9, _pb_parameter(p)) for p in item.get("parameters", ()))
    return out


@functools.cache
def openapi_v2_pb() -> bytes:
    """``/openapi/v2`` as kubectl < 1.29 requests it (Accept:
    ``application/com.github.proto-openapi.spec.v2@v1.0+protobuf``): the paths and
    operations of every served group-version, without definitions (see above)."""
    paths = b""
    for group, version in group_versions():
        doc = _build_doc(group, version)
        assert doc is not None
        for path, item in doc["paths"].items():
            # NamedPathItem{name=1, value=2}
            paths += _pb_bytes(2, _pb_str(1, path) + _pb_bytes(2, _pb_path_item(item)))
    info = _pb_str(1, "Hyperion Kubernetes-compatible API") + _pb_str(2, "v1.32.0")
    return (
        _pb_str(_V2_DOCUMENT["swagger"], "2.0")
        + _pb_bytes(_V2_DOCUMENT["info"], info)
        + _pb_bytes(_V2_DOCUMENT["paths"], paths)
    )
