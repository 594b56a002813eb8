"""The ``podman`` runtime: each container is a real OCI container, run by rootful Podman
with runc, supervised exactly like a ``process`` container.

Owns the Podman side of a container's life: the ``podman run`` command line, making
the image present (``podman image exists``, else one ``podman pull`` per start attempt),
and removing the engine's container after every exit. Everything else (restart policy
and back-off, the log file, SIGTERM → grace → SIGKILL, ``states``) is ``ProcessRuntime``'s
supervisor: the supervised child is an *attached* ``podman run``, so it lives exactly as
long as the container does and its exit status is the container's.

Every podman command gets these global flags, so the runtime needs no configuration
file and keeps its images and containers out of Podman's global store (what Podman 4.3
still shares: the lock segment ``/dev/shm/libpod_lock``, runc's state ``/run/runc``,
both per container id, and an empty ``/run/containers/networks``):

* ``--root ROOT/storage --runroot ROOT/run --tmpdir ROOT/tmp``: a private image and
  container store, runtime state and libpod state (the events log, the "alive" file)
  under the directory the runtime is given. All containers in it belong to this
  runtime; leftovers of a crashed node are removed on first use.
* ``--storage-driver vfs`` (default, overridable): works on any filesystem, including a
  container's overlay root where kernel overlay-on-overlay is refused; it copies each
  image per container, so a node with big images and a non-overlay root should pass
  ``storage_driver="overlay"``.
* ``--cgroup-manager cgroupfs``: no systemd in a container (or on many nodes); works on
  cgroup v1 and v2.
* ``--events-backend file``: no journald.
* ``--runtime RUNC`` (``runc`` unless given): the OCI runtime.

And ``podman run`` gets:

* ``--rm --replace --name hyperion-<uid>-<container>``: one engine container per
  supervised run, removed when it exits (and ``podman rm -f`` after every exit in case
  the attached ``podman run`` was killed before it could remove it).
* ``--sig-proxy=true``: the SIGTERM the supervisor sends to ``podman run`` reaches the
  container's PID 1. As in Kubernetes, a PID 1 without a TERM handler ignores it and is
  killed after the grace period: the supervisor SIGKILLs ``podman run`` and
  ``_exited`` runs ``podman rm -f -t 0``, which kills and removes the container.
* ``--log-driver passthrough``: the container's stdout/stderr *are* the pod's log file
  (the file the supervisor opened), with no copy in Podman's store and nothing lost if
  ``podman run`` dies first.
* ``--network host``: the container shares the node's network namespace, needing no
  bridge, CNI/netavark, iptables or slirp4netns. So, as with Kubernetes' hostNetwork, a
  declared ``containerPort`` *is* the host port (``hostPort == containerPort``, also in
  ``$PORT``/``$HYPERION_PORT_<NAME>``); two containers that declare the same port
  cannot run on one node.
* ``--pull never``: ``podman run`` must not pull behind the runtime's back (pulls are
  done, and reported as ``ErrImagePull``/``ImagePullBackOff``, by ``_prepare``).
* ``--ulimit nofile=N:N --ulimit nproc=M:M``: Podman's defaults (1048576 open files;
  Debian's 32768 processes) are above what an unprivileged-for-rlimits root (no
  ``CAP_SYS_RESOURCE``, as in a container) may set, and runc then fails with
  "error setting rlimit type 7: operation not permitted". N and M are this process's
  hard limits, capped at those defaults (Podman lowers its own ``nproc`` to 32768).
* ``--memory B --memory-swap B`` and ``--cpus X`` from ``resources.limits`` (no swap,
  as in Kubernetes); ``--env K=V`` for the environment (the pod's, without the process
  runtime's host PATH and HOME); ``--workdir`` for ``workingDir``, which must exist in
  the image (Podman 4.3 does not create it, as containerd does); ``command`` replaces the
  image's ENTRYPOINT (``--entrypoint '[...]'``, which also drops its CMD) and ``args``
  replace its CMD, as in Kubernetes.

The image's pull policy is ``IfNotPresent`` for every tag (``:latest`` included).
Rootful only: ``podman_available`` says None for a non-root user.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import re
import resource
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from hyperion.runtime.base import ContainerSpec, ContainerState, PodSpec
from hyperion.runtime.process import DEFAULT_PATH, Port, ProcessRuntime, expand

log = logging.getLogger(__name__)

NAME_PREFIX = "hyperion-"
NOFILE_MAX = 1_048_576  # Podman's default RLIMIT_NOFILE for containers
NPROC_MAX = 32_768  # Debian's containers.conf default; Podman lowers itself to it
MIN_MEMORY_BYTES = 6 * 1024 * 1024  # Podman refuses a smaller --memory
MIN_CPU_MILLIS = 10  # 1 ms per 100 ms period: the kernel's smallest CFS quota
COMMAND_TIMEOUT_S = 60.0  # podman image exists / rm / ps
DEFAULT_PULL_TIMEOUT_S = 900.0
# Environment of the process runtime that means nothing inside a container: the image
# has its own PATH and Podman sets HOME from /etc/passwd (unless the pod sets them).
_HOST_ONLY_ENV = ("PATH", "HOME")


def container_name(pod: PodSpec, c: ContainerSpec) -> str:
    """The engine's name for a container: ``hyperion-<uid>-<container>``, with every
    character Podman does not allow in a name replaced by ``_``."""
    return NAME_PREFIX + re.sub(r"[^A-Za-z0-9_.-]", "_", f"{pod.uid}-{c.name}")


def _find_runc() -> str | None:
    return shutil.which("runc") or next(
        (p for p in ("/usr/sbin/runc", "/usr/bin/runc") if os.access(p, os.X_OK)), None
    )


@functools.cache
def podman_available() -> str | None:
    """The path of ``podman`` if rootful Podman with runc can be used here, else None
    (so that callers and tests can skip cleanly). Runs ``podman --version`` once."""
    podman = shutil.which("podman")
    if podman is None or _find_runc() is None or os.geteuid() != 0:
        return None
    try:
        ok = subprocess.run(
            [podman, "--version"], capture_output=True, timeout=COMMAND_TIMEOUT_S
        ).returncode
    except (OSError, subprocess.SubprocessError):
        return None
    return podman if ok == 0 else None


def _ulimit_flags() -> list[str]:
    flags = []
    for name, res, cap in (
        ("nofile", resource.RLIMIT_NOFILE, NOFILE_MAX),
        ("nproc", resource.RLIMIT_NPROC, NPROC_MAX),
    ):
        hard = resource.getrlimit(res)[1]
        n = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
        flags += ["--ulimit", f"{name}={n}:{n}"]
    return flags


def _error_text(output: str) -> str:
    """Podman's error, without its ``Error: `` prefix and retry warnings."""
    lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error: ")]
    text = errors[-1] if errors else (lines[-1] if lines else "")
    return text.removeprefix("Error: ")


class PodmanRuntime(ProcessRuntime):
    """Runs containers through rootful Podman; see the module docstring.

    ``podman``: the binary. ``root``: the directory this runtime owns (store, state).
    ``runroot``: Podman's runtime state, ``root/run`` unless given: on a real node pass
    a directory on a tmpfs (``/run/...``) so that a reboot clears it, as Podman expects.
    ``runtime``: the OCI runtime, name or path. ``registries_conf``: a
    ``registries.conf`` for pulls (``CONTAINERS_REGISTRIES_CONF``), e.g. mirrors or
    blocked registries. ``pull_timeout_s``: a pull that takes longer is an
    ``ErrImagePull``. ``pod_env``: the pod's Dapr sidecar variables, passed with
    ``--env`` when the network is ``host`` (the sidecar listens on the node's loopback);
    the spec's own ``env`` wins. Other keyword arguments go to ``ProcessRuntime``.
    """

    name = "podman"

    def __init__(
        self,
        podman: str,
        root: Path,
        *,
        runroot: Path | None = None,
        runtime: str = "runc",
        storage_driver: str = "vfs",
        network: str = "host",
        registries_conf: Path | None = None,
        pull_timeout_s: float = DEFAULT_PULL_TIMEOUT_S,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 60.0,
        backoff_reset_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        pod_env: Callable[[PodSpec], Mapping[str, str]] | None = None,
    ) -> None:
        super().__init__(
            backoff_base_s=backoff_base_s,
            backoff_cap_s=backoff_cap_s,
            backoff_reset_s=backoff_reset_s,
            cgroup_root=None,  # Podman puts each container in its own cgroup
            clock=clock,
            pod_env=pod_env,
        )
        self.limits_enforced = "podman"
        self.podman = podman
        self.root = Path(root)
        self.network = network
        self.registries_conf = registries_conf
        self.pull_timeout_s = pull_timeout_s
        self._global = [
            podman,
            "--root",
            str(self.root / "storage"),
            "--runroot",
            str(runroot or self.root / "run"),
            "--tmpdir",
            str(self.root / "tmp"),
            "--storage-driver",
            storage_driver,
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            "--runtime",
            runtime,
        ]
        self._ulimits = _ulimit_flags()
        self._ready: asyncio.Task[None] | None = None
        self._pull_locks: dict[str, asyncio.Lock] = {}
        self._pull_failures: dict[tuple[str, str], int] = {}
        self._names: dict[int, str] = {}  # podman run's pid -> container name

    # --------------------------------------------------------------------- podman CLI

    def podman_argv(self, *args: str) -> list[str]:
        """A podman command line on this runtime's private store (for tests, tools)."""
        return [*self._global, *args]

    def podman_env(self) -> dict[str, str]:
        """The environment podman commands run with."""
        env = dict(os.environ)
        env.setdefault("PATH", DEFAULT_PATH)
        if self.registries_conf is not None:
            env["CONTAINERS_REGISTRIES_CONF"] = str(self.registries_conf)
        return env

    async def run_podman(self, *args: str, timeout_s: float = COMMAND_TIMEOUT_S) -> tuple[int, str]:
        """Run a podman command to completion: (exit status, stdout and stderr).
        A timeout or cancellation kills it; a timeout reads as status -1."""
        proc = await asyncio.create_subprocess_exec(
            *self.podman_argv(*args),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.podman_env(),
            start_new_session=True,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
        except TimeoutError:
            return -1, f"podman {args[0]} timed out after {timeout_s:g}s"
        finally:
            if proc.returncode is None:  # timed out or cancelled
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        assert proc.returncode is not None
        return proc.returncode, out.decode(errors="replace")

    async def _setup(self) -> None:
        for d in ("storage", "run", "tmp"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        rc, out = await self.run_podman("rm", "--all", "--force", "--time", "0")
        if rc != 0:
            log.warning("podman runtime: removing leftover containers failed: %s", out)

    async def _ensure_setup(self) -> None:
        if self._ready is None:
            self._ready = asyncio.ensure_future(self._setup())
        await asyncio.shield(self._ready)

    # ------------------------------------------------------------------------- images

    def _stop_event(self, pod: PodSpec, c: ContainerSpec) -> asyncio.Event | None:
        p = self._pods.get(pod.uid)
        slot = None if p is None else p.slots.get(c.name)
        return None if slot is None else slot.stop

    async def _pull(self, image: str) -> tuple[int, str]:
        lock = self._pull_locks.setdefault(image, asyncio.Lock())
        async with lock:  # one pull per image at a time; a waiter may find it done
            rc, out = await self.run_podman("image", "exists", image)
            if rc == 0:
                return 0, ""
            log.info("podman runtime: pulling %s", image)
            return await self.run_podman("pull", "--quiet", image, timeout_s=self.pull_timeout_s)

    async def _prepare(self, pod: PodSpec, c: ContainerSpec) -> ContainerState | None:
        """No image → ``CreateContainerConfigError`` (permanent). An image that is not
        here is pulled; a failed pull is ``ErrImagePull``, then ``ImagePullBackOff``
        on the following attempts (the supervisor retries after its back-off). A
        ``stop`` during a pull abandons it."""
        i = pod.containers.index(c)
        if not c.image:
            return self._waiting(
                c,
                "CreateContainerConfigError",
                f"spec.containers[{i}].image: required by the podman runtime",
            )
        if c.memory_limit_bytes is not None and c.memory_limit_bytes < MIN_MEMORY_BYTES:
            return self._waiting(
                c,
                "CreateContainerConfigError",
                f"spec.containers[{i}].resources.limits.memory: "
                f"podman needs at least {MIN_MEMORY_BYTES // 2**20}Mi",
            )
        await self._ensure_setup()
        rc, _ = await self.run_podman("image", "exists", c.image)
        if rc == 0:
            self._pull_failures.pop((pod.uid, c.name), None)
            return None
        pull = asyncio.ensure_future(self._pull(c.image))
        stop = self._stop_event(pod, c)
        stopping = asyncio.ensure_future(stop.wait()) if stop is not None else None
        try:
            waits = {pull} if stopping is None else {pull, stopping}
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if stopping is not None:
                stopping.cancel()
            if not pull.done():
                pull.cancel()  # stopped (or we were cancelled): kill the pull
                with contextlib.suppress(asyncio.CancelledError):
                    await pull
        if not pull.done() or pull.cancelled():
            return None  # the supervisor sees the stop
        rc, out = pull.result()
        key = (pod.uid, c.name)
        if rc == 0:
            self._pull_failures.pop(key, None)
            return None
        failures = self._pull_failures[key] = self._pull_failures.get(key, 0) + 1
        error = _error_text(out) or f"podman pull exited with status {rc}"
        if failures == 1:
            return self._waiting(c, "ErrImagePull", f'Failed to pull image "{c.image}": {error}')
        return self._waiting(c, "ImagePullBackOff", f'Back-off pulling image "{c.image}": {error}')

    @staticmethod
    def _waiting(c: ContainerSpec, reason: str, message: str) -> ContainerState:
        return ContainerState(c.name, "waiting", reason, message, image=c.image)

    # ------------------------------------------------------------------ podman run

    def _host_ports(self, pod: PodSpec, c: ContainerSpec) -> tuple[Port, ...]:
        """With host networking a container's port *is* a host port."""
        return tuple((n, cp, cp) for n, cp in c.ports)

    def _argv(self, pod: PodSpec, c: ContainerSpec, ports: tuple[Port, ...]) -> list[str]:
        env = self._container_env(pod, c, ports)
        for k in _HOST_ONLY_ENV:
            if k not in c.env:
                env.pop(k, None)
        if self.network == "host":
            # the sidecar listens on the node's loopback: reachable with host networking
            self._add_pod_env(pod, env)
        argv = self.podman_argv(
            "run",
            "--rm",
            "--replace",
            "--name",
            container_name(pod, c),
            "--label",
            f"io.hyperion.pod={pod.key}",
            "--label",
            f"io.hyperion.pod-uid={pod.uid}",
            "--label",
            f"io.hyperion.container={c.name}",
            "--pull",
            "never",
            "--sig-proxy=true",
            "--log-driver",
            "passthrough",
            "--network",
            self.network,
            *self._ulimits,
        )
        for k, v in env.items():
            argv += ["--env", f"{k}={v}"]
        if c.working_dir:
            argv += ["--workdir", c.working_dir]
        if c.memory_limit_bytes is not None:
            mem = str(c.memory_limit_bytes)
            argv += ["--memory", mem, "--memory-swap", mem]
        if c.cpu_limit_millis is not None:
            argv += ["--cpus", f"{max(c.cpu_limit_millis, MIN_CPU_MILLIS) / 1000:g}"]
        if c.command:
            argv += ["--entrypoint", json.dumps([expand(a, env) for a in c.command])]
        argv.append(c.image)
        argv += [expand(a, env) for a in c.args]
        return argv

    def _env(self, pod: PodSpec, c: ContainerSpec, ports: tuple[Port, ...]) -> dict[str, str]:
        return self.podman_env()  # the container's own environment goes in --env

    def _cwd(self, pod: PodSpec, c: ContainerSpec) -> Path:
        return pod.dir  # workingDir is a path in the container (--workdir)

    def _limits(self, pod: PodSpec, c: ContainerSpec) -> Callable[[], None] | None:
        return None  # --memory/--cpus; an RLIMIT_AS on podman itself would break it

    async def _spawn(
        self, pod: PodSpec, c: ContainerSpec, ports: tuple[Port, ...]
    ) -> asyncio.subprocess.Process:
        await self._ensure_setup()
        proc = await super()._spawn(pod, c, ports)
        self._names[proc.pid] = container_name(pod, c)
        return proc

    def _container_id(self, proc: asyncio.subprocess.Process) -> str:
        return f"podman://{self._names.get(proc.pid, proc.pid)}"

    async def _exited(
        self, pod: PodSpec, c: ContainerSpec, proc: asyncio.subprocess.Process
    ) -> str | None:
        """Remove the engine's container: gone already after a normal exit (``--rm``),
        still running if ``podman run`` was SIGKILLed after the grace period."""
        name = self._names.pop(proc.pid, container_name(pod, c))
        rc, out = await self.run_podman("rm", "--force", "--ignore", "--time", "0", name)
        if rc != 0:
            log.warning("podman runtime: removing %s failed: %s", name, _error_text(out))
        return None

    async def stop(self, uid: str, grace_s: float | None = None) -> None:
        await super().stop(uid, grace_s)
        for key in [k for k in self._pull_failures if k[0] == uid]:
            del self._pull_failures[key]
