"""The podman runtime against real Podman + runc, with a busybox image built here.

The module builds ``localhost/hyperion-busybox:test`` once (a rootfs of the static
busybox and its applet links, ``podman import``-ed into a private store under a tmp
dir), so no registry is needed. Pulls are made to fail at once: the tests' image
names are on a registry that a private ``registries.conf`` blocks. Skipped only where
podman, runc or a static busybox is missing (CI installs them, so there they run).
Each test runs its own event loop and closes its runtime in a ``finally``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import subprocess
import tarfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hyperion.runtime.base import ContainerState, PodSpec, pod_spec
from hyperion.runtime.podman import PodmanRuntime, podman_available

IMAGE = "localhost/hyperion-busybox:test"
BLOCKED = "blocked.invalid"  # blocked by the tests' registries.conf: pulls fail at once
APPLETS = ("sh", "sleep", "echo", "cat", "env", "pwd", "ls", "true", "false", "hostname")


def _static_busybox() -> Path | None:
    """A statically linked busybox (busybox-static), or None."""
    for p in ("/bin/busybox", "/usr/bin/busybox", shutil.which("busybox")):
        if p and os.access(p, os.X_OK) and _is_static_elf(Path(p)):
            return Path(p)
    return None


def _is_static_elf(path: Path) -> bool:
    """An ELF64 little-endian executable with no program interpreter (PT_INTERP)."""
    with path.open("rb") as f:
        head = f.read(64)
        if head[:6] != b"\x7fELF\x02\x01":
            return False
        phoff, phentsize, phnum = (
            struct.unpack_from("<Q", head, 32)[0],
            *struct.unpack_from("<HH", head, 54),
        )
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    """(podman, runtime root, registries.conf) with the busybox image imported."""
    podman = podman_available()
    busybox = _static_busybox()
    if podman is None or busybox is None:
        pytest.skip(
            "needs rootful podman with runc and a static busybox "
            "(apt-get install podman runc busybox-static)"
        )
    base = tmp_path_factory.mktemp("podman")
    rootfs = base / "rootfs"
    for d in ("bin", "tmp", "work"):
        (rootfs / d).mkdir(parents=True)
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    for applet in APPLETS:
        (rootfs / "bin" / applet).symlink_to("busybox")
    tar = base / "rootfs.tar"
    with tarfile.open(tar, "w") as t:
        t.add(rootfs, arcname=".")
    conf = base / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{BLOCKED}"\nblocked = true\n')
    root = base / "root"
    rt = PodmanRuntime(podman, root)
    subprocess.run(rt.podman_argv("import", "--quiet", str(tar), IMAGE), check=True, timeout=60)
    return podman, root, conf


def make_pod(root: Path, *containers: dict[str, Any], **spec: Any) -> PodSpec:
    obj = {
        "metadata": {"name": "web", "namespace": "team", "uid": "uid-1"},
        "spec": {"terminationGracePeriodSeconds": 5, **spec, "containers": list(containers)},
    }
    return pod_spec(obj, root)


def box(name: str = "main", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": IMAGE, **fields}


async def until(pred: Callable[[], bool], timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not pred():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def run(store: tuple[str, Path, Path], body: Callable[[PodmanRuntime], Awaitable[None]]) -> None:
    podman, root, conf = store

    async def main() -> None:
        rt = PodmanRuntime(
            podman, root, registries_conf=conf, backoff_base_s=0.05, backoff_cap_s=0.1
        )
        try:
            await body(rt)
        finally:
            await rt.close()

    asyncio.run(main())


def log_of(pod: PodSpec, container: str = "main") -> str:
    path = pod.log_path(container)
    return path.read_text() if path.exists() else ""


def state(rt: PodmanRuntime, i: int = 0) -> ContainerState:
    return rt.states("uid-1")[i]


def terminated(rt: PodmanRuntime) -> Callable[[], bool]:
    return lambda: all(s.state == "terminated" for s in rt.states("uid-1"))


def engine_containers(rt: PodmanRuntime) -> list[str]:
    out = subprocess.run(
        rt.podman_argv("ps", "--all", "--format", "{{.Names}}"),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return [n for n in out.split() if n.startswith("hyperion-")]


def test_runs_a_command_in_the_image_and_logs_its_output(
    store: tuple[str, Path, Path], tmp_path: Path
) -> None:
    pod = make_pod(
        tmp_path,
        box(command=["sh", "-c", "echo hello from the container; echo oops >&2; ls /bin/busybox"]),
        restartPolicy="Never",
    )

    async def body(rt: PodmanRuntime) -> None:
        await rt.start(pod, lambda: None)
        await until(terminated(rt))
        s = state(rt)
        assert (s.reason, s.exit_code, s.image) == ("Completed", 0, IMAGE)
        assert s.container_id == "podman://hyperion-uid-1-main"
        log = log_of(pod)
        assert log.splitlines() == ["hello from the container", "oops", "/bin/busybox"]
        assert engine_containers(rt) == []

    run(store, body)


def test_env_args_working_dir_and_limits(store: tuple[str, Path, Path], tmp_path: Path) -> None:
    script = (
        'echo "greeting=$GREETING name=$1 path=$PATH home=$HOME port=$PORT"; pwd; '
        "cd /sys/fs/cgroup; cat memory.max 2>/dev/null || cat memory/memory.limit_in_bytes; "
        "cat cpu.max 2>/dev/null || cat cpu/cpu.cfs_quota_us"  # cgroup v2 or v1
    )
    pod = make_pod(
        tmp_path,
        box(
            command=["sh", "-c", script, "sh"],
            args=["$(WHO)"],
            env=[{"name": "GREETING", "value": "hi there"}, {"name": "WHO", "value": "ada"}],
            workingDir="/work",
            ports=[{"containerPort": 8080}],
            resources={"limits": {"memory": "64Mi", "cpu": "250m"}},
        ),
        restartPolicy="Never",
    )

    async def body(rt: PodmanRuntime) -> None:
        await rt.start(pod, lambda: None)
        await until(terminated(rt))
        s = state(rt)
        assert s.exit_code == 0, log_of(pod)
        ((_, container_port, host_port),) = s.ports
        first, cwd, memory, cpu = log_of(pod).splitlines()
        # the image's PATH and HOME, not the node's
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        assert first == f"greeting=hi there name=ada path={path} home=/ port={host_port}"
        assert (cwd, memory, container_port, host_port) == ("/work", str(64 * 2**20), 8080, 8080)
        assert cpu.split()[0] == "25000"  # 250m: 25 ms per 100 ms period

    run(store, body)


def test_the_pods_sidecar_variables_reach_the_container(
    store: tuple[str, Path, Path], tmp_path: Path
) -> None:
    """With host networking the node's loopback sidecar is reachable, so its variables
    go in with ``--env``; the spec's own value of one wins."""
    podman, root, conf = store
    pod = make_pod(
        tmp_path,
        box(
            command=["sh", "-c", 'echo "$DAPR_HTTP_PORT $APP_ID $DAPR_API_TOKEN"'],
            env=[{"name": "APP_ID", "value": "mine"}],
        ),
        restartPolicy="Never",
    )
    sidecar = {"DAPR_HTTP_PORT": "3500", "APP_ID": "web", "DAPR_API_TOKEN": "t0k"}

    async def main() -> None:
        rt = PodmanRuntime(podman, root, registries_conf=conf, pod_env=lambda p: sidecar)
        try:
            await rt.start(pod, lambda: None)
            await until(terminated(rt))
            assert log_of(pod).splitlines() == ["3500 mine t0k"]
        finally:
            await rt.close()

    asyncio.run(main())


def test_restart_policy_never_reports_the_exit_code(
    store: tuple[str, Path, Path], tmp_path: Path
) -> None:
    pod = make_pod(tmp_path, box(command=["sh", "-c", "echo ran; exit 7"]), restartPolicy="Never")

    async def body(rt: PodmanRuntime) -> None:
        await rt.start(pod, lambda: None)
        await until(terminated(rt))
        await asyncio.sleep(0.3)  # several back-offs: nothing restarts
        s = state(rt)
        assert (s.state, s.reason, s.exit_code, s.restart_count) == ("terminated", "Error", 7, 0)
        assert log_of(pod) == "ran\n"

    run(store, body)


def test_on_failure_restarts_the_container(store: tuple[str, Path, Path], tmp_path: Path) -> None:
    pod = make_pod(
        tmp_path, box(command=["sh", "-c", "echo run; exit 1"]), restartPolicy="OnFailure"
    )

    async def body(rt: PodmanRuntime) -> None:
        seen: list[ContainerState] = []
        await rt.start(pod, lambda: seen.extend(rt.states("uid-1")))
        await until(lambda: any(s.restart_count == 1 and s.exit_code == 1 for s in seen))
        await rt.stop("uid-1")
        assert log_of(pod).count("run\n") >= 2
        assert engine_containers(rt) == []

    run(store, body)


def test_stop_sends_sigterm_then_kills_after_the_grace_period(
    store: tuple[str, Path, Path], tmp_path: Path
) -> None:
    trap = "trap 'echo got TERM; exit 0' TERM; echo up; sleep 1000 & wait"
    pod = make_pod(
        tmp_path,
        box("polite", command=["sh", "-c", trap]),
        box("stubborn", command=["sleep", "1000"]),  # PID 1 with no handler ignores TERM
    )

    async def body(rt: PodmanRuntime) -> None:
        await rt.start(pod, lambda: None)
        await until(lambda: log_of(pod, "polite") == "up\n")
        await until(lambda: len(engine_containers(rt)) == 2)
        t0 = time.monotonic()
        await rt.stop("uid-1", grace_s=1.0)
        elapsed = time.monotonic() - t0
        polite, stubborn = rt.states("uid-1")
        assert (polite.state, polite.exit_code) == ("terminated", 0)
        assert log_of(pod, "polite") == "up\ngot TERM\n"
        assert (stubborn.state, stubborn.exit_code) == ("terminated", 137)
        assert 1.0 <= elapsed < 10.0
        assert engine_containers(rt) == []

    run(store, body)


def test_an_image_that_cannot_be_pulled_is_err_image_pull_then_back_off(
    store: tuple[str, Path, Path], tmp_path: Path
) -> None:
    image = f"{BLOCKED}/does-not-exist:v1"
    pod = make_pod(tmp_path, {"name": "main", "image": image, "command": ["true"]})

    async def body(rt: PodmanRuntime) -> None:
        seen: list[ContainerState] = []
        await rt.start(pod, lambda: seen.extend(rt.states("uid-1")))
        await until(lambda: any(s.reason == "ImagePullBackOff" for s in seen))
        first = next(s for s in seen if s.reason.startswith(("Err", "Image")))
        assert (first.state, first.reason, first.image) == ("waiting", "ErrImagePull", image)
        assert first.message.startswith(f'Failed to pull image "{image}": ')
        assert "blocked" in first.message
        back_off = state(rt)
        assert back_off.message.startswith(f'Back-off pulling image "{image}"')
        await rt.stop("uid-1")
        assert state(rt).reason == "ContainerStatusUnknown"

    run(store, body)


def test_a_container_without_an_image_is_a_config_error(
    store: tuple[str, Path, Path], tmp_path: Path
) -> None:
    pod = make_pod(tmp_path, {"name": "main", "command": ["true"]})

    async def body(rt: PodmanRuntime) -> None:
        await rt.start(pod, lambda: None)
        await until(lambda: state(rt).reason == "CreateContainerConfigError")
        assert state(rt).message == "spec.containers[0].image: required by the podman runtime"
        await rt.stop("uid-1")

    run(store, body)


def test_stop_during_a_slow_pull_abandons_it(store: tuple[str, Path, Path], tmp_path: Path) -> None:
    # Nothing listens on port 1: podman retries the refused connection for seconds.
    pod = make_pod(tmp_path, {"name": "main", "image": "localhost:1/slow:v1"})

    async def body(rt: PodmanRuntime) -> None:
        await rt.start(pod, lambda: None)
        await asyncio.sleep(0.5)
        assert state(rt).reason == "ContainerCreating"  # still pulling
        t0 = time.monotonic()
        await rt.stop("uid-1")
        assert time.monotonic() - t0 < 1.0
        assert state(rt).reason == "ContainerStatusUnknown"

    run(store, body)
