"""Real kubectl against a real 2-node mesh with real certificates.

Every kubectl command the API promises has a test here; the Python client is in
``test_kube_client.py``. One mesh serves the whole module (starting it costs ~2 s).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from kube_helpers import KUBECTL, KUBECTL_OTHER, Kubectl, eventually, mesh

HWL = """\
apiVersion: hyperion.io/v1alpha1
kind: HyperionWorkload
metadata:
  name: resnet50-inference
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: server
        image: resnet50:latest
        command: ["python", "-m", "http.server"]
        resources:
          limits: {cpu: "2", memory: 4Gi, nvidia.com/gpu: "1"}
  policy:
    goal: latency
    consistency: eventual
    constraints:
      geographies: [US, EU]
      clouds: [aws, gcp]
      preferSpot: true
    data: {source: "s3://bucket/path", locality: "aws:us-east-1"}
    users: [{geography: EU, weight: 0.7}, {geography: US, weight: 0.3}]
"""

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox:1.36
        command: ["sleep", "3600"]
        ports:
        - containerPort: 8080
"""

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: logger}}
spec:
  nodeName: node-1
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo hi"]
"""


pytestmark = pytest.mark.skipif(
    not Path(KUBECTL).exists(), reason=f"real kubectl is not installed at {KUBECTL}"
)


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    dir = tmp_path_factory.mktemp("kube")
    with mesh(dir, 2):
        yield Kubectl(dir)


def test_version_and_api_resources(kube: Kubectl) -> None:
    out = json.loads(kube.run("version", "-o", "json").stdout)
    assert out["serverVersion"]["major"] == "1"
    assert out["serverVersion"]["minor"] == "32"
    res = kube.run("api-resources").stdout
    line = next(x for x in res.splitlines() if x.startswith("hyperionworkloads"))
    assert "hwl" in line and "hyperion.io/v1alpha1" in line and "HyperionWorkload" in line
    served = {x.split()[0] for x in res.splitlines()[1:]}
    for name in ("pods", "services", "nodes", "namespaces", "events", "deployments", "jobs"):
        assert name in served, name
    assert "statefulsets" in served
    cats = kube.run("api-resources", "--categories=hyperion", "-o", "name").stdout.split()
    assert cats == ["hyperionworkloads.hyperion.io"]


def test_nodes_are_mesh_members(kube: Kubectl) -> None:
    def ready() -> bool:
        nodes = kube.json("get", "nodes")["items"]
        names = sorted(n["metadata"]["name"] for n in nodes)
        assert names == ["node-1", "node-2"], names
        for n in nodes:
            cond = {c["type"]: c["status"] for c in n["status"]["conditions"]}
            assert cond["Ready"] == "True"
            assert n["status"]["capacity"]["cpu"]
            assert n["metadata"]["labels"]["kubernetes.io/hostname"] == n["metadata"]["name"]
        return True

    eventually(ready, timeout=10)
    table = kube.run("get", "nodes", "-o", "wide").stdout
    assert table.splitlines()[0].split()[:5] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert "INTERNAL-IP" in table.splitlines()[0]
    assert "Ready" in table


def test_apply_get_describe_delete_hwl(kube: Kubectl, tmp_path: Path) -> None:
    f = tmp_path / "hwl.yaml"
    f.write_text(HWL)
    out = kube.run("apply", "-f", str(f)).stdout
    assert "hyperionworkload.hyperion.io/resnet50-inference created" in out
    got = kube.json("get", "hwl", "resnet50-inference")
    assert got["spec"]["replicas"] == 2
    assert got["spec"]["policy"]["users"][0] == {"geography": "EU", "weight": 0.7}
    assert "kubectl.kubernetes.io/last-applied-configuration" in got["metadata"]["annotations"]
    # Re-apply with a change: a patch, generation moves.
    f.write_text(HWL.replace("replicas: 2", "replicas: 3"))
    assert "configured" in kube.run("apply", "-f", str(f)).stdout
    got2 = kube.json("get", "hwl", "resnet50-inference")
    assert got2["spec"]["replicas"] == 3
    assert got2["metadata"]["generation"] == got["metadata"]["generation"] + 1
    assert "unchanged" in kube.run("apply", "-f", str(f)).stdout
    table = kube.run("get", "hyperion").stdout
    assert "resnet50-inference" in table
    desc = kube.run("describe", "hwl", "resnet50-inference").stdout
    assert "Name:" in desc and "resnet50-inference" in desc and "latency" in desc
    assert "deleted" in kube.run("delete", "-f", str(f)).stdout
    gone = kube.run("get", "hwl", "resnet50-inference", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_server_side_apply(kube: Kubectl, tmp_path: Path) -> None:
    f = tmp_path / "d.yaml"
    f.write_text(DEPLOY.replace("name: web\n", "name: ssa\n", 1))
    out = kube.run("apply", "--server-side", "-f", str(f)).stdout
    assert "deployment.apps/ssa serverside-applied" in out
    got = kube.json("get", "deployment", "ssa", "--show-managed-fields")
    assert got["spec"]["replicas"] == 2
    managers = {m["manager"]: m["operation"] for m in got["metadata"]["managedFields"]}
    assert managers.get("kubectl") == "Apply"
    f.write_text(
        DEPLOY.replace("name: web\n", "name: ssa\n", 1).replace("replicas: 2", "replicas: 4")
    )
    kube.run("apply", "--server-side", "-f", str(f))
    assert kube.json("get", "deployment", "ssa")["spec"]["replicas"] == 4
    kube.run("delete", "deployment", "ssa")


def test_scale_rollout_status_and_get_all(kube: Kubectl, tmp_path: Path) -> None:
    f = tmp_path / "d.yaml"
    f.write_text(DEPLOY)
    kube.run("apply", "-f", str(f))
    assert "scaled" in kube.run("scale", "deployment", "web", "--replicas=3").stdout
    d = kube.json("get", "deployment", "web")
    assert d["spec"]["replicas"] == 3
    # What a controller would report (the scheduler fills this in for real).
    status = {"status": {"observedGeneration": d["metadata"]["generation"], "replicas": 3,
                         "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3,
                         "conditions": [{"type": "Available", "status": "True",
                                         "reason": "MinimumReplicasAvailable"}]}}  # fmt: skip
    kube.run("patch", "deployment", "web", "--subresource=status", "--type=merge",
             "-p", json.dumps(status))  # fmt: skip
    out = kube.run("rollout", "status", "deployment/web", "--timeout=10s").stdout
    assert "successfully rolled out" in out
    kube.run("wait", "--for=condition=Available", "deployment/web", "--timeout=10s")
    all_ = kube.run("get", "all").stdout
    assert "deployment.apps/web" in all_
    assert "3/3" in kube.run("get", "deployment", "web").stdout
    kube.run("delete", "-f", str(f))


def ns(name: str) -> str:
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"


def svc(name: str, namespace: str = "default") -> str:
    return (
        f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"
        "spec:\n  ports:\n  - port: 80\n    targetPort: 8080\n"
    )


def test_get_watch_sees_new_objects(kube: Kubectl) -> None:
    w = kube.popen("get", "services", "-w", "--request-timeout=20s")
    try:
        time.sleep(0.5)
        kube.run("create", "-f", "-", input=svc("watched"))
        deadline = time.monotonic() + 10
        seen = ""
        assert w.stdout is not None
        while time.monotonic() < deadline and "watched" not in seen:
            seen += w.stdout.readline()
        assert "watched" in seen
    finally:
        w.kill()
        w.wait()
    kube.run("delete", "service", "watched")


def test_get_all_namespaces_and_namespaces(kube: Kubectl) -> None:
    kube.run("create", "-f", "-", input=ns("team-a"))
    kube.run("create", "-f", "-", input=svc("svc-a", "team-a"))
    out = kube.run("get", "services", "-A").stdout
    assert "team-a" in out and "svc-a" in out
    assert "team-a" in kube.run("get", "namespaces").stdout
    assert "default" in kube.run("get", "namespaces").stdout
    kube.run("delete", "namespace", "team-a")
    assert kube.run("get", "services", "-n", "team-a", "-o", "name").stdout.strip() == ""


def test_logs_and_follow_from_another_node(kube: Kubectl) -> None:
    """The pod runs on node-2 (the real process runtime); kubectl talks to node-1,
    which fetches the log from node-2 as the API server asks a kubelet."""
    pod = POD.format(name="logger").replace("node-1", "node-2")
    pod = pod.replace(
        '["sh", "-c", "echo hi"]', '["sh", "-c", "echo line 1; echo line 2; sleep 2; echo line 3"]'
    )
    pod += "  restartPolicy: Never\n"
    kube.run("apply", "-f", "-", input=pod)
    eventually(lambda: kube.run("logs", "logger", check=False).stdout == "line 1\nline 2\n")
    assert kube.run("logs", "logger", "--tail=1").stdout == "line 2\n"
    f = kube.popen("logs", "-f", "logger")
    try:
        out, _ = f.communicate(timeout=15)  # ends when the container terminates
    finally:
        f.kill()
    assert out == "line 1\nline 2\nline 3\n"
    done = kube.json("get", "pod", "logger")
    assert done["status"]["phase"] == "Succeeded"
    kube.run("delete", "pod", "logger")


def test_wait_for_condition(kube: Kubectl) -> None:
    pod = POD.format(name="waiter").replace('["sh", "-c", "echo hi"]', '["sleep", "30"]')
    kube.run("apply", "-f", "-", input=pod)
    w = kube.popen("wait", "--for=condition=Ready", "pod/waiter", "--timeout=15s")
    out, err = w.communicate(timeout=20)
    assert w.returncode == 0, err
    assert "condition met" in out
    kube.run("delete", "pod", "waiter")


def test_object_created_on_one_node_is_seen_on_the_other(kube: Kubectl) -> None:
    kube.run("--context", "node-1", "create", "-f", "-", input=ns("replicated"))
    eventually(
        lambda: "replicated" in kube.run("--context", "node-2", "get", "ns", "-o", "name").stdout,
        timeout=5,
    )
    kube.run("--context", "node-2", "delete", "namespace", "replicated")
    eventually(
        lambda: (
            "replicated" not in kube.run("--context", "node-1", "get", "ns", "-o", "name").stdout
        ),
        timeout=5,
    )


# ------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("replicas: 2", "replicas: -1"), "spec.replicas"),
        (("goal: latency", "goal: fastest"), "spec.policy.goal"),
        (("replicas: 2", "replicas: two"), "spec.replicas"),
    ],
)
def test_bad_manifests_get_invalid_and_change_nothing(
    kube: Kubectl, change: tuple[str, str], field: str
) -> None:
    bad = HWL.replace(*change).replace("resnet50-inference", "bad-hwl")
    p = kube.run("apply", "-f", "-", input=bad, check=False)
    assert p.returncode != 0
    assert field in p.stderr, p.stderr
    assert kube.run("get", "hwl", "bad-hwl", check=False).returncode != 0


def test_missing_containers_is_invalid(kube: Kubectl) -> None:
    doc = yaml.safe_load(HWL)
    doc["metadata"]["name"] = "no-containers"
    del doc["spec"]["template"]["spec"]["containers"]
    p = kube.run("apply", "-f", "-", input=json.dumps(doc), check=False)
    assert p.returncode != 0 and "spec.template.spec.containers" in p.stderr, p.stderr


def test_unknown_field_rejected_by_strict_validation(kube: Kubectl) -> None:
    bad = DEPLOY.replace("name: web\n", "name: strict\n", 1).replace(
        "  replicas: 2\n", "  replicas: 2\n  replicaz: 3\n"
    )
    p = kube.run("apply", "-f", "-", input=bad, check=False)
    assert p.returncode != 0 and "replicaz" in p.stderr, p.stderr
    assert kube.run("get", "deployment", "strict", check=False).returncode != 0


def test_protobuf_bodies_are_decoded(kube: Kubectl) -> None:
    # kubectl create <generator> sends protobuf; the decoder is tested in test_api_protobuf.
    kube.run("create", "namespace", "pb")
    assert kube.json("get", "namespace", "pb")["metadata"]["name"] == "pb"


def test_malformed_yaml_and_not_found_and_already_exists(kube: Kubectl) -> None:
    p = kube.run("apply", "-f", "-", input="apiVersion: v1\nkind: [oops\n", check=False)
    assert p.returncode != 0
    p = kube.run("get", "pod", "nope", check=False)
    assert p.returncode == 1 and 'pods "nope" not found' in p.stderr
    kube.run("create", "-f", "-", input=ns("dup"))
    p = kube.run("create", "-f", "-", input=ns("dup"), check=False)
    assert p.returncode != 0 and "AlreadyExists" in p.stderr
    kube.run("delete", "namespace", "dup")


def test_view_user_is_forbidden_to_write(kube: Kubectl, tmp_path: Path) -> None:
    cfg = subprocess.run(
        ["hyperion", "kubeconfig", "--dir", str(kube.dir), "--user", "viewer", "--role", "view"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    path = tmp_path / "viewer.kubeconfig"
    path.write_text(cfg)
    viewer = Kubectl(kube.dir)
    viewer.env["KUBECONFIG"] = str(path)
    assert viewer.run("get", "namespaces").returncode == 0
    p = viewer.run("create", "-f", "-", input=ns("nope"), check=False)
    assert p.returncode != 0 and "Forbidden" in p.stderr and "viewer" in p.stderr


def test_another_kubectl_minor(kube: Kubectl, tmp_path: Path) -> None:
    other = Kubectl(kube.dir, KUBECTL_OTHER)
    assert "v1.30" in other.run("version", "--client").stdout
    f = tmp_path / "hwl.yaml"
    f.write_text(HWL.replace("resnet50-inference", "old-client"))
    other.run("apply", "-f", str(f))
    assert "old-client" in other.run("get", "hwl").stdout
    other.run("delete", "-f", str(f))
