"""The node's pod manager: Hyperion's kubelet.

Owns the set of pods this node runs: it turns the desired set (every Pod object bound
to this node) into ``Runtime.start``/``stop`` calls, watches container states, and
reports each pod as a Kubernetes ``PodStatus`` (through ``publish``) and as kubelet
events (``record_event``). It knows nothing of the mesh, the API server or storage:
the caller filters pods by ``spec.nodeName``, calls ``sync`` and persists what comes
out. It never touches processes itself; that is the runtimes' job.

Theory of operation: ``sync`` is level-triggered and idempotent, keyed by
``metadata.uid``. A runtime calls back on every container state change; the callback
reads the states at once (so a termination followed by ``CrashLoopBackOff`` is seen,
and kept as ``lastState``), emits events for transitions, and marks the pod dirty. A
flush scheduled with ``call_soon`` publishes each dirty pod's status at most once per
loop iteration, and only if it changed.

Restarts in place. ``close`` is the node stopping, not the pods being deleted: it stops
every container, and each pod is then reported by the kubelet's phase rule as if its
containers had exited (``Running`` under ``restartPolicy: Always``, or ``OnFailure``
until one succeeds; ``Failed``/``Succeeded`` under ``Never``), not ready, with status
``reason`` ``NodeShutdown``. When the node starts again, a pod bound to it that still
may run under its restart policy is started again in place, as a kubelet does after a
reboot: the same pod, its ``restartCount`` one more than the last one reported, its
last state kept as ``lastState`` (``Unknown``, exit code 255, when the end of a
container that was running was not seen: the node was killed), its ``startTime`` kept,
and a ``SandboxChanged`` event. A pod that finished under its restart policy
(``Succeeded``, or ``Failed`` under ``Never``/``OnFailure``) is not run again: its Job
controller has counted it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hyperion.api.nodes import rfc3339
from hyperion.runtime.base import (
    NODE_SHUTDOWN,
    ContainerState,
    PodSpec,
    Runtime,
    SpecError,
    pod_spec,
)

log = logging.getLogger(__name__)

Publish = Callable[[str, str, dict[str, Any]], None]
RecordEvent = Callable[[dict[str, Any], str, str, str], None]


class PodHooks(Protocol):
    """Per-pod services the node runs beside a pod's containers (the Dapr sidecar,
    ``hyperion.workplane.sidecar``): ``open`` before its containers first start (a
    ``ValueError`` rejects the pod, its message in the status), ``close`` after they
    have all stopped."""

    async def open(self, pod: dict[str, Any]) -> None: ...

    async def close(self, uid: str) -> None: ...


# Waiting reasons that mean the container could not be created or started: a Warning
# ``Failed`` event, as the kubelet emits for them.
_FAILED_REASONS = frozenset(
    {"CreateContainerConfigError", "CreateContainerError", "ErrImagePull", "InvalidImageName"}
)
_TERMINAL = ("Succeeded", "Failed")


@dataclass(slots=True)
class _Entry:
    """One pod this node runs (or failed to)."""

    obj: dict[str, Any]
    spec: PodSpec | None
    runtime: Runtime | None
    start_time: float
    # Set when the pod cannot be run at all: (reason, message) for every container.
    error: tuple[str, str] | None = None
    container_names: tuple[str, ...] = ()
    images: dict[str, str] = field(default_factory=dict)
    states: dict[str, ContainerState] = field(default_factory=dict)
    last: dict[str, ContainerState] = field(default_factory=dict)  # lastState
    conditions: dict[str, tuple[str, float]] = field(default_factory=dict)  # type -> (s, t)
    stop_task: asyncio.Task[None] | None = None
    stopped: bool = False
    forgotten: bool = False  # left the desired set: stop, publish nothing more
    shutdown: bool = False  # stopped because the node stops, not because it was deleted
    published: dict[str, Any] | None = None
    # A restart in place (the pod ran here before this node restarted): per container,
    # the restartCount reported before plus one, and the lastState reported then.
    restarts_before: dict[str, int] = field(default_factory=dict)
    last_before: dict[str, dict[str, Any]] = field(default_factory=dict)
    start_time_before: str = ""


class PodManager:
    """Runs the pods bound to this node on its runtimes; see the module docstring."""

    def __init__(
        self,
        *,
        node_name: str,
        host_ip: str,
        root: Path,
        runtimes: Mapping[str, Runtime],
        publish: Publish,
        record_event: RecordEvent,
        clock: Callable[[], float] = time.time,
        hooks: PodHooks | None = None,
    ) -> None:
        self.node_name = node_name
        self._hooks = hooks
        self.host_ip = host_ip
        self.root = root
        self._runtimes = dict(runtimes)
        self._publish = publish
        self._record_event = record_event
        self._clock = clock
        self._pods: dict[str, _Entry] = {}
        self._dirty: set[str] = set()
        self._flush_scheduled = False
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------------ the API

    async def sync(self, pods: Iterable[dict[str, Any]]) -> None:
        """Make the running set match ``pods`` (all Pod objects bound to this node)."""
        async with self._lock:
            desired: dict[str, dict[str, Any]] = {}
            for obj in pods:
                meta = obj.get("metadata") if isinstance(obj, dict) else None
                if not isinstance(meta, dict):
                    continue
                ns = meta.get("namespace") or "default"
                uid = str(meta.get("uid") or f"{ns}/{meta.get('name')}")  # as pod_spec
                desired[uid] = obj
            for uid, e in list(self._pods.items()):
                current = desired.get(uid)
                if current is None:
                    e.forgotten = True
                    self._begin_stop(uid, e, None)
                    if e.stopped:
                        del self._pods[uid]
                    continue
                e.obj = current
                meta = current["metadata"]
                if meta.get("deletionTimestamp"):
                    self._begin_stop(uid, e, meta.get("deletionGracePeriodSeconds"))
            for uid, obj in desired.items():
                if uid in self._pods or obj["metadata"].get("deletionTimestamp"):
                    continue
                if finished(obj):
                    continue  # ran to its end here before this node restarted
                await self._admit(uid, obj)
            self._schedule_flush()

    def status(self, uid: str) -> dict[str, Any]:
        """The Kubernetes PodStatus of pod ``uid`` ({} for a pod this node lacks)."""
        e = self._pods.get(uid)
        return {} if e is None else self._status(e)

    def workloads(self) -> dict[int, tuple[str, str]]:
        """The main pid of each running container that is a host process (the
        ``process`` runtime's ``process://<pid>``) -> its pod's (namespace, service
        account: ``spec.serviceAccountName``, else ``default``), for the Workload API's
        attestation (``hyperion.net.workload_api``)."""
        out: dict[int, tuple[str, str]] = {}
        for e in self._pods.values():
            if e.stopped or e.spec is None or e.runtime is None:
                continue
            spec = e.obj.get("spec")
            spec = spec if isinstance(spec, dict) else {}
            sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
            for s in e.runtime.states(e.spec.uid):
                scheme, _, pid = s.container_id.partition("://")
                if s.state == "running" and scheme == "process" and pid.isdigit():
                    out[int(pid)] = (e.spec.namespace, str(sa))
        return out

    def host_port(self, uid: str, container_port: int) -> int | None:
        """The host port the runtime gave ``container_port`` of pod ``uid`` (None: no
        running container of it declares that port)."""
        e = self._pods.get(uid)
        if e is None or e.spec is None or e.runtime is None:
            return None
        for s in e.runtime.states(e.spec.uid):
            for _, cport, hport in s.ports:
                if cport == container_port:
                    return hport
        return None

    async def _close_hooks(self, uid: str) -> None:
        if self._hooks is None:
            return
        try:
            await self._hooks.close(uid)
        except Exception:
            log.exception("closing the services of pod %s", uid)

    def stopped(self, uid: str) -> bool:
        """Whether pod ``uid`` was stopped and all its containers have exited (so its
        object may be finally deleted); False for pods this node does not know."""
        e = self._pods.get(uid)
        return e is not None and e.stopped

    async def close(self) -> None:
        """The node stops: stop every pod (each with its own grace period) and report
        it as stopped with its node, not deleted (see "Restarts in place" above)."""
        async with self._lock:
            for uid, e in self._pods.items():
                if e.stop_task is None and not e.stopped:
                    e.shutdown = True
                self._begin_stop(uid, e, None)
            tasks = [e.stop_task for e in self._pods.values() if e.stop_task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        self._flush()

    # ---------------------------------------------------------------------- admission

    async def _admit(self, uid: str, obj: dict[str, Any]) -> None:
        now = self._clock()
        try:
            spec = pod_spec(obj, self.root)
        except SpecError as err:
            self._reject(uid, obj, now, "CreateContainerConfigError", str(err))
            return
        runtime = self._runtimes.get(spec.runtime_class)
        if runtime is None:
            message = f'RuntimeClass "{spec.runtime_class}" not found'
            self._reject(uid, obj, now, "CreateContainerConfigError", message, spec)
            return
        e = _Entry(
            obj,
            spec,
            runtime,
            now,
            container_names=tuple(c.name for c in spec.containers),
            images={c.name: c.image for c in spec.containers},
        )
        self._pods[uid] = e
        if _ran_before(e, obj):
            if spec.restart_policy == "Never":
                self._lost_never(uid, e)
                return
            self._event(e, "Normal", "SandboxChanged", _SANDBOX_CHANGED)
        if self._hooks is not None:
            try:
                await self._hooks.open(obj)
            except ValueError as err:
                del self._pods[uid]
                self._reject(uid, obj, now, "CreateContainerConfigError", str(err), spec)
                return
        try:
            await runtime.start(spec, lambda: self._changed(uid))
        except Exception as err:
            log.exception("runtime %s failed to start %s", runtime.name, spec.key)
            e.runtime = None
            e.stopped = True
            e.error = ("CreateContainerError", f"runtime {runtime.name}: {err}")
            await self._close_hooks(spec.uid)
            self._event(e, "Warning", "Failed", f"Error: {e.error[1]}")
        self._changed(uid)

    def _lost_never(self, uid: str, e: _Entry) -> None:
        """A ``restartPolicy: Never`` pod that was running here when the node went away
        (its end was not seen): it is not run again but reported ``Failed``, as the
        kubelet reports a container it cannot find."""
        e.runtime = None
        e.stopped = True
        for name in e.container_names:
            if name in e.restarts_before:
                e.restarts_before[name] -= 1  # not restarted
            e.states[name] = ContainerState(
                name,
                "terminated",
                "ContainerStatusUnknown",
                "The container could not be located when the pod was terminated",
                exit_code=137,
            )
        e.last_before.clear()
        self._dirty.add(uid)

    def _reject(
        self,
        uid: str,
        obj: dict[str, Any],
        now: float,
        reason: str,
        message: str,
        spec: PodSpec | None = None,
    ) -> None:
        raw = (obj.get("spec") or {}).get("containers") if isinstance(obj, dict) else None
        raw = raw if isinstance(raw, list) else []
        named = [c for c in raw if isinstance(c, dict) and isinstance(c.get("name"), str)]
        e = _Entry(
            obj,
            spec,
            None,
            now,
            error=(reason, message),
            container_names=tuple(c["name"] for c in named),
            images={c["name"]: str(c.get("image") or "") for c in named},
        )
        e.stopped = True  # nothing runs, so nothing to stop
        self._pods[uid] = e
        self._event(e, "Warning", "Failed", f"Error: {message}")
        self._dirty.add(uid)

    # ------------------------------------------------------------------------ stopping

    def _begin_stop(self, uid: str, e: _Entry, grace: object) -> None:
        if e.stop_task is not None or e.stopped:
            return
        assert e.spec is not None and e.runtime is not None
        grace_s = (
            float(grace)
            if isinstance(grace, (int, float)) and not isinstance(grace, bool) and grace >= 0
            else e.spec.grace_s
        )
        for name, s in e.states.items():
            if s.state == "running":
                self._event(e, "Normal", "Killing", f"Stopping container {name}")
        e.stop_task = asyncio.create_task(self._stop(uid, e, grace_s))

    async def _stop(self, uid: str, e: _Entry, grace_s: float) -> None:
        assert e.spec is not None and e.runtime is not None
        try:
            await e.runtime.stop(e.spec.uid, grace_s)
        except Exception:
            log.exception("runtime %s failed to stop %s", e.runtime.name, e.spec.key)
        await self._close_hooks(e.spec.uid)
        self._read_states(e)
        e.stopped = True
        if e.forgotten and self._pods.get(uid) is e:
            del self._pods[uid]
        else:
            self._dirty.add(uid)
            self._schedule_flush()

    # ------------------------------------------------------------- watching containers

    def _changed(self, uid: str) -> None:
        """A runtime's ``on_change``: never raises."""
        e = self._pods.get(uid)
        if e is None:
            return
        try:
            self._read_states(e)
        except Exception:
            log.exception("reading container states of %s", uid)
        self._dirty.add(uid)
        self._schedule_flush()

    def _read_states(self, e: _Entry) -> None:
        if e.runtime is None or e.spec is None:
            return
        for s in e.runtime.states(e.spec.uid):
            before = e.states.get(s.name)
            e.states[s.name] = s
            if s.state == "terminated":
                e.last[s.name] = s
            if before is not None and _same(before, s):
                continue
            self._transition_events(e, s)

    def _transition_events(self, e: _Entry, s: ContainerState) -> None:
        if s.state == "running":
            self._event(e, "Normal", "Created", f"Created container {s.name}")
            self._event(e, "Normal", "Started", f"Started container {s.name}")
        elif s.state == "waiting" and s.reason == "CrashLoopBackOff":
            assert e.spec is not None
            self._event(
                e,
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {s.name} in pod "
                f"{e.spec.name}_{e.spec.namespace}({e.spec.uid})",
            )
        elif s.state == "waiting" and s.reason in _FAILED_REASONS:
            self._event(e, "Warning", "Failed", f"Error: {s.message or s.reason}")

    def _event(self, e: _Entry, type_: str, reason: str, message: str) -> None:
        try:
            self._record_event(e.obj, type_, reason, message)
        except Exception:
            log.exception("record_event %s %s raised", reason, message)

    # ---------------------------------------------------------------------- publishing

    def _schedule_flush(self) -> None:
        if self._flush_scheduled or not self._dirty:
            return
        self._flush_scheduled = True
        asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, set()
        for uid in sorted(dirty):
            e = self._pods.get(uid)
            if e is None or e.forgotten:
                continue
            status = self._status(e)
            if status == e.published:
                continue
            e.published = status
            meta = e.obj.get("metadata") or {}
            try:
                self._publish(str(meta.get("namespace") or "default"), str(meta["name"]), status)
            except Exception:
                log.exception("publish status of %s raised", uid)

    # ------------------------------------------------------------------ the PodStatus

    def _status(self, e: _Entry) -> dict[str, Any]:
        statuses = [self._container_status(e, name) for name in e.container_names]
        phase = self._phase(e)
        all_ready = bool(statuses) and all(c["ready"] for c in statuses)
        unready = [c["name"] for c in statuses if not c["ready"]]
        if phase in ("Succeeded", "Failed"):
            ready = ("False", "PodCompleted", "")
        elif all_ready:
            ready = ("True", "", "")
        else:
            message = f"containers with unready status: [{' '.join(unready)}]"
            ready = ("False", "ContainersNotReady", message)
        conditions = [
            self._condition(e, "PodScheduled", ("True", "", "")),
            self._condition(e, "Initialized", ("True", "", "")),
            self._condition(e, "ContainersReady", ready),
            self._condition(e, "Ready", ready),
        ]
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": self.host_ip,
            "hostIPs": [{"ip": self.host_ip}],
            "podIP": self.host_ip,
            "podIPs": [{"ip": self.host_ip}],
            "startTime": rfc3339(e.start_time),
            "containerStatuses": statuses,
        }
        if e.start_time_before:
            status["startTime"] = e.start_time_before
        if e.error is not None:
            status["message"] = e.error[1]
            status["reason"] = e.error[0]
        elif e.shutdown:
            status["reason"] = NODE_SHUTDOWN
            status["message"] = (
                f"Node {self.node_name} was stopped"
                if phase in _TERMINAL
                else f"Node {self.node_name} was stopped; the pod restarts when it is back"
            )
        return status

    def _condition(self, e: _Entry, type_: str, value: tuple[str, str, str]) -> dict[str, Any]:
        status, reason, message = value
        prev = e.conditions.get(type_)
        if prev is None or prev[0] != status:
            e.conditions[type_] = prev = (status, self._clock())
        c: dict[str, Any] = {
            "type": type_,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": rfc3339(prev[1]),
        }
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message
        return c

    def _container_status(self, e: _Entry, name: str) -> dict[str, Any]:
        s = e.states.get(name)
        if e.error is not None:
            s = ContainerState(name, "waiting", e.error[0], e.error[1])
        elif s is None:
            s = ContainerState(name, "waiting", "ContainerCreating")
        image = e.images.get(name, "") or s.image
        runtime = s.container_id.split("://", 1)[0] if s.container_id else "process"
        out: dict[str, Any] = {
            "name": name,
            "image": image,
            # Kubernetes requires an imageID; a host process has no image digest.
            "imageID": f"{runtime}://{image or name}",
            "ready": s.ready,
            "started": s.state == "running",
            "restartCount": s.restart_count + e.restarts_before.get(name, 0),
            "state": _state(s),
            "lastState": {},
        }
        if s.container_id:
            out["containerID"] = s.container_id
        last = e.last.get(name)
        if last is not None and s.state != "terminated":
            out["lastState"] = _state(last)
        elif last is None and name in e.last_before:
            out["lastState"] = e.last_before[name]
        return out

    def _phase(self, e: _Entry) -> str:
        """Kubernetes' rule (kubelet ``getPhase``), counting a waiting container that
        has run before (here, or before this node restarted) as stopped; a stopped
        (deleted) pod ends Succeeded or Failed."""
        if e.error is not None or e.spec is None:
            return "Pending"
        waiting = running = stopped = succeeded = 0
        for name in e.container_names:
            s = e.states.get(name)
            if s is not None and s.state == "running":
                running += 1
                continue
            if s is not None and (s.state == "terminated" or name in e.last):
                final = s if s.state == "terminated" else e.last[name]
                stopped += 1
                succeeded += final.exit_code == 0
            elif name in e.last_before:  # ran before this node restarted
                stopped += 1
                succeeded += e.last_before[name]["terminated"].get("exitCode") == 0
            else:
                waiting += 1
        if waiting:
            return "Pending"
        if running:
            return "Running"
        terminal = (e.stopped and not e.shutdown) or e.spec.restart_policy == "Never"
        if e.spec.restart_policy == "OnFailure" and succeeded == stopped:
            terminal = True
        if not terminal:
            return "Running"
        return "Succeeded" if succeeded == stopped else "Failed"


_SANDBOX_CHANGED = "Pod sandbox changed, it will be killed and re-created."


def finished(pod: dict[str, Any]) -> bool:
    """Whether ``pod`` ran to its end under its restart policy, so that it is never run
    again: ``Succeeded``, or ``Failed`` unless ``restartPolicy`` is ``Always`` (a
    kubelet never reports that: it is an older node's report of a stop, and such a pod
    is restarted like any other)."""
    status = pod.get("status")
    phase = status.get("phase") if isinstance(status, dict) else None
    if phase == "Succeeded":
        return True
    spec = pod.get("spec")
    policy = (spec.get("restartPolicy") if isinstance(spec, dict) else None) or "Always"
    return phase == "Failed" and policy != "Always"


def _ran_before(e: _Entry, obj: dict[str, Any]) -> bool:
    """Take over what this node reported of ``obj`` before it restarted (see "Restarts
    in place"); True if a container of it had started here."""
    status = obj.get("status")
    if not isinstance(status, dict):
        return False
    ran = False
    for cs in status.get("containerStatuses") or []:
        if not isinstance(cs, dict) or cs.get("name") not in e.container_names:
            continue
        state = cs.get("state")
        state = state if isinstance(state, dict) else {}
        running, terminated = state.get("running"), state.get("terminated")
        last = cs.get("lastState")
        last = last if isinstance(last, dict) else {}
        if not isinstance(terminated, dict) and not isinstance(running, dict):
            terminated = last.get("terminated")  # waiting to restart, or never started
            if not isinstance(terminated, dict):
                continue
        name, count = str(cs["name"]), cs.get("restartCount")
        ran = True
        before = count if isinstance(count, int) and not isinstance(count, bool) else 0
        e.restarts_before[name] = max(0, before) + 1
        if isinstance(terminated, dict):
            e.last_before[name] = {"terminated": terminated}
        else:  # it was running when the node went away: its end was not seen
            assert isinstance(running, dict)
            unseen: dict[str, Any] = {"exitCode": 255, "reason": "Unknown"}
            if isinstance(running.get("startedAt"), str):
                unseen["startedAt"] = running["startedAt"]
            e.last_before[name] = {"terminated": unseen}
    if ran and isinstance(status.get("startTime"), str):
        e.start_time_before = status["startTime"]
    return ran


def _same(a: ContainerState, b: ContainerState) -> bool:
    """Whether two states are the same event-wise (a new run is a new event)."""
    return (a.state, a.reason, a.restart_count, a.started_at) == (
        b.state,
        b.reason,
        b.restart_count,
        b.started_at,
    )


def _state(s: ContainerState) -> dict[str, Any]:
    if s.state == "running":
        return {"running": {"startedAt": _time(s.started_at)}}
    if s.state == "terminated":
        t: dict[str, Any] = {
            "exitCode": s.exit_code if s.exit_code is not None else 0,
            "reason": s.reason,
            "startedAt": _time(s.started_at),
            "finishedAt": _time(s.finished_at),
        }
        if s.message:
            t["message"] = s.message
        if s.container_id:
            t["containerID"] = s.container_id
        return {"terminated": t}
    w: dict[str, Any] = {"reason": s.reason}
    if s.message:
        w["message"] = s.message
    return {"waiting": w}


def _time(t: float | None) -> str | None:
    return None if t is None else rfc3339(t)
