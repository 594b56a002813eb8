"""The ``process`` runtime: each container is a supervised host process (Nomad's raw_exec).

Owns the processes it spawns, their restart loop (``restartPolicy`` with Kubernetes'
exponential back-off), their log files and the host ports handed to them. It knows
nothing of the mesh or the API; the pod manager (``runtime.pods``) drives it through the
``Runtime`` protocol and reads ``states``.

Theory of operation: ``start`` creates one supervisor task per container and returns.
A supervisor loops: ``_prepare`` (may report a waiting state instead of starting),
``_spawn``, wait for exit or for ``stop``, record the termination, then either finish
(policy says no restart, or the pod is stopping) or wait out the back-off
(``CrashLoopBackOff``) and go round again. Every state change goes to ``on_change``.

The command runs without a shell, in its own session (``start_new_session``) so that
SIGTERM/SIGKILL reach the whole process group; when the main process exits, what is
left of its group is killed, as a container's processes die with its PID 1.

Limits, and what really enforces them:

* cgroup v2, when ``cgroup_root`` (``/sys/fs/cgroup``) is a writable v2 hierarchy that
  offers the ``cpu`` and ``memory`` controllers: each container gets
  ``hyperion/<pod-uid>-<container>`` with ``cpu.max`` and ``memory.max``, and the child
  joins it before exec. A memory kill then shows as ``OOMKilled`` (``memory.events``).
* otherwise rlimits only: the memory limit becomes ``RLIMIT_AS``, set before exec. That
  caps *address space*, not resident memory: a program that reserves much more than it
  touches (JVMs, Go, some allocators) may fail to start under a limit it would meet in
  a container, and an over-limit allocation fails (``MemoryError``, exit 1) rather than
  being killed, so the reason is ``Error``, never ``OOMKilled``. CPU is not limited
  (``RLIMIT_CPU`` caps CPU seconds, not a rate).

``limits_enforced`` says which of the two applies (``"cgroup"`` or ``"rlimit"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import resource
import signal
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from hyperion.runtime.base import ContainerSpec, ContainerState, PodSpec

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CPU_PERIOD_US = 100_000  # cpu.max period; the kernel's default
CPU_QUOTA_US_MIN = 1_000  # the kernel refuses a cpu.max quota below 1 ms
# Stopped pods whose final states are kept for ``states``; the pod manager copies them
# when ``stop`` returns, so this only bounds memory on a node that churns pods.
STOPPED_PODS_MAX = 256
# Waiting reasons that retrying cannot fix (the spec is immutable): report and park.
PERMANENT_REASONS = frozenset({"CreateContainerConfigError"})

Port = tuple[str, int, int]  # (name, containerPort, hostPort)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody is listening on now (bind port 0, read it, close).

    Racy by nature: another process may take it before the container binds it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion in command and args: a defined variable is
    replaced, an undefined reference is left as written, ``$$`` becomes ``$``."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(sub, text)


def should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def _port_env_name(name: str, container_port: int) -> str:
    key = name or str(container_port)
    return "HYPERION_PORT_" + re.sub(r"[^A-Za-z0-9]", "_", key).upper()


@dataclass(slots=True)
class _Slot:
    """One container under supervision."""

    spec: ContainerSpec
    state: ContainerState
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    grace_s: float = 0.0
    ports: tuple[Port, ...] = ()
    proc: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    ran: bool = False  # started at least once
    last: ContainerState | None = None  # the last termination


@dataclass(slots=True)
class _Pod:
    spec: PodSpec
    on_change: Callable[[], None]
    slots: dict[str, _Slot]
    stopped: bool = False


class ProcessRuntime:
    """Runs containers as host processes; see the module docstring.

    ``backoff_base_s``/``backoff_cap_s``: restart delays double from base up to cap
    (Kubernetes uses 10 s and 300 s; smaller defaults keep demos lively).
    ``backoff_reset_s``: a container that ran this long cleanly starts over at base.
    ``cgroup_root``: where to look for a cgroup v2 hierarchy; ``None`` never uses one.
    ``workload_socket``: the node's SPIFFE Workload API socket, announced to containers
    in ``SPIFFE_ENDPOINT_SOCKET``.
    ``pod_env``: more variables for a pod's host processes (the Dapr sidecar's
    ``DAPR_HTTP_PORT`` and ``APP_ID``); the spec's own ``env`` wins over them.
    """

    name = "process"

    def __init__(
        self,
        *,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 60.0,
        backoff_reset_s: float = 60.0,
        cgroup_root: Path | None = Path("/sys/fs/cgroup"),
        clock: Callable[[], float] = time.time,
        workload_socket: Path | None = None,
        pod_env: Callable[[PodSpec], Mapping[str, str]] | None = None,
    ) -> None:
        assert 0 < backoff_base_s <= backoff_cap_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.backoff_reset_s = backoff_reset_s
        self._clock = clock
        self._pods: dict[str, _Pod] = {}
        self._stopped_order: list[str] = []
        self._cgroup = _cgroup_base(cgroup_root)
        self.limits_enforced = "cgroup" if self._cgroup else "rlimit"
        self.workload_socket = workload_socket
        self.pod_env = pod_env
        log.info("process runtime: limits enforced by %s", self.limits_enforced)

    # ------------------------------------------------------------------ the protocol

    async def start(self, pod: PodSpec, on_change: Callable[[], None]) -> None:
        if pod.uid in self._pods and not self._pods[pod.uid].stopped:
            return
        self._forget(pod.uid)
        slots = {
            c.name: _Slot(
                spec=c,
                state=ContainerState(c.name, "waiting", "ContainerCreating", image=c.image),
                grace_s=pod.grace_s,
            )
            for c in pod.containers
        }
        p = _Pod(pod, on_change, slots)
        self._pods[pod.uid] = p
        pod.dir.mkdir(parents=True, exist_ok=True)
        for slot in slots.values():
            slot.task = asyncio.create_task(
                self._supervise(p, slot), name=f"hyperion-{pod.key}-{slot.spec.name}"
            )

    async def stop(self, uid: str, grace_s: float | None = None) -> None:
        p = self._pods.get(uid)
        if p is None:
            return
        grace = p.spec.grace_s if grace_s is None else max(0.0, grace_s)
        for slot in p.slots.values():
            slot.grace_s = grace
            slot.stop.set()
        tasks = [s.task for s in p.slots.values() if s.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if not p.stopped:
            p.stopped = True
            self._stopped_order.append(uid)
            while len(self._stopped_order) > STOPPED_PODS_MAX:
                self._pods.pop(self._stopped_order.pop(0), None)

    def states(self, uid: str) -> list[ContainerState]:
        p = self._pods.get(uid)
        return [] if p is None else [s.state for s in p.slots.values()]

    async def close(self) -> None:
        live = [uid for uid, p in self._pods.items() if not p.stopped]
        await asyncio.gather(*(self.stop(uid) for uid in live))

    # ------------------------------------------------------------ hooks for subclasses

    async def _prepare(self, pod: PodSpec, c: ContainerSpec) -> ContainerState | None:
        """Called before every start. Return a ``waiting`` state to report it instead of
        starting (e.g. ``ErrImagePull``); the supervisor then retries after the back-off,
        except for reasons in ``PERMANENT_REASONS``, which park until ``stop``. ``None``
        means go ahead. The process runtime requires a command."""
        if not c.command:
            i = pod.containers.index(c)
            return ContainerState(
                c.name,
                "waiting",
                "CreateContainerConfigError",
                f"spec.containers[{i}].command: required by the process runtime",
                image=c.image,
            )
        return None

    def _host_ports(self, pod: PodSpec, c: ContainerSpec) -> tuple[Port, ...]:
        """``(name, containerPort, hostPort)`` for each declared port, chosen at the
        first start and kept across restarts. Default: a free host port for each (the
        process shares the host network, so ``containerPort`` is only a label)."""
        return tuple((n, cp, free_port()) for n, cp in c.ports)

    def _argv(self, pod: PodSpec, c: ContainerSpec, ports: tuple[Port, ...]) -> list[str]:
        """The argv to exec (no shell): ``command + args`` with ``$(VAR)`` expanded."""
        env = self._container_env(pod, c, ports)
        return [expand(a, env) for a in (*c.command, *c.args)]

    def _env(self, pod: PodSpec, c: ContainerSpec, ports: tuple[Port, ...]) -> dict[str, str]:
        """The environment of the host process (a subclass that runs a container
        engine passes the container's own environment on its command line instead).
        With ``workload_socket``, ``SPIFFE_ENDPOINT_SOCKET`` names the node's SPIFFE
        Workload API (unless the spec sets it): a host path, so only for host processes."""
        env = self._container_env(pod, c, ports)
        if self.workload_socket is not None:
            env.setdefault("SPIFFE_ENDPOINT_SOCKET", f"unix://{self.workload_socket.absolute()}")
        self._add_pod_env(pod, env)
        return env

    def _add_pod_env(self, pod: PodSpec, env: dict[str, str]) -> None:
        """Add ``pod_env``'s variables to ``env`` where the spec has not set them."""
        if self.pod_env is not None:
            for k, v in self.pod_env(pod).items():
                env.setdefault(k, v)

    def _cwd(self, pod: PodSpec, c: ContainerSpec) -> Path:
        """The host process's working directory; created if missing."""
        return Path(c.working_dir) if c.working_dir else pod.dir / c.name

    def _limits(self, pod: PodSpec, c: ContainerSpec) -> Callable[[], None] | None:
        """A function run in the child before exec that applies the limits (joins the
        cgroup or sets rlimits), or ``None``. A subclass whose engine enforces limits
        itself returns ``None``: ``RLIMIT_AS`` on an engine's CLI would break it."""
        if self._cgroup is not None:
            procs = self._cgroup_for(pod, c)
            if procs is not None:
                return _join_cgroup(procs)
        if c.memory_limit_bytes is not None:
            return _rlimit_as(c.memory_limit_bytes)
        return None

    def _container_id(self, proc: asyncio.subprocess.Process) -> str:
        return f"process://{proc.pid}"

    def _signal(self, proc: asyncio.subprocess.Process, sig: int) -> None:
        """Deliver ``sig`` to the container (default: its whole process group)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    async def _exited(
        self, pod: PodSpec, c: ContainerSpec, proc: asyncio.subprocess.Process
    ) -> str | None:
        """Called after each exit, once the process group has been killed. Returns a
        termination reason that overrides Completed/Error (``OOMKilled``), or None.
        Subclasses clean up here (remove the engine's container)."""
        if self._cgroup is None:
            return None
        d = self._cgroup / _cgroup_name(pod, c)
        oom = _oom_kills(d)
        with contextlib.suppress(OSError):
            d.rmdir()
        return "OOMKilled" if oom else None

    # ----------------------------------------------------------------- the supervisor

    def _container_env(
        self, pod: PodSpec, c: ContainerSpec, ports: tuple[Port, ...]
    ) -> dict[str, str]:
        """The container's environment (for subclasses too): base PATH and HOME,
        ``HOSTNAME`` (the pod's name, as in a Kubernetes container), the pod's identity,
        ``PORT``/``HYPERION_PORT_<NAME>``, then the spec's ``env``."""
        env = {
            "PATH": os.environ.get("PATH") or DEFAULT_PATH,
            "HOME": str(pod.dir),
            "HOSTNAME": pod.name,
            "HYPERION_POD_NAME": pod.name,
            "HYPERION_POD_NAMESPACE": pod.namespace,
            "HYPERION_POD_UID": pod.uid,
        }
        for i, (name, container_port, host_port) in enumerate(ports):
            if i == 0:
                env["PORT"] = str(host_port)
            env[_port_env_name(name, container_port)] = str(host_port)
        env.update(c.env)
        return env

    async def _spawn(
        self, pod: PodSpec, c: ContainerSpec, ports: tuple[Port, ...]
    ) -> asyncio.subprocess.Process:
        cwd = self._cwd(pod, c)
        cwd.mkdir(parents=True, exist_ok=True)
        argv = self._argv(pod, c, ports)
        with open(pod.log_path(c.name), "ab") as out:
            return await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                cwd=cwd,
                env=self._env(pod, c, ports),
                start_new_session=True,
                preexec_fn=self._limits(pod, c),
            )

    def _set(self, p: _Pod, slot: _Slot, state: ContainerState) -> None:
        if state == slot.state:
            return
        slot.state = state
        try:
            p.on_change()
        except Exception:
            log.exception("on_change for %s raised", p.spec.key)

    async def _pause(self, slot: _Slot, delay_s: float) -> None:
        """Sleep ``delay_s`` unless stopped first."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay_s):
                await slot.stop.wait()

    def _backoff_s(self, failures: int) -> float:
        return min(self.backoff_cap_s, self.backoff_base_s * 2.0 ** min(failures, 32))

    async def _supervise(self, p: _Pod, slot: _Slot) -> None:
        pod, c = p.spec, slot.spec
        failures = 0  # consecutive failed runs or starts, for the back-off
        restarts = 0
        try:
            while not slot.stop.is_set():
                waiting = await self._prepare(pod, c)
                if slot.stop.is_set():
                    break
                if waiting is not None:
                    self._set(p, slot, replace(waiting, restart_count=restarts))
                    if waiting.reason in PERMANENT_REASONS:
                        await slot.stop.wait()
                        break
                    await self._pause(slot, self._backoff_s(failures))
                    failures += 1
                    continue
                if not slot.ports:
                    slot.ports = self._host_ports(pod, c)
                try:
                    proc = await self._spawn(pod, c, slot.ports)
                except OSError as e:
                    self._set(p, slot, self._start_error(c, e, restarts, slot.ports))
                    await self._pause(slot, self._backoff_s(failures))
                    failures += 1
                    continue
                slot.proc = proc
                if slot.ran:
                    restarts += 1
                slot.ran = True
                started = self._clock()
                self._set(
                    p,
                    slot,
                    ContainerState(
                        c.name,
                        "running",
                        started_at=started,
                        restart_count=restarts,
                        image=c.image,
                        container_id=self._container_id(proc),
                        ports=slot.ports,
                    ),
                )
                rc = await self._wait(slot, proc)
                self._signal(proc, signal.SIGKILL)  # what is left of its process group
                override = await self._exited(pod, c, proc)
                finished = self._clock()
                code = rc if rc >= 0 else 128 - rc
                reason = override or ("Completed" if code == 0 else "Error")
                slot.last = replace(
                    slot.state,
                    state="terminated",
                    reason=reason,
                    exit_code=code,
                    finished_at=finished,
                )
                self._set(p, slot, slot.last)
                slot.proc = None
                if slot.stop.is_set() or not should_restart(pod.restart_policy, code):
                    break
                if finished - started >= self.backoff_reset_s:
                    failures = 0
                delay = self._backoff_s(failures)
                failures += 1
                self._set(
                    p,
                    slot,
                    ContainerState(
                        c.name,
                        "waiting",
                        "CrashLoopBackOff",
                        f"back-off {delay:g}s restarting failed container={c.name} "
                        f"pod={pod.name}_{pod.namespace}({pod.uid})",
                        restart_count=restarts,
                        image=c.image,
                        container_id=slot.state.container_id,
                        ports=slot.ports,
                    ),
                )
                await self._pause(slot, delay)
        finally:
            if slot.proc is not None and slot.proc.returncode is None:
                self._signal(slot.proc, signal.SIGKILL)  # cancelled mid-run
            if slot.state.state == "waiting":
                self._set(p, slot, self._final_waiting(slot))

    async def _wait(self, slot: _Slot, proc: asyncio.subprocess.Process) -> int:
        """The exit status; on ``stop``: SIGTERM, the grace period, then SIGKILL."""
        exited = asyncio.ensure_future(proc.wait())
        stopping = asyncio.ensure_future(slot.stop.wait())
        try:
            await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not exited.done():
            self._signal(proc, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(exited), slot.grace_s)
            except TimeoutError:
                self._signal(proc, signal.SIGKILL)
        return await exited

    def _start_error(
        self, c: ContainerSpec, e: OSError, restarts: int, ports: tuple[Port, ...]
    ) -> ContainerState:
        exe = c.command[0] if c.command else ""
        if isinstance(e, FileNotFoundError):
            message = f"executable file not found: {exe!r} (searched $PATH)"
        elif isinstance(e, PermissionError):
            message = f"permission denied executing {exe!r}"
        else:
            message = f"cannot start {exe!r}: {e}"
        return ContainerState(
            c.name,
            "waiting",
            "CreateContainerError",
            message,
            restart_count=restarts,
            image=c.image,
            ports=ports,
        )

    def _final_waiting(self, slot: _Slot) -> ContainerState:
        """A stopped container was waiting: its last run if it had one, else a
        termination saying it never ran (kubelet's ContainerStatusUnknown, 137)."""
        if slot.last is not None:
            return slot.last
        return replace(
            slot.state,
            state="terminated",
            reason="ContainerStatusUnknown",
            exit_code=137,
            finished_at=self._clock(),
        )

    def _forget(self, uid: str) -> None:
        if uid in self._stopped_order:
            self._stopped_order.remove(uid)
        self._pods.pop(uid, None)

    def _cgroup_for(self, pod: PodSpec, c: ContainerSpec) -> Path | None:
        """Create the container's cgroup with its limits; its ``cgroup.procs``."""
        assert self._cgroup is not None
        d = self._cgroup / _cgroup_name(pod, c)
        try:
            d.mkdir(exist_ok=True)
            if c.cpu_limit_millis is not None:
                quota = max(CPU_QUOTA_US_MIN, c.cpu_limit_millis * CPU_PERIOD_US // 1000)
                (d / "cpu.max").write_text(f"{quota} {CPU_PERIOD_US}\n")
            if c.memory_limit_bytes is not None:
                (d / "memory.max").write_text(f"{c.memory_limit_bytes}\n")
        except OSError as e:
            log.warning("cgroup %s unusable (%s); limits not enforced for %s", d, e, c.name)
            return None
        return d / "cgroup.procs"


# ---------------------------------------------------------------------------- limits


def _cgroup_name(pod: PodSpec, c: ContainerSpec) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{pod.uid}-{c.name}")


def _cgroup_base(root: Path | None) -> Path | None:
    """``root/hyperion`` if ``root`` is a writable cgroup v2 hierarchy with the cpu and
    memory controllers delegated to it, else None (then rlimits are used)."""
    if root is None:
        return None
    try:
        controllers = (root / "cgroup.controllers").read_text().split()
        if not {"cpu", "memory"} <= set(controllers) or not os.access(root, os.W_OK):
            return None
        base = root / "hyperion"
        base.mkdir(exist_ok=True)
        for d in (root, base):
            enabled = (d / "cgroup.subtree_control").read_text().split()
            if not {"cpu", "memory"} <= set(enabled):
                (d / "cgroup.subtree_control").write_text("+cpu +memory\n")
    except OSError as e:
        log.info("cgroup v2 at %s not usable (%s)", root, e)
        return None
    return base


def _oom_kills(d: Path) -> bool:
    try:
        lines = (d / "memory.events").read_text().splitlines()
    except OSError:
        return False
    return any(line.split()[:1] == ["oom_kill"] and line.split()[1] != "0" for line in lines)


def _join_cgroup(procs: Path) -> Callable[[], None]:
    path = str(procs)

    def join() -> None:  # runs in the child between fork and exec
        with open(path, "w") as f:
            f.write(str(os.getpid()))

    return join


def _rlimit_as(limit: int) -> Callable[[], None]:
    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply
