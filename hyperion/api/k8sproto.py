"""Kubernetes protobuf request bodies, decoded into the dicts the JSON path produces.

What this module owns: the wire envelope (the magic ``k8s\\x00`` then a
``runtime.Unknown`` whose ``raw`` is the typed message), the choice of message type from
the envelope's apiVersion and kind, and the conversion of a decoded message into the
object Go's ``encoding/json`` would have written for the same Go struct. Kubernetes'
JSON is the contract, and the field names of its ``generated.proto`` are the JSON names.
It may not touch validation, defaulting or storage: the server hands the dict on exactly
as it does a JSON body, and checks apiVersion and kind against the URL there.

The message types come from the ``generated.proto`` files vendored in ``k8spb`` (core/v1,
apps/v1, batch/v1 and their apimachinery imports; Apache-2.0, see NOTICE), compiled by
``tools/gen_proto.py`` into one descriptor set that is loaded into a private descriptor
pool: nothing is registered in the process-wide pool.

Theory of operation. The Go client marshals every non-pointer field, zero or not, and a
pointer field whenever it is not nil. Go's JSON omits the zero of a non-pointer field
(``omitempty``), so a zero scalar is dropped unless its Go field is a pointer
(``k8spb.gofields``): ``replicas: 0`` and ``runAsUser: 0`` survive, an empty
``imagePullPolicy`` does not. Messages are kept whenever present (a non-pointer struct is
``{}`` in Go's JSON too), and those of embedded Go structs (``Probe.handler``,
``Volume.volumeSource``) are merged into their parent, as JSON inlines them.
Kubernetes' own types keep their JSON forms: Quantity and Duration are strings,
IntOrString an int or a string, Time and MicroTime RFC 3339 strings (``null`` when zero,
as Go writes them), RawExtension and FieldsV1 the JSON they hold, bytes base64.

Bad input never raises anything but ``ApiError``: 400 BadRequest for a body that cannot
be decoded, 415 UnsupportedMediaType for a kind or encoding we do not decode. Limits:
the server reads at most ``MAX_BODY_BYTES`` (3 MiB) of body, and protobuf's parser
refuses nesting deeper than its limit (100), which bounds the recursion here too.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
from importlib import resources
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from hyperion.api import errors
from hyperion.api.k8spb.gofields import INLINE_FIELDS, POINTER_FIELDS
from hyperion.api.resources import RESOURCES

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"  # apimachinery/pkg/runtime/serializer/protobuf: protoEncodingPrefix

_UNKNOWN = "k8s.io.apimachinery.pkg.runtime.Unknown"
_META = "k8s.io.apimachinery.pkg.apis.meta.v1"
# The Go package of each API group whose built-in kinds we serve; the CRD group is not
# here (custom resources are always JSON, as in Kubernetes).
_GROUP_PACKAGES = {"": "k8s.io.api.core", "apps": "k8s.io.api.apps", "batch": "k8s.io.api.batch"}
_DELETE_OPTIONS = f"{_META}.DeleteOptions"
_TIME = f"{_META}.Time"
_MICRO_TIME = f"{_META}.MicroTime"
_STRING_HOLDERS = frozenset(  # one string field that is the whole JSON value
    {
        "k8s.io.apimachinery.pkg.api.resource.Quantity",
        "k8s.io.apimachinery.pkg.api.resource.QuantityValue",
    }
)
_RAW_JSON = {  # the field holding raw JSON bytes
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "raw",
    f"{_META}.FieldsV1": "Raw",
}
_INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_DURATION = f"{_META}.Duration"
_VERBS = f"{_META}.Verbs"  # a Go []string: a JSON array
_ZERO: tuple[object, ...] = ("", 0, False, b"")


@functools.cache
def _pool() -> descriptor_pool.DescriptorPool:
    data = resources.files("hyperion.api.k8spb").joinpath("descriptors.binpb").read_bytes()
    pool = descriptor_pool.DescriptorPool()
    for f in descriptor_pb2.FileDescriptorSet.FromString(data).file:
        pool.Add(f)
    return pool


def message_class(full_name: str) -> type[Message]:
    """The class of a vendored message (``k8s.io.api.apps.v1.Deployment``), from the
    private pool; KeyError if there is none. For tests and tools that build bodies."""
    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(full_name))


@functools.cache
def kinds() -> dict[tuple[str, str], str]:
    """(apiVersion, kind) → protobuf message name, for each kind whose bodies we decode."""
    out: dict[tuple[str, str], str] = {}
    for r in RESOURCES:
        package = _GROUP_PACKAGES.get(r.group)
        if package is not None:
            out[(r.api_version, r.kind)] = f"{package}.{r.version}.{r.kind}"
    # DELETE bodies; typed clients send meta.k8s.io/v1 or, for the core group, v1.
    out[("v1", "DeleteOptions")] = _DELETE_OPTIONS
    out[("meta.k8s.io/v1", "DeleteOptions")] = _DELETE_OPTIONS
    return out


def decode(body: bytes) -> dict[str, Any]:
    """The JSON-shaped object of a ``application/vnd.kubernetes.protobuf`` body.

    Raises ``ApiError`` (400 or 415) for anything it cannot decode, and nothing else.
    """
    if not body.startswith(MAGIC):
        raise errors.bad_request(
            "the protobuf body does not start with the Kubernetes prefix k8s\\x00"
        )
    envelope = _parse(_UNKNOWN, body[len(MAGIC) :], "the protobuf envelope (runtime.Unknown)")
    fields = envelope.DESCRIPTOR.fields_by_name
    encoding = _text(envelope.contentEncoding, fields["contentEncoding"])
    if encoding:
        raise errors.unsupported_media(
            f"protobuf bodies with contentEncoding {encoding!r} are not supported"
        )
    inner = _text(envelope.contentType, fields["contentType"])
    if inner not in ("", MEDIA_TYPE):
        raise errors.unsupported_media(
            f"a protobuf envelope holding {inner!r} is not supported (only {MEDIA_TYPE})"
        )
    type_meta = envelope.typeMeta
    tm_fields = type_meta.DESCRIPTOR.fields_by_name
    api_version = _text(type_meta.apiVersion, tm_fields["apiVersion"])
    kind = _text(type_meta.kind, tm_fields["kind"])
    if not kind or not api_version:
        raise errors.bad_request("the protobuf envelope names no apiVersion and kind")
    name = kinds().get((api_version, kind))
    if name is None:
        served = ", ".join(sorted({k for _, k in kinds()}))
        raise errors.unsupported_media(
            f"protobuf bodies of kind {kind} (apiVersion {api_version}) are not supported; "
            f"this server decodes protobuf for {served} and JSON or YAML for everything"
        )
    obj = to_json(_parse(name, envelope.raw, f"the {kind}"))
    assert isinstance(obj, dict), name  # a kind is a plain struct, never a special type
    return {"apiVersion": api_version, "kind": kind, **obj}


def _parse(full_name: str, data: bytes, what: str) -> Any:
    msg = message_class(full_name)()
    try:
        msg.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as e:
        raise errors.bad_request(f"{what} in the protobuf body could not be decoded: {e}") from None
    return msg


def _text(value: str | bytes, field: FieldDescriptor) -> str:
    # upb hands back the raw bytes of a proto2 string that is not valid UTF-8.
    if isinstance(value, bytes):
        raise errors.bad_request(f"field {field.full_name} in the protobuf body is not UTF-8")
    return value


# ------------------------------------------------------------------ conversion


def to_json(msg: Message) -> Any:
    """The value Go's ``encoding/json`` writes for the Go struct behind ``msg``."""
    try:
        return _object(msg)
    except RecursionError:
        raise errors.bad_request("the protobuf body is nested too deeply") from None
    except UnicodeDecodeError as e:  # upb decodes map keys as it hands them out
        raise errors.bad_request(f"a string in the protobuf body is not UTF-8: {e}") from None


def _object(msg: Any) -> Any:
    """The JSON value of one message, special Kubernetes types included."""
    d: Descriptor = msg.DESCRIPTOR
    name = d.full_name
    if name in (_TIME, _MICRO_TIME):
        return _time(msg, micro=name == _MICRO_TIME)
    if name in _STRING_HOLDERS:
        return _text(msg.string, d.fields_by_name["string"])
    if name == _INT_OR_STRING:
        return _int_or_string(msg)
    if name in _RAW_JSON:
        return _raw_json(msg, _RAW_JSON[name])
    if name == _DURATION:
        return _go_duration(msg.duration)
    if name == _VERBS:
        return [_text(v, d.fields_by_name["items"]) for v in msg.items]
    out: dict[str, Any] = {}
    for field, value in msg.ListFields():
        if field.is_repeated:
            entry = field.message_type
            if entry is not None and entry.GetOptions().map_entry:
                if value:
                    out[field.name] = _map(entry, value)
            elif value:
                out[field.name] = [_value(field, v) for v in value]
        elif field.full_name in INLINE_FIELDS:  # an embedded Go struct: JSON flattens it
            out.update(_object(value))
        elif field.message_type is not None:
            out[field.name] = _object(value)
        elif value not in _ZERO or field.full_name in POINTER_FIELDS:
            out[field.name] = _value(field, value)
    return out


def _map(entry: Descriptor, value: Any) -> dict[str, Any]:
    key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
    return {_text(k, key_field): _value(value_field, v) for k, v in value.items()}


def _value(field: FieldDescriptor, value: Any) -> Any:
    if field.message_type is not None:
        return _object(value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode()
    if field.type == FieldDescriptor.TYPE_STRING:
        return _text(value, field)
    return value  # int or bool: the vendored protos have no floating-point fields


def _time(msg: Any, micro: bool) -> str | None:
    if not msg.ListFields():
        return None  # Go's zero time: an empty message, JSON null
    seconds, nanos = msg.seconds, msg.nanos
    try:
        t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
    except OverflowError:
        raise errors.bad_request(f"{msg.DESCRIPTOR.name} {seconds} s is out of range") from None
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if micro:  # Time keeps whole seconds only (apimachinery's time_proto.go drops nanos)
        if not 0 <= nanos < 1_000_000_000:
            raise errors.bad_request(f"MicroTime nanos {nanos} is out of range")
        text += f".{nanos // 1000:06d}"
    return text + "Z"


def _int_or_string(msg: Any) -> int | str:
    kind = msg.type
    if kind == 0:
        return int(msg.intVal)
    if kind == 1:
        return _text(msg.strVal, msg.DESCRIPTOR.fields_by_name["strVal"])
    raise errors.bad_request(f"IntOrString has an unknown type {kind}")


def _raw_json(msg: Any, field: str) -> Any:
    raw: bytes = getattr(msg, field)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise errors.bad_request(
            f"{msg.DESCRIPTOR.name} in the protobuf body is not JSON: {e}"
        ) from None


def _go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``: ``1h2m3.5s``, ``1.5ms``, ``0s``."""
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(ns)

    def frac(whole: int, part: int, digits: int) -> str:
        return f"{whole}.{part:0{digits}d}".rstrip("0") if part else str(whole)

    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{frac(*divmod(u, 1_000), 3)}µs"
    if u < 1_000_000_000:
        return f"{sign}{frac(*divmod(u, 1_000_000), 6)}ms"
    secs, part = divmod(u, 1_000_000_000)
    hours, rest = divmod(secs, 3600)
    minutes, secs = divmod(rest, 60)
    s = f"{frac(secs, part, 9)}s"
    if hours:
        return f"{sign}{hours}h{minutes}m{s}"
    if minutes:
        return f"{sign}{minutes}m{s}"
    return sign + s
