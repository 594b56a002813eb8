"""Server-side printing: the ``meta.k8s.io/v1`` ``Table`` that ``kubectl get`` renders.

Owns the columns of each served type and how a row is computed from an object, as the
Kubernetes API server's printers compute them (pkg/printers/internalversion): pod
READY/STATUS/RESTARTS (waiting and terminated reasons, ``Init:`` states, Completed,
Terminating), service TYPE/CLUSTER-IP/EXTERNAL-IP/PORT(S), node STATUS/ROLES,
deployment READY/UP-TO-DATE/AVAILABLE, job STATUS/COMPLETIONS/DURATION, event LAST
SEEN/OBJECT, and the human AGE (``5s``, ``3m2s``, ``4h``, ``2d``) of
``duration.HumanDuration``. Column names are Kubernetes' (``Cluster-IP``,
``Up-to-date``); kubectl upper-cases them. Columns of priority 1 appear with
``-o wide`` only.

Pure: the time is an argument (``now``, Unix seconds), objects are read, never
modified; a field of the wrong type prints as if absent. Never raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
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
    SERVICES,
    STATEFULSETS,
    ResourceType,
)

INCLUDE_NONE: Final = "None"
INCLUDE_METADATA: Final = "Metadata"
INCLUDE_OBJECT: Final = "Object"

# --------------------------------------------------------------------------- values


def _get(obj: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(p)
    return obj


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _dicts(v: Any) -> list[dict[str, Any]]:
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def parse_time(text: Any) -> float | None:
    """Unix seconds of an RFC 3339 timestamp (``2024-05-01T10:00:00Z``), or None."""
    if not isinstance(text, str) or not text or len(text) > 64:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        return None
    return t.timestamp()


def human_duration(seconds: float) -> str:
    """A duration as Kubernetes prints it (``duration.HumanDuration``)."""
    if not math.isfinite(seconds):
        return "<invalid>"
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def _since(timestamp: Any, now: float) -> str:
    t = parse_time(timestamp)
    return "<unknown>" if t is None else human_duration(now - t)


def _age(obj: Any, now: float) -> str:
    return _since(_get(obj, "metadata", "creationTimestamp"), now)


def format_labels(labels: Any) -> str:
    """``k=v,k2=v2`` sorted by key (``labels.FormatLabels``); ``<none>`` if empty."""
    if not isinstance(labels, dict) or not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items(), key=lambda kv: str(kv[0])))


def format_label_selector(selector: Any) -> str:
    """A LabelSelector as Kubernetes prints it: ``app=web,tier in (a,b)``."""
    if not isinstance(selector, dict):
        return "<none>"
    reqs: list[tuple[str, str]] = []
    match = selector.get("matchLabels")
    if isinstance(match, dict):
        reqs.extend((str(k), f"{k}={v}") for k, v in match.items())
    for e in _dicts(selector.get("matchExpressions")):
        key, op = str(e.get("key", "")), e.get("operator")
        values = (
            sorted(str(v) for v in e.get("values") or [] if isinstance(v, str))
            if (isinstance(e.get("values"), list))
            else []
        )
        if op == "In":
            reqs.append((key, f"{key} in ({','.join(values)})"))
        elif op == "NotIn":
            reqs.append((key, f"{key} notin ({','.join(values)})"))
        elif op == "Exists":
            reqs.append((key, key))
        elif op == "DoesNotExist":
            reqs.append((key, f"!{key}"))
        else:
            return "<invalid>"
    if not reqs:
        return "<none>"
    return ",".join(text for _, text in sorted(reqs))


def _containers(spec: Any) -> tuple[str, str]:
    containers = _dicts(_get(spec, "containers"))
    return (
        ",".join(_str(c.get("name")) for c in containers),
        ",".join(_str(c.get("image")) for c in containers),
    )


# --------------------------------------------------------------------------- columns

_NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_AGE_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
_CONTAINERS_DOC = "Names of each container in the template."
_IMAGES_DOC = "Images referenced by each container in the template."


def _col(
    name: str, description: str, *, type_: str = "string", fmt: str = "", priority: int = 0
) -> dict[str, Any]:
    return {
        "name": name,
        "type": type_,
        "format": fmt,
        "description": description,
        "priority": priority,
    }


_NAME = _col("Name", _NAME_DOC, fmt="name")
_AGE = _col("Age", _AGE_DOC)

_COLUMNS: Mapping[str, tuple[dict[str, Any], ...]] = MappingProxyType(
    {
        PODS.key_resource: (
            _NAME,
            _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
            _col("Status", "The aggregate status of the containers in this pod."),
            _col(
                "Restarts",
                "The number of times the containers in this pod have been "
                "restarted and when the last container in this pod has restarted.",
            ),
            _AGE,
            _col(
                "IP",
                "podIP address allocated to the pod. Routable at least within the "
                "cluster. Empty if not yet allocated.",
                priority=1,
            ),
            _col("Node", "NodeName indicates in which node this pod is scheduled.", priority=1),
            _col(
                "Nominated Node",
                "nominatedNodeName is set only when this pod preempts other pods on the node.",
                priority=1,
            ),
            _col(
                "Readiness Gates",
                "If specified, all readiness gates will be evaluated for pod readiness.",
                priority=1,
            ),
        ),
        SERVICES.key_resource: (
            _NAME,
            _col("Type", "type determines how the Service is exposed."),
            _col(
                "Cluster-IP",
                "clusterIP is the IP address of the service and is usually assigned randomly.",
            ),
            _col(
                "External-IP",
                "externalIPs is a list of IP addresses for which nodes in the "
                "cluster will also accept traffic for this service.",
            ),
            _col("Port(s)", "The list of ports that are exposed by this service."),
            _AGE,
            _col(
                "Selector",
                "Route service traffic to pods with label keys and values matching this selector.",
                priority=1,
            ),
        ),
        NODES.key_resource: (
            _NAME,
            _col("Status", "The status of the node"),
            _col("Roles", "The roles of the node"),
            _AGE,
            _col("Version", "Kubelet Version reported by the node."),
            _col("Internal-IP", "List of addresses reachable to the node.", priority=1),
            _col("External-IP", "List of addresses reachable to the node.", priority=1),
            _col(
                "OS-Image",
                "OS Image reported by the node from /etc/os-release (e.g. Debian "
                "GNU/Linux 7 (wheezy)).",
                priority=1,
            ),
            _col(
                "Kernel-Version",
                "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
                priority=1,
            ),
            _col(
                "Container-Runtime",
                "ContainerRuntime Version reported by the node through "
                "runtime remote API (e.g. containerd://1.4.2).",
                priority=1,
            ),
        ),
        NAMESPACES.key_resource: (
            _NAME,
            _col("Status", "The status of the namespace"),
            _AGE,
        ),
        EVENTS.key_resource: (
            _col(
                "Last Seen",
                "The time at which the most recent occurrence of this event was recorded.",
            ),
            _col(
                "Type",
                "Type of this event (Normal, Warning), new types could be added in the future",
            ),
            _col(
                "Reason",
                "This should be a short, machine understandable string that gives "
                "the reason for the transition into the object's current status.",
            ),
            _col("Object", "The object that this event is about."),
            _col(
                "Subobject",
                "If referring to a piece of an object instead of an entire "
                "object, this string should contain a valid JSON/Go field access statement.",
                priority=1,
            ),
            _col("Source", "The component reporting this event.", priority=1),
            _col("Message", "A human-readable description of the status of this operation."),
            _col("First Seen", "The time at which the event was first recorded.", priority=1),
            _col("Count", "The number of times this event has occurred.", priority=1),
            _col("Name", _NAME_DOC, fmt="name", priority=1),
        ),
        DEPLOYMENTS.key_resource: (
            _NAME,
            _col("Ready", "Number of the pod with ready state"),
            _col(
                "Up-to-date",
                "Total number of non-terminated pods targeted by this deployment "
                "that have the desired template spec.",
            ),
            _col(
                "Available",
                "Total number of available pods (ready for at least "
                "minReadySeconds) targeted by this deployment.",
            ),
            _AGE,
            _col("Containers", _CONTAINERS_DOC, priority=1),
            _col("Images", _IMAGES_DOC, priority=1),
            _col(
                "Selector",
                "Label selector for pods. Existing ReplicaSets whose pods are "
                "selected by this will be the ones affected by this deployment.",
                priority=1,
            ),
        ),
        STATEFULSETS.key_resource: (
            _NAME,
            _col("Ready", "Number of the pod with ready state"),
            _AGE,
            _col("Containers", _CONTAINERS_DOC, priority=1),
            _col("Images", _IMAGES_DOC, priority=1),
        ),
        JOBS.key_resource: (
            _NAME,
            _col("Status", "Status of the job."),
            _col("Completions", "The number of pods which reached phase Succeeded."),
            _col("Duration", "Time required to complete the job."),
            _AGE,
            _col("Containers", _CONTAINERS_DOC, priority=1),
            _col("Images", _IMAGES_DOC, priority=1),
            _col(
                "Selector", "A label query over pods that should match the pod count.", priority=1
            ),
        ),
        HYPERION_WORKLOADS.key_resource: (
            _NAME,
            _col("Goal", "What placement optimizes: cost, latency or default."),
            _col("Replicas", "Number of desired replicas.", type_="integer"),
            _col("Ready", "Number of ready replicas.", type_="integer"),
            _col("Phase", "Summary of the workload's state."),
            _AGE,
            _col("Clouds", "Clouds the replicas may run in (<any> if unconstrained).", priority=1),
            _col(
                "Geographies",
                "Geographies the replicas may run in (<any> if unconstrained).",
                priority=1,
            ),
        ),
    }
)


def columns(rt: ResourceType) -> list[dict[str, Any]]:
    """The ``columnDefinitions`` of ``rt``'s table: name, type, format, description,
    priority (1 = only with ``-o wide``). Name and Age for a type without printers."""
    return [dict(c) for c in _COLUMNS.get(rt.key_resource, (_NAME, _AGE))]


# --------------------------------------------------------------------------- rows

Row = tuple[list[Any], list[dict[str, str]]]  # cells, row conditions


def _pod_row(pod: dict[str, Any], now: float) -> Row:
    spec, status = pod.get("spec"), pod.get("status")
    restarts = 0
    restartable_init_restarts = 0
    total = len(_dicts(_get(spec, "containers")))
    ready = 0
    last_restart: float | None = None
    last_restartable_init: float | None = None
    phase = _str(_get(status, "phase"))
    reason = _str(_get(status, "reason")) or phase
    for cond in _dicts(_get(status, "conditions")):
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    conditions: list[dict[str, str]] = []
    if phase == "Succeeded":
        conditions = [
            {
                "type": "Completed",
                "status": "True",
                "reason": "Succeeded",
                "message": "The pod has completed successfully.",
            }
        ]
    elif phase == "Failed":
        conditions = [
            {
                "type": "Completed",
                "status": "True",
                "reason": "Failed",
                "message": "The pod failed.",
            }
        ]

    init_specs = {_str(c.get("name")): c for c in _dicts(_get(spec, "initContainers"))}

    def restartable(name: Any) -> bool:
        return bool(_get(init_specs.get(_str(name)), "restartPolicy") == "Always")

    total += sum(1 for c in init_specs.values() if c.get("restartPolicy") == "Always")

    def later(current: float | None, c: dict[str, Any]) -> float | None:
        t = parse_time(_get(c, "lastState", "terminated", "finishedAt"))
        if t is not None and (current is None or t > current):
            return t
        return current

    initializing = False
    init_statuses = _dicts(_get(status, "initContainerStatuses"))
    for i, c in enumerate(init_statuses):
        restarts += _int(c.get("restartCount"))
        last_restart = later(last_restart, c)
        if restartable(c.get("name")):
            restartable_init_restarts += _int(c.get("restartCount"))
            last_restartable_init = later(last_restartable_init, c)
        terminated, waiting = _get(c, "state", "terminated"), _get(c, "state", "waiting")
        if isinstance(terminated, dict) and _int(terminated.get("exitCode")) == 0:
            continue
        if restartable(c.get("name")) and c.get("started") is True:
            if c.get("ready") is True:
                ready += 1
            continue
        if isinstance(terminated, dict):
            if _str(terminated.get("reason")):
                reason = "Init:" + _str(terminated.get("reason"))
            elif _int(terminated.get("signal")):
                reason = f"Init:Signal:{_int(terminated.get('signal'))}"
            else:
                reason = f"Init:ExitCode:{_int(terminated.get('exitCode'))}"
        elif (
            isinstance(waiting, dict)
            and _str(waiting.get("reason"))
            and (waiting.get("reason") != "PodInitializing")
        ):
            reason = "Init:" + _str(waiting.get("reason"))
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    initialized = any(
        c.get("type") == "Initialized" and c.get("status") == "True"
        for c in _dicts(_get(status, "conditions"))
    )
    if not initializing or initialized:
        restarts = restartable_init_restarts
        last_restart = last_restartable_init
        has_running = False
        for c in reversed(_dicts(_get(status, "containerStatuses"))):
            restarts += _int(c.get("restartCount"))
            last_restart = later(last_restart, c)
            state = c.get("state") if isinstance(c.get("state"), dict) else {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if isinstance(waiting, dict) and _str(waiting.get("reason")):
                reason = _str(waiting.get("reason"))
            elif isinstance(terminated, dict) and _str(terminated.get("reason")):
                reason = _str(terminated.get("reason"))
            elif isinstance(terminated, dict):
                signal = _int(terminated.get("signal"))
                reason = (
                    f"Signal:{signal}" if signal else f"ExitCode:{_int(terminated.get('exitCode'))}"
                )
            elif c.get("ready") is True and isinstance(state.get("running"), dict):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in _dicts(_get(status, "conditions"))
            )
            reason = "Running" if pod_ready else "NotReady"

    deleting = _get(pod, "metadata", "deletionTimestamp") not in (None, "")
    if deleting and _get(status, "reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({human_duration(now - last_restart)} ago)"

    ips = _dicts(_get(status, "podIPs"))
    pod_ip = _str(ips[0].get("ip")) if ips else _str(_get(status, "podIP"))
    gates = _dicts(_get(spec, "readinessGates"))
    gates_text = "<none>"
    if gates:
        true_count = 0
        for gate in gates:
            for cond in _dicts(_get(status, "conditions")):
                if cond.get("type") == gate.get("conditionType"):
                    true_count += cond.get("status") == "True"
                    break
        gates_text = f"{true_count}/{len(gates)}"
    cells = [
        _str(_get(pod, "metadata", "name")),
        f"{ready}/{total}",
        reason,
        restarts_text,
        _age(pod, now),
        pod_ip or "<none>",
        _str(_get(spec, "nodeName")) or "<none>",
        _str(_get(status, "nominatedNodeName")) or "<none>",
        gates_text,
    ]
    return cells, conditions


def _service_external_ip(svc: dict[str, Any]) -> str:
    spec: dict[str, Any] = svc["spec"] if isinstance(svc.get("spec"), dict) else {}
    stype = _str(spec.get("type")) or "ClusterIP"
    external = (
        [x for x in spec.get("externalIPs") or [] if isinstance(x, str)]
        if isinstance(spec.get("externalIPs"), list)
        else []
    )
    if stype in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if stype == "LoadBalancer":
        ingress = []
        for i in _dicts(_get(svc, "status", "loadBalancer", "ingress")):
            text = _str(i.get("ip")) or _str(i.get("hostname"))
            if text and text not in ingress:
                ingress.append(text)
        if ingress or external:
            return ",".join(ingress + external)
        return "<pending>"
    if stype == "ExternalName":
        return _str(spec.get("externalName"))
    return "<unknown>"


def _service_row(svc: dict[str, Any], now: float) -> Row:
    spec = svc.get("spec")
    ips = (
        [x for x in _get(spec, "clusterIPs") or [] if isinstance(x, str)]
        if isinstance(_get(spec, "clusterIPs"), list)
        else []
    )
    cluster_ip = ips[0] if ips else (_str(_get(spec, "clusterIP")) or "<none>")
    ports = []
    for p in _dicts(_get(spec, "ports")):
        protocol = _str(p.get("protocol")) or "TCP"
        node_port = _int(p.get("nodePort"))
        ports.append(
            f"{_int(p.get('port'))}:{node_port}/{protocol}"
            if node_port > 0
            else f"{_int(p.get('port'))}/{protocol}"
        )
    cells = [
        _str(_get(svc, "metadata", "name")),
        _str(_get(spec, "type")) or "ClusterIP",
        cluster_ip,
        _service_external_ip(svc),
        ",".join(ports) or "<none>",
        _age(svc, now),
        format_labels(_get(spec, "selector")),
    ]
    return cells, []


def _node_address(node: dict[str, Any], kind: str) -> str:
    for a in _dicts(_get(node, "status", "addresses")):
        if a.get("type") == kind and _str(a.get("address")):
            return _str(a.get("address"))
    return "<none>"


def node_roles(labels: Any) -> list[str]:
    """Roles from ``node-role.kubernetes.io/<role>`` and ``kubernetes.io/role`` labels."""
    roles: set[str] = set()
    if isinstance(labels, dict):
        for k, v in labels.items():
            if isinstance(k, str) and k.startswith("node-role.kubernetes.io/"):
                role = k[len("node-role.kubernetes.io/") :]
                if role:
                    roles.add(role)
            elif k == "kubernetes.io/role" and isinstance(v, str) and v:
                roles.add(v)
    return sorted(roles)


def _node_row(node: dict[str, Any], now: float) -> Row:
    status: list[str] = []
    for c in _dicts(_get(node, "status", "conditions")):
        if c.get("type") == "Ready":
            status = ["Ready" if c.get("status") == "True" else "NotReady"]
    if not status:
        status = ["Unknown"]
    if _get(node, "spec", "unschedulable") is True:
        status.append("SchedulingDisabled")
    info = _get(node, "status", "nodeInfo")
    cells = [
        _str(_get(node, "metadata", "name")),
        ",".join(status),
        ",".join(node_roles(_get(node, "metadata", "labels"))) or "<none>",
        _age(node, now),
        _str(_get(info, "kubeletVersion")),
        _node_address(node, "InternalIP"),
        _node_address(node, "ExternalIP"),
        _str(_get(info, "osImage")) or "<unknown>",
        _str(_get(info, "kernelVersion")) or "<unknown>",
        _str(_get(info, "containerRuntimeVersion")) or "<unknown>",
    ]
    return cells, []


def _namespace_row(ns: dict[str, Any], now: float) -> Row:
    return [
        _str(_get(ns, "metadata", "name")),
        _str(_get(ns, "status", "phase")),
        _age(ns, now),
    ], []


def _event_row(ev: dict[str, Any], now: float) -> Row:
    first = ev.get("firstTimestamp")
    first_text = (
        _since(first, now) if parse_time(first) is not None else _since(ev.get("eventTime"), now)
    )
    last = ev.get("lastTimestamp")
    last_text = _since(last, now) if parse_time(last) is not None else first_text
    count = _int(ev.get("count"))
    series = ev.get("series")
    if isinstance(series, dict):
        last_text = _since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1
    involved: dict[str, Any] = (
        ev["involvedObject"] if isinstance(ev.get("involvedObject"), dict) else {}
    )
    kind, name = _str(involved.get("kind")).lower(), _str(involved.get("name"))
    target = f"{kind}/{name}" if name else kind
    component = _str(_get(ev, "source", "component")) or _str(ev.get("reportingComponent"))
    host = _str(_get(ev, "source", "host")) or _str(ev.get("reportingInstance"))
    source = f"{component}, {host}" if host else component
    cells = [
        last_text,
        _str(ev.get("type")),
        _str(ev.get("reason")),
        target,
        _str(involved.get("fieldPath")),
        source,
        _str(ev.get("message")).strip(),
        first_text,
        count,
        _str(_get(ev, "metadata", "name")),
    ]
    return cells, []


def _deployment_row(d: dict[str, Any], now: float) -> Row:
    spec, status = d.get("spec"), d.get("status")
    names, images = _containers(_get(spec, "template", "spec"))
    cells = [
        _str(_get(d, "metadata", "name")),
        f"{_int(_get(status, 'readyReplicas'))}/{_int(_get(spec, 'replicas'))}",
        _int(_get(status, "updatedReplicas")),
        _int(_get(status, "availableReplicas")),
        _age(d, now),
        names,
        images,
        format_label_selector(_get(spec, "selector")),
    ]
    return cells, []


def _statefulset_row(s: dict[str, Any], now: float) -> Row:
    spec = s.get("spec")
    names, images = _containers(_get(spec, "template", "spec"))
    ready = f"{_int(_get(s, 'status', 'readyReplicas'))}/{_int(_get(spec, 'replicas'))}"
    return [_str(_get(s, "metadata", "name")), ready, _age(s, now), names, images], []


def _job_condition(status: Any, kind: str) -> bool:
    for c in _dicts(_get(status, "conditions")):
        if c.get("type") == kind:
            return c.get("status") == "True"
    return False


def _job_row(job: dict[str, Any], now: float) -> Row:
    spec, status = job.get("spec"), job.get("status")
    succeeded = _int(_get(status, "succeeded"))
    completions = _get(spec, "completions")
    if isinstance(completions, int) and not isinstance(completions, bool):
        completions_text = f"{succeeded}/{completions}"
    else:
        parallelism = _int(_get(spec, "parallelism"))
        completions_text = (
            f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"
        )
    start, end = parse_time(_get(status, "startTime")), parse_time(_get(status, "completionTime"))
    if start is None:
        duration = ""
    elif end is None:
        duration = human_duration(now - start)
    else:
        duration = human_duration(end - start)
    if _job_condition(status, "Complete"):
        state = "Complete"
    elif _job_condition(status, "Failed"):
        state = "Failed"
    elif _get(job, "metadata", "deletionTimestamp") not in (None, ""):
        state = "Terminating"
    elif _job_condition(status, "Suspended"):
        state = "Suspended"
    elif _job_condition(status, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    names, images = _containers(_get(spec, "template", "spec"))
    cells = [
        _str(_get(job, "metadata", "name")),
        state,
        completions_text,
        duration,
        _age(job, now),
        names,
        images,
        format_label_selector(_get(spec, "selector")),
    ]
    return cells, []


def _constraint(values: Any) -> str:
    items = [v for v in values if isinstance(v, str)] if isinstance(values, list) else []
    return ",".join(items) if items else "<any>"


def _hwl_row(w: dict[str, Any], now: float) -> Row:
    spec, status = w.get("spec"), w.get("status")
    replicas = _get(spec, "replicas")
    phase = _get(status, "phase")
    cells = [
        _str(_get(w, "metadata", "name")),
        _str(_get(spec, "policy", "goal")) or "default",
        _int(replicas) if replicas is not None else 1,
        _int(_get(status, "readyReplicas")),
        phase if isinstance(phase, str) and phase else None,
        _age(w, now),
        _constraint(_get(spec, "policy", "constraints", "clouds")),
        _constraint(_get(spec, "policy", "constraints", "geographies")),
    ]
    return cells, []


def _default_row(obj: dict[str, Any], now: float) -> Row:
    return [_str(_get(obj, "metadata", "name")), _age(obj, now)], []


_ROWS: Mapping[str, Callable[[dict[str, Any], float], Row]] = MappingProxyType(
    {
        PODS.key_resource: _pod_row,
        SERVICES.key_resource: _service_row,
        NODES.key_resource: _node_row,
        NAMESPACES.key_resource: _namespace_row,
        EVENTS.key_resource: _event_row,
        DEPLOYMENTS.key_resource: _deployment_row,
        STATEFULSETS.key_resource: _statefulset_row,
        JOBS.key_resource: _job_row,
        HYPERION_WORKLOADS.key_resource: _hwl_row,
    }
)


def row_cells(rt: ResourceType, obj: Any, *, now: float) -> list[Any]:
    """The cells of one object's row, one per column of ``columns(rt)``."""
    return _row(rt, obj, now)[0]


def _row(rt: ResourceType, obj: Any, now: float) -> Row:
    if not isinstance(obj, dict):
        obj = {}
    return _ROWS.get(rt.key_resource, _default_row)(obj, now)


def _partial(obj: Any) -> dict[str, Any]:
    """The row's ``PartialObjectMetadata``. Unlike Kubernetes, without ``managedFields``:
    no Table reader uses them and they are half the bytes of a long list."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if isinstance(meta, dict) and "managedFields" in meta:
        meta = {k: v for k, v in meta.items() if k != "managedFields"}
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta if isinstance(meta, dict) else {},
    }


def table(
    rt: ResourceType,
    objs: Iterable[Any],
    *,
    now: float,
    include_object: str = INCLUDE_METADATA,
    resource_version: str = "",
    continue_: str = "",
) -> dict[str, Any]:
    """The ``Table`` for ``objs`` (a list, or the one object of a get).

    ``include_object`` is the ``includeObject`` parameter of the Accept header:
    ``None`` (no object), ``Metadata`` (a ``PartialObjectMetadata``, the default) or
    ``Object`` (the object itself). Rows carry Kubernetes' row conditions (a completed
    pod is ``Completed``). Objects are referenced, not copied.
    """
    rows = []
    for obj in objs:
        cells, conditions = _row(rt, obj, now)
        row: dict[str, Any] = {"cells": cells}
        if conditions:
            row["conditions"] = conditions
        if include_object == INCLUDE_OBJECT:
            row["object"] = obj
        elif include_object == INCLUDE_NONE:
            row["object"] = None
        else:
            row["object"] = _partial(obj)
        rows.append(row)
    metadata: dict[str, Any] = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_:
        metadata["continue"] = continue_
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns(rt),
        "rows": rows,
    }


# Sanity: every printer fills every column.
assert all(len(_COLUMNS[k]) == len(_ROWS[k]({}, 0.0)[0]) for k in _ROWS)
