"""The contract between a node's pod manager and the runtimes that run containers.

Owns the runtime-neutral description of a pod to run (``PodSpec``/``ContainerSpec``,
parsed once from a Kubernetes Pod object by ``pod_spec``), the observed state of one
container (``ContainerState``), and the ``Runtime`` protocol that ``process`` and
``podman`` implement. Parsing is pure; a bad pod raises ``SpecError`` whose message
names the field (``spec.containers[0].command: required by the process runtime``), so
the pod manager can put it in a status condition.

Layout on disk: a pod's directory is ``ROOT/<namespace>/<name>/``; container ``c``
logs to ``ROOT/<namespace>/<name>/<c>.log`` (what ``kubectl logs`` reads) and the
process runtime runs it in ``ROOT/<namespace>/<name>/<c>/`` unless ``workingDir`` is
given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DEFAULT_RUNTIME = "process"
DEFAULT_GRACE_S = 30.0
MAX_CONTAINERS = 16
# The ``status.reason`` of a pod stopped because its node stopped cleanly (not deleted):
# the node restarts it in place when it is back (``pods``), and custodians wait for
# that before replacing it (``hyperion.control.custodian``).
NODE_SHUTDOWN = "NodeShutdown"


class SpecError(ValueError):
    """A pod cannot be run as written; the message names the field."""


def _no_env() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    name: str
    image: str = ""
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=_no_env)
    working_dir: str = ""
    ports: tuple[tuple[str, int], ...] = ()  # (name or "", containerPort)
    cpu_limit_millis: int | None = None
    memory_limit_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class PodSpec:
    namespace: str
    name: str
    uid: str
    containers: tuple[ContainerSpec, ...]
    restart_policy: str = "Always"
    grace_s: float = DEFAULT_GRACE_S
    runtime_class: str = DEFAULT_RUNTIME
    dir: Path = Path(".")  # ROOT/<namespace>/<name>

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def log_path(self, container: str) -> Path:
        return self.dir / f"{container}.log"


@dataclass(frozen=True, slots=True)
class ContainerState:
    """One container as the runtime sees it, in Kubernetes' terms.

    ``state`` is ``waiting`` (reason e.g. ``ContainerCreating``, ``CrashLoopBackOff``,
    ``ErrImagePull``), ``running`` or ``terminated`` (``exit_code``, reason
    ``Completed``/``Error``/``OOMKilled``). Times are unix seconds.
    """

    name: str
    state: str
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    restart_count: int = 0
    image: str = ""
    container_id: str = ""  # "process://<pid>" or "podman://<id>"
    ports: tuple[tuple[str, int, int], ...] = ()  # (name, containerPort, hostPort)

    @property
    def ready(self) -> bool:
        return self.state == "running"


class Runtime(Protocol):
    """What the pod manager needs from a runtime. All methods run on the event loop.

    ``start`` begins supervising a pod (restarts per its policy) and returns at once;
    ``on_change`` is called whenever a container's state changes. ``stop`` sends
    SIGTERM, waits up to the grace period, then SIGKILLs; it returns when every
    container has exited. ``states`` is the current state of each container.
    """

    name: str

    async def start(self, pod: PodSpec, on_change: Callable[[], None]) -> None: ...

    async def stop(self, uid: str, grace_s: float | None = None) -> None: ...

    def states(self, uid: str) -> list[ContainerState]: ...

    async def close(self) -> None: ...


# --------------------------------------------------------------------------- parsing


_CPU_SCALE = {"": Decimal(1000), "m": Decimal(1)}
_MEM_SCALE = {
    "": Decimal(1),
    **{s: Decimal(1000**i) for i, s in enumerate("kMGTPE", start=1)},
    **{s + "i": Decimal(1024**i) for i, s in enumerate("KMGTPE", start=1)},
}


def _quantity(text: object, path: str, cpu: bool) -> int:
    """A Kubernetes quantity as millicores (``cpu``) or bytes."""
    s = str(text).strip()
    num = s.rstrip("mkMGTPEi")
    suffix = s[len(num) :]
    scale = (_CPU_SCALE if cpu else _MEM_SCALE).get(suffix)
    if cpu and scale is None:
        scale = _MEM_SCALE.get(suffix)
        scale = None if scale is None else scale * 1000
    try:
        value = Decimal(num) * scale if scale is not None and num else None
    except ArithmeticError:
        value = None
    if value is None or not value.is_finite() or value < 0:
        raise SpecError(f"{path}: {s!r} is not a valid quantity")
    return int(value.to_integral_value(rounding="ROUND_CEILING"))


def cpu_millis(text: object, path: str = "cpu") -> int:
    return _quantity(text, path, cpu=True)


def memory_bytes(text: object, path: str = "memory") -> int:
    return _quantity(text, path, cpu=False)


def _dict(x: object) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def pod_spec(pod: Mapping[str, Any], root: Path) -> PodSpec:
    """The runnable description of a Kubernetes Pod object; raises ``SpecError``."""
    meta = _dict(pod.get("metadata"))
    spec = _dict(pod.get("spec"))
    ns, name = str(meta.get("namespace") or "default"), str(meta.get("name") or "")
    if not name:
        raise SpecError("metadata.name: required")
    runtime = str(spec.get("runtimeClassName") or DEFAULT_RUNTIME)
    restart = str(spec.get("restartPolicy") or "Always")
    if restart not in RESTART_POLICIES:
        raise SpecError(f"spec.restartPolicy: {restart!r} is not one of {RESTART_POLICIES}")
    grace = spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_S)
    if not isinstance(grace, (int, float)) or isinstance(grace, bool) or grace < 0:
        raise SpecError("spec.terminationGracePeriodSeconds: must be a non-negative number")
    raw = spec.get("containers")
    if not isinstance(raw, list) or not raw:
        raise SpecError("spec.containers: at least one container is required")
    if len(raw) > MAX_CONTAINERS:
        raise SpecError(f"spec.containers: at most {MAX_CONTAINERS} containers")
    containers = tuple(_container(_dict(c), f"spec.containers[{i}]") for i, c in enumerate(raw))
    names = [c.name for c in containers]
    if len(set(names)) != len(names):
        raise SpecError("spec.containers: container names must be unique")
    return PodSpec(
        namespace=ns,
        name=name,
        uid=str(meta.get("uid") or f"{ns}/{name}"),
        containers=containers,
        restart_policy=restart,
        grace_s=float(grace),
        runtime_class=runtime,
        dir=root / ns / name,
    )


def _strings(x: object, path: str) -> tuple[str, ...]:
    if x is None:
        return ()
    if not isinstance(x, list) or not all(isinstance(s, str) for s in x):
        raise SpecError(f"{path}: must be a list of strings")
    return tuple(x)


def _container(c: dict[str, Any], path: str) -> ContainerSpec:
    name = c.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError(f"{path}.name: required")
    env: dict[str, str] = {}
    for i, e in enumerate(c.get("env") or []):
        e = _dict(e)
        if not isinstance(e.get("name"), str) or not e["name"]:
            raise SpecError(f"{path}.env[{i}].name: required")
        env[e["name"]] = str(e.get("value", ""))
    ports: list[tuple[str, int]] = []
    for i, p in enumerate(c.get("ports") or []):
        p = _dict(p)
        port = p.get("containerPort")
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise SpecError(f"{path}.ports[{i}].containerPort: must be 1-65535")
        ports.append((str(p.get("name") or ""), port))
    limits = _dict(_dict(c.get("resources")).get("limits"))
    cpu = limits.get("cpu")
    mem = limits.get("memory")
    return ContainerSpec(
        name=name,
        image=str(c.get("image") or ""),
        command=_strings(c.get("command"), f"{path}.command"),
        args=_strings(c.get("args"), f"{path}.args"),
        env=MappingProxyType(env),
        working_dir=str(c.get("workingDir") or ""),
        ports=tuple(ports),
        cpu_limit_millis=None if cpu is None else cpu_millis(cpu, f"{path}.resources.limits.cpu"),
        memory_limit_bytes=None
        if mem is None
        else memory_bytes(mem, f"{path}.resources.limits.memory"),
    )
