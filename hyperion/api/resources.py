"""The resource types the Kubernetes-compatible API serves (DESIGN §10).

Owns the static table of served resources: group, version, plural, kind, scope, the
short names, categories, subresources and verbs that discovery advertises, as a real
API server (v1.31) advertises them for the built-in types, and the CRD-style
``hyperion.io/v1alpha1`` ``HyperionWorkload``. Pure data and lookups: no I/O, no
state; the schema, printing and patch modules key their per-type tables on
``ResourceType.key_resource``.
"""

from __future__ import annotations

from dataclasses import dataclass

# Verbs in the order discovery lists them (alphabetical, as the API server sorts them).
VERBS_ALL = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
# Namespaces cannot be deleted as a collection (the namespace controller owns that).
VERBS_NO_DELETECOLLECTION = ("create", "delete", "get", "list", "patch", "update", "watch")

CORE_GROUP = ""
HYPERION_GROUP = "hyperion.io"


@dataclass(frozen=True, slots=True)
class ResourceType:
    """One served resource, as discovery (``APIResourceList``) describes it.

    ``group`` is "" for the core group. ``subresources`` names the subresources we
    serve (``status``, ``scale``, ``log``); ``verbs`` are those of the main resource.
    """

    group: str
    version: str
    plural: str
    kind: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = VERBS_ALL

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, ``<group>/<version>`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key_resource(self) -> str:
        """``<group>/<plural>``: ``/pods``, ``apps/deployments``; unique per resource."""
        return f"{self.group}/{self.plural}"

    @property
    def list_kind(self) -> str:
        """The kind of a list of these objects: ``PodList``."""
        return self.kind + "List"

    @property
    def is_custom(self) -> bool:
        """Served as a custom resource (CRD semantics: no strategic merge patch)."""
        return self.group == HYPERION_GROUP


NAMESPACES = ResourceType(
    CORE_GROUP,
    "v1",
    "namespaces",
    "Namespace",
    "namespace",
    namespaced=False,
    short_names=("ns",),
    subresources=("status",),
    verbs=VERBS_NO_DELETECOLLECTION,
)
PODS = ResourceType(
    CORE_GROUP,
    "v1",
    "pods",
    "Pod",
    "pod",
    namespaced=True,
    short_names=("po",),
    categories=("all",),
    subresources=("status", "log"),
)
SERVICES = ResourceType(
    CORE_GROUP,
    "v1",
    "services",
    "Service",
    "service",
    namespaced=True,
    short_names=("svc",),
    categories=("all",),
    subresources=("status",),
)
NODES = ResourceType(
    CORE_GROUP,
    "v1",
    "nodes",
    "Node",
    "node",
    namespaced=False,
    short_names=("no",),
    subresources=("status",),
)
EVENTS = ResourceType(
    CORE_GROUP, "v1", "events", "Event", "event", namespaced=True, short_names=("ev",)
)
DEPLOYMENTS = ResourceType(
    "apps",
    "v1",
    "deployments",
    "Deployment",
    "deployment",
    namespaced=True,
    short_names=("deploy",),
    categories=("all",),
    subresources=("status", "scale"),
)
STATEFULSETS = ResourceType(
    "apps",
    "v1",
    "statefulsets",
    "StatefulSet",
    "statefulset",
    namespaced=True,
    short_names=("sts",),
    categories=("all",),
    subresources=("status", "scale"),
)
JOBS = ResourceType(
    "batch",
    "v1",
    "jobs",
    "Job",
    "job",
    namespaced=True,
    categories=("all",),
    subresources=("status",),
)
HYPERION_WORKLOADS = ResourceType(
    HYPERION_GROUP,
    "v1alpha1",
    "hyperionworkloads",
    "HyperionWorkload",
    "hyperionworkload",
    namespaced=True,
    short_names=("hwl",),
    categories=("hyperion",),
    subresources=("status", "scale"),
)

RESOURCES: tuple[ResourceType, ...] = (
    NAMESPACES,
    PODS,
    SERVICES,
    NODES,
    EVENTS,
    DEPLOYMENTS,
    STATEFULSETS,
    JOBS,
    HYPERION_WORKLOADS,
)

_BY_GVR = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_GVK = {(r.api_version, r.kind): r for r in RESOURCES}
assert len(_BY_GVR) == len(_BY_GVK) == len(RESOURCES)


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    """The served resource ``group/version/plural``, or None."""
    return _BY_GVR.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    """The served resource of ``kind`` in ``api_version`` (``v1``, ``apps/v1``), or None."""
    return _BY_GVK.get((api_version, kind))


def group_versions() -> tuple[tuple[str, str], ...]:
    """The served (group, version) pairs, core first, in a stable order."""
    seen: dict[tuple[str, str], None] = {}
    for r in RESOURCES:
        seen.setdefault((r.group, r.version), None)
    return tuple(seen)
