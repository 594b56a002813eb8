"""Helpers for tests that drive real nodes with real kubectl and the Python client."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hyperion.api import kubeconfig
from hyperion.cli.up import start_mesh, stop_mesh

KUBECTL = "/usr/bin/kubectl"
KUBECTL_OTHER = "/usr/lib/google-cloud-sdk/bin/kubectl.1.30"


@contextmanager
def mesh(tmp: Path, n: int) -> Iterator[list[dict[str, object]]]:
    """A real ``n``-node mesh (one process per node) with ``tmp/kubeconfig``."""
    procs, infos = start_mesh(n, tmp, "kube.test", "local", "1h")
    try:
        yield infos
    finally:
        stop_mesh(procs)


def admin_ssl(dir: Path) -> ssl.SSLContext:
    """A client TLS context with the admin user of ``dir/kubeconfig``."""
    return kubeconfig.client_ssl(dir / "kubeconfig")


def raw_request(
    dir: Path, addr: str, method: str, path: str, body: bytes, ctype: str
) -> tuple[int, dict[str, Any]]:
    """One HTTPS request with the admin certificate of ``dir/kubeconfig``: (status, JSON)."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=admin_ssl(dir))
    conn.request(method, path, body=body, headers={"Content-Type": ctype})
    resp = conn.getresponse()
    data = json.loads(resp.read() or b"{}")
    conn.close()
    return resp.status, data


class Kubectl:
    """Runs a real kubectl against the mesh in ``dir``."""

    def __init__(self, dir: Path, binary: str = KUBECTL) -> None:
        self.dir = dir
        self.binary = binary
        self.env = {**os.environ, "KUBECONFIG": str(dir / "kubeconfig"), "HOME": str(dir)}

    def run(
        self, *args: str, input: str | None = None, timeout: float = 30.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(
            [self.binary, *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
        )
        if check and p.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
            )
        return p

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [self.binary, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )


def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Call ``check`` until it returns a truthy value or raises no AssertionError."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except AssertionError as e:
            last = e
        time.sleep(interval)
    if last is not None:
        raise last
    raise AssertionError("condition not met in time")


def deployment(name: str, replicas: int, sleep: str = "300") -> str:
    """A Deployment of ``replicas`` busybox ``sleep`` pods (process runtime), as YAML."""
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: main
        image: busybox
        command: ["sleep", "{sleep}"]
        resources: {{requests: {{cpu: 10m, memory: 16Mi}}}}
"""


def dapr_pod(name: str, node: str, app_id: str, program: str, *args: str) -> dict[str, Any]:
    """A Pod on ``node`` opted into the Dapr sidecar as ``app_id`` (app-port 8080),
    running ``python -c program *args``."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "annotations": {
                "dapr.io/enabled": "true",
                "dapr.io/app-id": app_id,
                "dapr.io/app-port": "8080",
            },
        },
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": "python",
                    "command": [sys.executable, "-c", program, *args],
                    "ports": [{"containerPort": 8080}],
                }
            ],
        },
    }
