"""Node records: what a node advertises about itself, and selectors over them.

Owns the ``NodeRecord`` a node publishes (DHT value under its node id, and its
announcements on the node-records topic), its validated wire form
(``wire_pb2.NodeRecord``), the label vocabulary and its normalization, semantic
versions, and the selector language that picks nodes by label and by resource.
Everything here is pure except ``local_capacity`` and ``free_memory_bytes``, the only
functions that read the operating system (``build_record`` calls ``local_capacity``
only when a capacity override is missing). It may not import asyncio, sockets or clocks.

Labels
======

Keys and values follow Kubernetes label syntax: a key is ``[prefix/]name`` where the
optional prefix is a lowercase DNS subdomain of at most 253 characters and the name is
1-63 characters ``[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?``; a value is empty or
matches the same pattern as a name. Well-known keys (the CLI accepts the short alias):

=====================  ================================  ==================================
alias                  key                               values
=====================  ================================  ==================================
cloud                  hyperion.io/cloud                 aws, gcp, azure, edge, onprem
region                 topology.kubernetes.io/region     provider's name: us-east-1, eastus
zone                   topology.kubernetes.io/zone       provider's name: us-east-1a
geography              hyperion.io/geography             US CA SA EU ME AF APAC (see below)
instance-type          node.kubernetes.io/instance-type  provider's name: p5.48xlarge
spot                   hyperion.io/spot                  true, false
price-per-hour, price  hyperion.io/price-per-hour        decimal USD per hour: 2.5, 98.32
edge                   hyperion.io/edge                  true, false (cloud=edge implies true)
=====================  ================================  ==================================

Geographies are coarse, residency-oriented areas: ``US`` United States, ``CA`` Canada
(kept apart from the US for data-residency rules), ``SA`` South America, ``EU`` Europe
(the continent, UK, Switzerland and Norway included, not only the Union), ``ME``
Middle East, ``AF`` Africa, ``APAC`` Asia-Pacific, Australia and New Zealand included,
as all three clouds group them. ``normalize_labels`` derives the geography from an
AWS, GCP or Azure region name when it is not given, and leaves it absent for regions
it does not know (Mexico included: it is in none of the areas above). Values of the
closed-set keys are normalized in case (``geography=eu`` becomes ``EU``).

Validation of closed sets happens when labels are set locally (``normalize_labels``),
not when a peer's record is decoded: a newer node may know a cloud we do not, and its
record must still be readable. Decoding checks label syntax only.

Selectors
=========

Kubernetes label-selector syntax: requirements separated by commas, all must hold; an
empty selector matches every node. Whitespace around operators is ignored.

==========================  ===========================================================
requirement                 holds when
==========================  ===========================================================
``key=value``               the label is present with that value (``==`` is the same)
``key!=value``              the label is absent or has another value
``key in (a,b)``            the label is present with one of the values
``key notin (a,b)``         the label is absent or has none of the values
``key``                     the label is present
``!key``                    the label is absent
``key>N`` ``key<N``         the label is present and is a number above / below N
``key>=N`` ``key<=N``       likewise, inclusive
==========================  ===========================================================

Keys may be the short aliases above (``cloud=aws``, ``region in (us-east-1,eu-west-1)``),
except that ``price``, ``spot`` and ``edge`` are pseudo-keys (below; the full key tests
the label itself). Pseudo-keys are read from the record instead of its labels:

* ``version`` — the software version, compared by semver precedence; ``0.2`` and
  ``1`` are shorthand for ``0.2.0`` and ``1.0.0`` (``version>=0.2,version<1``).
* ``protocol`` — the wire protocol versions the node speaks: ``protocol>=2`` holds if
  any of them is at least 2; ``protocol!=1`` and ``protocol notin (1)`` hold if none
  of them is 1.
* ``name``, ``node-id`` — exact match (``=``, ``!=``, ``in``, ``notin``).
* ``gpu`` — alone: the node has a GPU; ``gpu=H100-80GB``: it has one of that model
  (case-insensitive); ``gpu!=T4``: it has none of that model; ``!gpu``: it has none.
* ``cpu``, ``memory``, ``gpus`` — *free* resources, compared with any operator except
  existence, written as Kubernetes quantities: ``cpu>=4`` (cores), ``cpu>=500m``
  (millicores), ``memory>=8Gi``, ``memory>16G``, ``gpus>=2`` (free devices in total).
* ``price`` — the advertised price per hour in USD: ``price<2.5``.
* ``spot``, ``edge`` — ``spot`` alone means ``spot=true``, ``!spot`` means
  ``spot!=true``; values are ``true`` or ``false`` (a node without the edge label is
  not at the edge).

A malformed selector raises ``ValueError`` naming the offending requirement.
"""

from __future__ import annotations

import math
import operator
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple

from google.protobuf.message import DecodeError

from hyperion import PROTOCOL_VERSION
from hyperion.identity.errors import IdentityError
from hyperion.identity.spiffe import KIND_NODE, parse_spiffe_id
from hyperion.mesh.dht import MAX_RECORD_BYTES
from hyperion.net import wire_pb2
from hyperion.net.codec import through_schema

# --------------------------------------------------------------------------- limits

NODE_ID_BYTES = 20
MAX_LABELS = 64
MAX_GPUS = 16  # distinct GPU entries; an 8-way box of one model is a single entry
MAX_PROTOCOL_VERSIONS = 16
MAX_SPIFFE_ID_CHARS = 2048  # the SPIFFE spec's URI limit
MAX_NAME_CHARS = 128  # as for member names in hyperion.net.codec
MAX_ADDR_CHARS = 256  # as for addresses in hyperion.net.codec
MAX_VERSION_CHARS = 128
MAX_SELECTOR_CHARS = 4096
MAX_SET_VALUES = 64  # values in one "in (...)"; a CLI user types a handful
MAX_LABEL_KEY_PREFIX_CHARS = 253  # a DNS subdomain (RFC 1123)
MAX_LABEL_NAME_CHARS = 63  # a DNS label; also the limit on label values
_MAX_NUMBER_CHARS = 64  # longest decimal or quantity we parse
_INT64_MAX = 2**63 - 1
_UINT64_MAX = 2**64 - 1
_UINT32_MAX = 2**32 - 1
# With these limits the largest valid record is about 30 KiB, inside a DHT value.
assert MAX_LABELS * (MAX_LABEL_KEY_PREFIX_CHARS + 2 * MAX_LABEL_NAME_CHARS + 8) < MAX_RECORD_BYTES


class RecordError(ValueError):
    """A node record is malformed: bad bytes from a peer, or invalid fields."""


# --------------------------------------------------------------------------- labels

CLOUD = "hyperion.io/cloud"
REGION = "topology.kubernetes.io/region"
ZONE = "topology.kubernetes.io/zone"
GEOGRAPHY = "hyperion.io/geography"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
SPOT = "hyperion.io/spot"
PRICE_PER_HOUR = "hyperion.io/price-per-hour"
EDGE = "hyperion.io/edge"

CLOUDS = ("aws", "gcp", "azure", "edge", "onprem")
GEOGRAPHIES = ("US", "CA", "SA", "EU", "ME", "AF", "APAC")
BOOLEANS = ("true", "false")

SHORT_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "cloud": CLOUD,
        "region": REGION,
        "zone": ZONE,
        "geography": GEOGRAPHY,
        "instance-type": INSTANCE_TYPE,
        "spot": SPOT,
        "price-per-hour": PRICE_PER_HOUR,
        "price": PRICE_PER_HOUR,
        "edge": EDGE,
    }
)

# Closed-set values, keyed by label, with the case they are normalized to.
_CLOSED: Mapping[str, tuple[tuple[str, ...], Callable[[str], str]]] = MappingProxyType(
    {
        CLOUD: (CLOUDS, str.lower),
        GEOGRAPHY: (GEOGRAPHIES, str.upper),
        SPOT: (BOOLEANS, str.lower),
        EDGE: (BOOLEANS, str.lower),
    }
)

_LABEL_NAME_RE = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS_SUBDOMAIN_RE = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
_DECIMAL_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")

_LABEL_CHARS = "letters, digits, '-', '_' or '.', beginning and ending with a letter or digit"


def check_label_key(key: str) -> None:
    """Raise ValueError unless ``key`` is a valid Kubernetes label key."""
    parts = key.split("/")
    if len(parts) > 2:
        raise ValueError(f"label key {key!r} has more than one '/'")
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not (
            0 < len(prefix) <= MAX_LABEL_KEY_PREFIX_CHARS and _DNS_SUBDOMAIN_RE.fullmatch(prefix)
        ):
            raise ValueError(
                f"label key {key!r}: the prefix must be a DNS subdomain of at most "
                f"{MAX_LABEL_KEY_PREFIX_CHARS} characters (lowercase letters, digits, '-', '.')"
            )
    if not (0 < len(name) <= MAX_LABEL_NAME_CHARS and _LABEL_NAME_RE.fullmatch(name)):
        raise ValueError(
            f"label key {key!r}: the name must be 1-{MAX_LABEL_NAME_CHARS} {_LABEL_CHARS}"
        )


def _is_label_value(value: str) -> bool:
    return not value or (
        len(value) <= MAX_LABEL_NAME_CHARS and _LABEL_NAME_RE.fullmatch(value) is not None
    )


def check_label_value(key: str, value: str) -> None:
    """Raise ValueError unless ``value`` is a valid Kubernetes label value."""
    if not _is_label_value(value):
        raise ValueError(
            f"label {key}: value {value!r} must be empty or at most "
            f"{MAX_LABEL_NAME_CHARS} {_LABEL_CHARS}"
        )


def _closed_value(key: str, value: str) -> str:
    """Normalize and check a value of a closed-set or numeric well-known label."""
    if key in _CLOSED:
        allowed, case = _CLOSED[key]
        if case(value) not in allowed:
            raise ValueError(f"label {key}: {value!r} is not one of {', '.join(allowed)}")
        return case(value)
    if key == PRICE_PER_HOUR and not _DECIMAL_RE.fullmatch(value):
        raise ValueError(f"label {key}: {value!r} is not a non-negative decimal such as 2.5")
    return value


# Azure names its regions without dashes; AWS and GCP by area prefix.
_AZURE_REGIONS_BY_GEOGRAPHY = {
    "US": "eastus eastus2 westus westus2 westus3 centralus northcentralus southcentralus "
    "westcentralus",
    "CA": "canadacentral canadaeast",
    "SA": "brazilsouth brazilsoutheast chilecentral",
    "EU": "westeurope northeurope uksouth ukwest francecentral francesouth germanywestcentral "
    "germanynorth swedencentral swedensouth switzerlandnorth switzerlandwest norwayeast "
    "norwaywest polandcentral italynorth spaincentral",
    "ME": "uaenorth uaecentral qatarcentral israelcentral",
    "AF": "southafricanorth southafricawest",
    "APAC": "eastasia southeastasia japaneast japanwest koreacentral koreasouth centralindia "
    "southindia westindia jioindiawest jioindiacentral australiaeast australiasoutheast "
    "australiacentral australiacentral2 newzealandnorth indonesiacentral malaysiawest",
}
_AZURE_REGIONS: Mapping[str, str] = MappingProxyType(
    {name: geo for geo, names in _AZURE_REGIONS_BY_GEOGRAPHY.items() for name in names.split()}
)
# First match wins, so the more specific prefixes come first.
_REGION_PREFIXES: tuple[tuple[str, str | None], ...] = (
    ("northamerica-northeast", "CA"),  # GCP Montréal and Toronto
    ("northamerica-south", None),  # GCP Querétaro, Mexico
    ("northamerica-", "US"),
    ("us-", "US"),
    ("ca-", "CA"),
    ("sa-", "SA"),
    ("southamerica-", "SA"),
    ("eu-", "EU"),
    ("europe-", "EU"),
    ("me-", "ME"),
    ("il-", "ME"),
    ("af-", "AF"),
    ("africa-", "AF"),
    ("ap-", "APAC"),
    ("asia-", "APAC"),
    ("australia-", "APAC"),
    ("cn-", "APAC"),
)


def geography_of_region(region: str) -> str | None:
    """The geography of an AWS, GCP or Azure region name, or None if not known."""
    r = region.lower()
    if r in _AZURE_REGIONS:
        return _AZURE_REGIONS[r]
    for prefix, geo in _REGION_PREFIXES:
        if r.startswith(prefix):
            return geo
    return None


def normalize_labels(raw: Mapping[str, str]) -> dict[str, str]:
    """Expand short aliases, validate, and derive ``edge`` and ``geography``.

    Returns a new dict sorted by key. Raises ValueError naming the bad key or value.
    ``cloud=edge`` implies ``edge=true`` (and contradicts an explicit ``edge=false``);
    a known ``region`` implies its ``geography`` unless one is given.
    """
    out: dict[str, str] = {}
    given: dict[str, str] = {}  # full key -> how the user spelled it, for messages
    for raw_key, value in raw.items():
        key = SHORT_KEYS.get(raw_key, raw_key)
        check_label_key(key)
        check_label_value(key, value)
        value = _closed_value(key, value)
        if key in out and out[key] != value:
            raise ValueError(
                f"label {key} given twice: {given[key]}={out[key]} and {raw_key}={value}"
            )
        out[key] = value
        given[key] = raw_key
    if out.get(CLOUD) == "edge":
        if out.get(EDGE) == "false":
            raise ValueError(f"label {EDGE}=false contradicts {CLOUD}=edge")
        out[EDGE] = "true"
    if REGION in out and GEOGRAPHY not in out:
        geo = geography_of_region(out[REGION])
        if geo is not None:
            out[GEOGRAPHY] = geo
    if len(out) > MAX_LABELS:
        raise ValueError(f"more than {MAX_LABELS} labels")
    return dict(sorted(out.items()))


class Labels(Mapping[str, str]):
    """An immutable, hashable label map, iterated in key order; equal to an equal dict."""

    __slots__ = ("_items", "_map")

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._items = tuple(sorted(dict(items).items()))
        self._map = dict(self._items)

    def __getitem__(self, key: str) -> str:
        return self._map[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Labels({self._map!r})"


# --------------------------------------------------------------------------- versions

_NUMERIC_ID = r"0|[1-9][0-9]*"
_PRERELEASE_ID = rf"(?:{_NUMERIC_ID}|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER_RE = re.compile(
    rf"({_NUMERIC_ID})\.({_NUMERIC_ID})\.({_NUMERIC_ID})"
    rf"(?:-({_PRERELEASE_ID}(?:\.{_PRERELEASE_ID})*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
_SHORT_VERSION_RE = re.compile(rf"({_NUMERIC_ID})(?:\.({_NUMERIC_ID}))?")


class Version(NamedTuple):
    """A semantic version (semver 2.0) without its build metadata.

    Ordered by semver precedence (§11): a pre-release is lower than its release;
    numeric identifiers compare as numbers, alphanumeric ones as ASCII strings, and a
    numeric identifier is lower than an alphanumeric one. Build metadata is dropped by
    ``parse_version``, so versions differing only in it are equal.
    """

    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()

    def precedence(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        """A plain tuple that orders like the version."""
        ids = tuple((0, i, "") if isinstance(i, int) else (1, 0, i) for i in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, ids)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.precedence() < other.precedence()

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.precedence() <= other.precedence()

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.precedence() > other.precedence()

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.precedence() >= other.precedence()

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            return core + "-" + ".".join(str(i) for i in self.prerelease)
        return core


def parse_version(text: str, *, shorthand: bool = False) -> Version:
    """Parse ``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`` (semver 2.0); raise ValueError.

    With ``shorthand`` (selectors only), ``1`` and ``0.2`` mean ``1.0.0`` and ``0.2.0``.
    """
    if len(text) <= MAX_VERSION_CHARS:
        m = _SEMVER_RE.fullmatch(text)
        if m is not None:
            pre = tuple(
                int(i) if i.isdigit() else i for i in (m.group(4).split(".") if m.group(4) else ())
            )
            return Version(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre)
        if shorthand and (s := _SHORT_VERSION_RE.fullmatch(text)) is not None:
            return Version(int(s.group(1)), int(s.group(2) or 0), 0)
    form = "MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]" + (", or MAJOR[.MINOR]" if shorthand else "")
    raise ValueError(f"{text!r} is not a semantic version ({form})")


# --------------------------------------------------------------------------- records


def _text(value: str, limit: int, what: str) -> str:
    if len(value) > limit:
        raise RecordError(f"{what} is longer than {limit} characters")
    # Records are printed by the CLI: no terminal control sequences from peers.
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        raise RecordError(f"{what} contains control characters")
    return value


def _count(value: int, limit: int, what: str) -> None:
    if not 0 <= value <= limit:
        raise RecordError(f"{what} must be between 0 and {limit}, not {value}")


def _price(value: float, what: str) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise RecordError(f"{what} must be a finite non-negative number, not {value!r}")


@dataclass(frozen=True, slots=True)
class Gpu:
    """GPUs of one model on a node: ``count`` devices of ``memory_bytes`` each."""

    model: str  # a label value, e.g. "H100-80GB", so that selectors can name it
    memory_bytes: int  # per device
    count: int
    free: int

    def __post_init__(self) -> None:
        if not (self.model and _is_label_value(self.model)):
            raise RecordError(
                f"gpu model {self.model!r} must be 1-{MAX_LABEL_NAME_CHARS} {_LABEL_CHARS}"
            )
        _count(self.memory_bytes, _UINT64_MAX, f"gpu {self.model} memory_bytes")
        if not 1 <= self.count <= _UINT32_MAX:
            raise RecordError(f"gpu {self.model} count must be at least 1, not {self.count}")
        if not 0 <= self.free <= self.count:
            raise RecordError(
                f"gpu {self.model} free must be between 0 and its count {self.count}, "
                f"not {self.free}"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "memory_bytes": self.memory_bytes,
            "count": self.count,
            "free": self.free,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRecord:
    """What a node advertises about itself; validates itself on construction.

    Mirrors ``wire_pb2.NodeRecord``. ``labels`` may be given as any mapping and is
    stored as a ``Labels`` (immutable, hashable). Resources: ``cpu_millis`` and
    ``memory_bytes`` are capacity, the ``_free`` fields what is unallocated.
    Raises ``RecordError`` if any field is invalid.
    """

    node_id: str  # 40 lowercase hex characters
    spiffe_id: str  # spiffe://<trust-domain>/node/<node_id>
    name: str
    mesh_addr: str
    api_addr: str
    labels: Mapping[str, str] = field(default_factory=Labels)
    cpu_millis: int
    memory_bytes: int
    gpus: tuple[Gpu, ...] = ()
    cpu_millis_free: int
    memory_bytes_free: int
    price_per_hour: float = 0.0  # USD
    spot: bool = False
    software_version: str  # full semver
    protocol_versions: tuple[int, ...]
    updated_at: float  # unix seconds on the author's clock
    egress_price_per_gb: float = 0.0  # USD; 0 = unknown. Protocol version 2.

    def __post_init__(self) -> None:
        if not isinstance(self.labels, Labels):
            object.__setattr__(self, "labels", Labels(self.labels))
        # Lists from callers become tuples, so that records stay hashable.
        object.__setattr__(self, "gpus", tuple(self.gpus))
        object.__setattr__(self, "protocol_versions", tuple(self.protocol_versions))
        if not (len(self.node_id) == 2 * NODE_ID_BYTES and _is_lower_hex(self.node_id)):
            raise RecordError(f"node id must be {2 * NODE_ID_BYTES} lowercase hex characters")
        self._check_spiffe_id()
        _text(self.name, MAX_NAME_CHARS, "name")
        _text(self.mesh_addr, MAX_ADDR_CHARS, "mesh_addr")
        _text(self.api_addr, MAX_ADDR_CHARS, "api_addr")
        if len(self.labels) > MAX_LABELS:
            raise RecordError(f"more than {MAX_LABELS} labels")
        for key, value in self.labels.items():
            try:
                check_label_key(key)
                check_label_value(key, value)
            except ValueError as e:
                raise RecordError(str(e)) from None
        _count(self.cpu_millis, _INT64_MAX, "cpu_millis")
        _count(self.memory_bytes, _INT64_MAX, "memory_bytes")
        _count(self.cpu_millis_free, self.cpu_millis, "cpu_millis_free")
        _count(self.memory_bytes_free, self.memory_bytes, "memory_bytes_free")
        if len(self.gpus) > MAX_GPUS:
            raise RecordError(f"more than {MAX_GPUS} gpu entries")
        _price(self.price_per_hour, "price_per_hour")
        _price(self.egress_price_per_gb, "egress_price_per_gb")
        _text(self.software_version, MAX_VERSION_CHARS, "software_version")
        try:
            parse_version(self.software_version)
        except ValueError as e:
            raise RecordError(f"software_version: {e}") from None
        if not 1 <= len(self.protocol_versions) <= MAX_PROTOCOL_VERSIONS:
            raise RecordError(f"protocol_versions must list 1 to {MAX_PROTOCOL_VERSIONS} versions")
        for v in self.protocol_versions:
            if not 1 <= v <= _UINT32_MAX:
                raise RecordError(f"protocol version {v} is out of range")
        if not (math.isfinite(self.updated_at) and self.updated_at >= 0):
            raise RecordError(f"updated_at must be a finite time, not {self.updated_at!r}")

    def _check_spiffe_id(self) -> None:
        _text(self.spiffe_id, MAX_SPIFFE_ID_CHARS, "spiffe_id")
        try:
            sid = parse_spiffe_id(self.spiffe_id)
        except IdentityError as e:
            raise RecordError(str(e)) from None
        if sid.kind != KIND_NODE or sid.name != self.node_id:
            raise RecordError(f"spiffe_id {self.spiffe_id!r} does not name node {self.node_id}")

    def to_bytes(self, version: int = PROTOCOL_VERSION) -> bytes:
        """The deterministic protobuf encoding (``wire_pb2.NodeRecord``), as a node of
        protocol ``version`` writes it (older versions lack the newer fields)."""
        pb = wire_pb2.NodeRecord(
            node_id=bytes.fromhex(self.node_id),
            spiffe_id=self.spiffe_id,
            name=self.name,
            mesh_addr=self.mesh_addr,
            api_addr=self.api_addr,
            labels=dict(self.labels),
            cpu_millis=self.cpu_millis,
            memory_bytes=self.memory_bytes,
            gpus=[
                wire_pb2.GpuInfo(
                    model=g.model, memory_bytes=g.memory_bytes, count=g.count, free=g.free
                )
                for g in self.gpus
            ],
            cpu_millis_free=self.cpu_millis_free,
            memory_bytes_free=self.memory_bytes_free,
            price_per_hour=self.price_per_hour,
            spot=self.spot,
            software_version=self.software_version,
            protocol_versions=list(self.protocol_versions),
            updated_at=self.updated_at,
            egress_price_per_gb=self.egress_price_per_gb,
        )
        data = pb.SerializeToString(deterministic=True)
        return data if version == PROTOCOL_VERSION else through_schema(data, "NodeRecord", version)

    @classmethod
    def from_bytes(cls, data: bytes, version: int = PROTOCOL_VERSION) -> NodeRecord:
        """Decode and validate a record from a peer, as a node of protocol ``version``
        reads it (fields newer than that are dropped); raise RecordError, nothing else."""
        if len(data) > MAX_RECORD_BYTES:
            raise RecordError(f"node record is larger than {MAX_RECORD_BYTES} bytes")
        if version != PROTOCOL_VERSION:
            try:
                data = through_schema(data, "NodeRecord", version)
            except ValueError as e:
                raise RecordError(f"not a node record: {e}") from None
        pb = wire_pb2.NodeRecord()
        try:
            pb.ParseFromString(data)
        except DecodeError as e:
            raise RecordError(f"not a node record: {e}") from None
        if len(pb.node_id) != NODE_ID_BYTES:
            raise RecordError(f"node id must be {NODE_ID_BYTES} bytes, not {len(pb.node_id)}")
        # Bound the repeated fields before building anything from them.
        if len(pb.labels) > MAX_LABELS:
            raise RecordError(f"more than {MAX_LABELS} labels")
        if len(pb.gpus) > MAX_GPUS:
            raise RecordError(f"more than {MAX_GPUS} gpu entries")
        if len(pb.protocol_versions) > MAX_PROTOCOL_VERSIONS:
            raise RecordError(f"more than {MAX_PROTOCOL_VERSIONS} protocol versions")
        return cls(
            node_id=pb.node_id.hex(),
            spiffe_id=pb.spiffe_id,
            name=pb.name,
            mesh_addr=pb.mesh_addr,
            api_addr=pb.api_addr,
            labels=Labels(pb.labels),
            cpu_millis=pb.cpu_millis,
            memory_bytes=pb.memory_bytes,
            gpus=tuple(Gpu(g.model, g.memory_bytes, g.count, g.free) for g in pb.gpus),
            cpu_millis_free=pb.cpu_millis_free,
            memory_bytes_free=pb.memory_bytes_free,
            price_per_hour=pb.price_per_hour,
            spot=pb.spot,
            software_version=pb.software_version,
            protocol_versions=tuple(pb.protocol_versions),
            updated_at=pb.updated_at,
            egress_price_per_gb=pb.egress_price_per_gb,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, as ``hyperion nodes --json`` prints it."""
        return {
            "node_id": self.node_id,
            "name": self.name,
            "spiffe_id": self.spiffe_id,
            "mesh_addr": self.mesh_addr,
            "api_addr": self.api_addr,
            "labels": dict(self.labels),
            "cpu_millis": self.cpu_millis,
            "memory_bytes": self.memory_bytes,
            "cpu_millis_free": self.cpu_millis_free,
            "memory_bytes_free": self.memory_bytes_free,
            "gpus": [g.to_json() for g in self.gpus],
            "price_per_hour": self.price_per_hour,
            "spot": self.spot,
            "egress_price_per_gb": self.egress_price_per_gb,
            "version": self.software_version,
            "protocol_versions": list(self.protocol_versions),
            "updated_at": self.updated_at,
        }


def _is_lower_hex(s: str) -> bool:
    return all(c in "0123456789abcdef" for c in s)


# --------------------------------------------------------------------------- building


def _meminfo_bytes(field_name: str, path: str) -> int:
    try:
        with open(path, encoding="ascii") as f:
            text = f.read()
    except (OSError, ValueError):
        return 0
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name == field_name:
            parts = rest.split()
            if parts and parts[0].isdigit():
                return int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return 0


def local_capacity(meminfo_path: str = "/proc/meminfo") -> tuple[int, int]:
    """This machine's (CPU millicores, memory bytes); reads the OS, unlike the rest.

    CPUs are those this process may run on (``sched_getaffinity``, else ``cpu_count``);
    memory is ``MemTotal`` from ``/proc/meminfo``, 0 where that cannot be read. Neither
    reflects cgroup (container) limits.
    """
    affinity = getattr(os, "sched_getaffinity", None)
    try:
        cpus = len(affinity(0)) if affinity is not None else (os.cpu_count() or 0)
    except OSError:
        cpus = os.cpu_count() or 0
    return cpus * 1000, _meminfo_bytes("MemTotal", meminfo_path)


def free_memory_bytes(meminfo_path: str = "/proc/meminfo") -> int:
    """``MemAvailable`` from ``/proc/meminfo`` in bytes, 0 where it cannot be read."""
    return _meminfo_bytes("MemAvailable", meminfo_path)


_GIB = 1 << 30
KNOWN_GPU_MEMORY_GIB: Mapping[str, int] = MappingProxyType(
    {
        "H100-80GB": 80,
        "H100": 80,
        "H200": 141,
        "A100-80GB": 80,
        "A100-40GB": 40,
        "L40S": 48,
        "L4": 24,
        "A10G": 24,
        "T4": 16,
        "V100": 16,
        "V100-32GB": 32,
    }
)
_KNOWN_GPU_BY_FOLD = {m.casefold(): m for m in KNOWN_GPU_MEMORY_GIB}


def parse_gpus(spec: str) -> tuple[Gpu, ...]:
    """Parse a ``--gpus`` flag: ``MODEL[:COUNT[:MEMORY_GIB]]`` entries separated by commas.

    ``H100-80GB:8,L4:1``. COUNT defaults to 1. Known models (``KNOWN_GPU_MEMORY_GIB``,
    matched case-insensitively and spelled as there) need no memory; others must give it.
    All devices are free. An empty spec means no GPUs. Raises ValueError.
    """
    if not spec.strip():
        return ()
    gpus: list[Gpu] = []
    for entry in spec.split(","):
        parts = [p.strip() for p in entry.split(":")]
        model = parts[0]
        if not model or len(parts) > 3:
            raise ValueError(f"bad GPU entry {entry!r}: expected MODEL[:COUNT[:MEMORY_GIB]]")
        count = 1
        if len(parts) > 1:
            if not (parts[1].isascii() and parts[1].isdigit() and 1 <= int(parts[1]) <= 1024):
                raise ValueError(f"bad GPU entry {entry!r}: count must be an integer 1-1024")
            count = int(parts[1])
        known = _KNOWN_GPU_BY_FOLD.get(model.casefold())
        if len(parts) == 3:
            if not (len(parts[2]) <= _MAX_NUMBER_CHARS and _DECIMAL_RE.fullmatch(parts[2])):
                raise ValueError(f"bad GPU entry {entry!r}: memory must be a number of GiB")
            memory_bytes = int(Decimal(parts[2]) * _GIB)
            if not 0 < memory_bytes <= _UINT64_MAX:
                raise ValueError(f"bad GPU entry {entry!r}: memory is out of range")
        elif known is not None:
            memory_bytes = KNOWN_GPU_MEMORY_GIB[known] * _GIB
        else:
            raise ValueError(
                f"unknown GPU model {model!r}: give its memory as {model}:{count}:<GiB> "
                f"(known: {', '.join(KNOWN_GPU_MEMORY_GIB)})"
            )
        model = known or model
        if any(g.model == model for g in gpus):
            raise ValueError(f"GPU model {model} is given twice")
        gpus.append(Gpu(model, memory_bytes, count, count))
    if len(gpus) > MAX_GPUS:
        raise ValueError(f"more than {MAX_GPUS} GPU models")
    return tuple(gpus)


def build_record(
    *,
    node_id: str,
    spiffe_id: str,
    name: str,
    mesh_addr: str,
    api_addr: str,
    labels: Mapping[str, str],
    software_version: str,
    protocol_versions: Sequence[int],
    now_unix: float,
    cpu_millis: int | None = None,
    memory_bytes: int | None = None,
    gpus: tuple[Gpu, ...] = (),
    egress_price_per_gb: float = 0.0,
) -> NodeRecord:
    """This node's record, all resources free; capacity defaults to ``local_capacity()``.

    ``price_per_hour`` comes from the ``hyperion.io/price-per-hour`` label (else 0) and
    ``spot`` from ``hyperion.io/spot``. Labels are normalized again (it is idempotent).
    Raises ValueError (RecordError for an invalid record).
    """
    labels = normalize_labels(labels)
    if cpu_millis is None or memory_bytes is None:
        local_cpu, local_memory = local_capacity()
        cpu_millis = local_cpu if cpu_millis is None else cpu_millis
        memory_bytes = local_memory if memory_bytes is None else memory_bytes
    return NodeRecord(
        node_id=node_id,
        spiffe_id=spiffe_id,
        name=name,
        mesh_addr=mesh_addr,
        api_addr=api_addr,
        labels=labels,
        cpu_millis=cpu_millis,
        memory_bytes=memory_bytes,
        gpus=gpus,
        cpu_millis_free=cpu_millis,
        memory_bytes_free=memory_bytes,
        price_per_hour=float(labels.get(PRICE_PER_HOUR, "0")),
        spot=labels.get(SPOT) == "true",
        software_version=software_version,
        protocol_versions=tuple(protocol_versions),
        updated_at=now_unix,
        egress_price_per_gb=egress_price_per_gb,
    )


# --------------------------------------------------------------------------- selectors

_QUANTITY_RE = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?")
_QUANTITY_SCALE: Mapping[str, Decimal] = MappingProxyType(
    {
        "": Decimal(1),
        "m": Decimal("0.001"),
        **{s: Decimal(1000**i) for i, s in enumerate("kMGTPE", start=1)},
        **{s + "i": Decimal(1024**i) for i, s in enumerate("KMGTPE", start=1)},
    }
)


def parse_quantity(text: str) -> Decimal:
    """A Kubernetes quantity in base units: ``500m`` is 0.5, ``8Gi`` 8·2³⁰, ``16G`` 16·10⁹.

    Raises ValueError. Exponent forms (``1e3``) and signs are not accepted.
    """
    m = _QUANTITY_RE.fullmatch(text) if len(text) <= _MAX_NUMBER_CHARS else None
    if m is None:
        raise ValueError(f"{text!r} is not a quantity such as 4, 500m, 8Gi or 16G")
    return Decimal(m.group(1)) * _QUANTITY_SCALE[m.group(2) or ""]


def _decimal(text: str) -> Decimal | None:
    if len(text) <= _MAX_NUMBER_CHARS and _DECIMAL_RE.fullmatch(text):
        return Decimal(text)
    return None


EQUALITY_OPS = ("=", "!=", "in", "notin")
ORDER_OPS = (">", "<", ">=", "<=")
EXISTS, NOT_EXISTS = "exists", "!exists"
OPS = (*EQUALITY_OPS, *ORDER_OPS, EXISTS, NOT_EXISTS)
_ORDER: Mapping[str, Callable[[Any, Any], bool]] = MappingProxyType(
    {">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le}
)

PSEUDO_KEYS = (
    "version",
    "protocol",
    "name",
    "node-id",
    "gpu",
    "cpu",
    "memory",
    "gpus",
    "price",
    "spot",
    "edge",
)


def _to_bool(text: str) -> str:
    if text.lower() not in BOOLEANS:
        raise ValueError(f"{text!r} is not true or false")
    return text.lower()


def _to_node_id(text: str) -> str:
    if not (len(text) == 2 * NODE_ID_BYTES and _is_lower_hex(text.lower())):
        raise ValueError(f"{text!r} is not a node id ({2 * NODE_ID_BYTES} hex characters)")
    return text.lower()


def _to_protocol(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 10):
        raise ValueError(f"{text!r} is not a protocol version number")
    return int(text)


def _to_decimal(text: str) -> Decimal:
    d = _decimal(text)
    if d is None:
        raise ValueError(f"{text!r} is not a non-negative decimal number")
    return d


class _Kind(NamedTuple):
    """How a pseudo-key reads a record and parses selector values."""

    ops: tuple[str, ...]
    parse: Callable[[str], Any]
    have: Callable[[NodeRecord], list[Any]]


_PSEUDO: Mapping[str, _Kind] = MappingProxyType(
    {
        "version": _Kind(
            EQUALITY_OPS + ORDER_OPS,
            lambda s: parse_version(s, shorthand=True),
            lambda r: [parse_version(r.software_version)],
        ),
        "protocol": _Kind(
            EQUALITY_OPS + ORDER_OPS, _to_protocol, lambda r: list(r.protocol_versions)
        ),
        "name": _Kind(EQUALITY_OPS, str, lambda r: [r.name]),
        "node-id": _Kind(EQUALITY_OPS, _to_node_id, lambda r: [r.node_id]),
        "gpu": _Kind(
            (*EQUALITY_OPS, EXISTS, NOT_EXISTS),
            str.casefold,
            lambda r: [g.model.casefold() for g in r.gpus],
        ),
        "cpu": _Kind(
            EQUALITY_OPS + ORDER_OPS,
            lambda s: parse_quantity(s) * 1000,
            lambda r: [Decimal(r.cpu_millis_free)],
        ),
        "memory": _Kind(
            EQUALITY_OPS + ORDER_OPS, parse_quantity, lambda r: [Decimal(r.memory_bytes_free)]
        ),
        "gpus": _Kind(
            EQUALITY_OPS + ORDER_OPS,
            parse_quantity,
            lambda r: [Decimal(sum(g.free for g in r.gpus))],
        ),
        # repr gives the shortest decimal that reads back as the float: 0.1, not 0.1000…055
        "price": _Kind(
            EQUALITY_OPS + ORDER_OPS, _to_decimal, lambda r: [Decimal(repr(r.price_per_hour))]
        ),
        "spot": _Kind(EQUALITY_OPS, _to_bool, lambda r: ["true" if r.spot else "false"]),
        "edge": _Kind(EQUALITY_OPS, _to_bool, lambda r: [r.labels.get(EDGE, "false")]),
    }
)
assert set(_PSEUDO) == set(PSEUDO_KEYS)


def _label_equality_value(key: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        check_label_value(key, value)
        return _closed_value(key, value)

    return parse


@dataclass(frozen=True, slots=True)
class Requirement:
    """One selector requirement; validates itself and parses its values once.

    ``key`` is a full label key or one of ``PSEUDO_KEYS`` (aliases are expanded by
    ``parse_selector``); ``op`` is one of ``OPS``; ``values`` holds one value for
    ``=``, ``!=`` and the order operators, one or more for ``in``/``notin``, none for
    ``exists``/``!exists``. Raises ValueError.
    """

    key: str
    op: str
    values: tuple[str, ...] = ()
    _operands: tuple[Any, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown operator {self.op!r}")
        if self.op in (EXISTS, NOT_EXISTS):
            if self.values:
                raise ValueError(f"{_describe(self.op)} takes no values")
        elif self.op in ("in", "notin"):
            if not 1 <= len(self.values) <= MAX_SET_VALUES:
                raise ValueError(f"{self.op} takes 1 to {MAX_SET_VALUES} values")
        elif len(self.values) != 1:
            raise ValueError(f"{self.op!r} takes exactly one value")
        kind = _PSEUDO.get(self.key)
        parse: Callable[[str], Any]
        if kind is not None:
            if self.op not in kind.ops:
                raise ValueError(
                    f"{self.key} does not support {_describe(self.op)}; "
                    f"it supports {', '.join(_describe(o) for o in kind.ops)}"
                )
            parse = kind.parse
        else:
            check_label_key(self.key)
            parse = _to_decimal if self.op in ORDER_OPS else _label_equality_value(self.key)
        operands = []
        for v in self.values:
            if not v and (kind is not None or self.op in ORDER_OPS):
                raise ValueError(f"empty value for {self.key}")
            operands.append(parse(v))
        if all(isinstance(o, str) for o in operands):
            object.__setattr__(self, "values", tuple(operands))  # as normalized: geography=EU
        object.__setattr__(self, "_operands", tuple(operands))

    def _have(self, rec: NodeRecord) -> list[Any]:
        kind = _PSEUDO.get(self.key)
        if kind is not None:
            return kind.have(rec)
        value = rec.labels.get(self.key)
        if value is None:
            return []
        if self.op in ORDER_OPS:
            number = _decimal(value)
            return [] if number is None else [number]
        return [value]

    def matches(self, rec: NodeRecord) -> bool:
        """Whether the record satisfies this requirement (Kubernetes semantics)."""
        have = self._have(rec)
        op = self.op
        if op == EXISTS:
            return bool(have)
        if op == NOT_EXISTS:
            return not have
        if op in ("=", "in"):
            return any(h in self._operands for h in have)
        if op in ("!=", "notin"):
            return not any(h in self._operands for h in have)
        compare = _ORDER[op]
        return any(compare(h, self._operands[0]) for h in have)

    def __str__(self) -> str:
        if self.op == EXISTS:
            return self.key
        if self.op == NOT_EXISTS:
            return "!" + self.key
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        return f"{self.key}{self.op}{self.values[0]}"


def _describe(op: str) -> str:
    return {EXISTS: "'key' (exists)", NOT_EXISTS: "'!key' (absent)"}.get(op, repr(op))


@dataclass(frozen=True, slots=True)
class Selector:
    """A conjunction of requirements; the empty selector matches every node."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, rec: NodeRecord) -> bool:
        return all(r.matches(rec) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


_TOKEN = r"[^\s!=<>(),]+"
_NOT_EXISTS_RE = re.compile(rf"!\s*({_TOKEN})")
_SET_RE = re.compile(rf"({_TOKEN})\s+(in|notin)\s*\(([^()]*)\)")
_COMPARE_RE = re.compile(rf"({_TOKEN})\s*(==|!=|>=|<=|=|>|<)\s*([^\s!=<>(),]*)")
_EXISTS_RE = re.compile(_TOKEN)
_SYNTAX = (
    "expected key, !key, key=value, key!=value, key in (a,b), key notin (a,b), "
    "or key>N, key<N, key>=N, key<=N"
)


def _split_requirements(text: str) -> list[str]:
    """Split at the commas that are not inside parentheses."""
    parts: list[str] = []
    depth = start = 0
    for i, c in enumerate(text):
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"bad selector {text!r}: ')' without '('")
        elif c == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise ValueError(f"bad selector {text!r}: '(' without ')'")
    parts.append(text[start:])
    return parts


def _parse_requirement(text: str) -> Requirement:
    values: tuple[str, ...]
    if m := _NOT_EXISTS_RE.fullmatch(text):
        key, op, values = m.group(1), NOT_EXISTS, ()
    elif m := _SET_RE.fullmatch(text):
        key, op = m.group(1), m.group(2)
        values = tuple(v.strip() for v in m.group(3).split(","))
        if any(not v for v in values):
            raise ValueError("empty value in the set")
    elif m := _COMPARE_RE.fullmatch(text):
        key, op, values = m.group(1), m.group(2), (m.group(3),)
        op = "=" if op == "==" else op
    elif _EXISTS_RE.fullmatch(text):
        key, op, values = text, EXISTS, ()
    else:
        raise ValueError(_SYNTAX)
    if key not in _PSEUDO:
        key = SHORT_KEYS.get(key, key)
    if key in ("spot", "edge") and op in (EXISTS, NOT_EXISTS):
        # A flag: "spot" reads as "is spot", not "has a spot field" (every record has).
        op, values = ("=" if op == EXISTS else "!="), ("true",)
    return Requirement(key, op, values)


def parse_selector(text: str) -> Selector:
    """Parse a selector (syntax in the module docstring); raise ValueError if malformed."""
    if len(text) > MAX_SELECTOR_CHARS:
        raise ValueError(f"selector is longer than {MAX_SELECTOR_CHARS} characters")
    if not text.strip():
        return Selector()
    requirements = []
    for part in _split_requirements(text):
        req = part.strip()
        if not req:
            raise ValueError(f"bad selector {text!r}: empty requirement")
        try:
            requirements.append(_parse_requirement(req))
        except ValueError as e:
            raise ValueError(f"bad selector requirement {req!r}: {e}") from None
    return Selector(tuple(requirements))
