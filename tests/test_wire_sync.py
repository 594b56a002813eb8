"""The committed protobuf/gRPC code is exactly what protoc generates from the .proto,
and so is the descriptor set of the vendored Kubernetes protos."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATED = [
    f"{base}{suffix}"
    for base in ("wire", "compat/wire_v1", "raft", "workload")
    for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
]


def test_generated_code_is_in_sync(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_proto.py"), str(tmp_path)], check=True
    )
    for name in GENERATED:
        fresh = (tmp_path / "hyperion" / "net" / name).read_text()
        committed = (ROOT / "hyperion" / "net" / name).read_text()
        assert fresh == committed, f"{name} is stale: run python tools/gen_proto.py"
    k8s = "hyperion/api/k8spb/descriptors.binpb"
    fresh_k8s, committed_k8s = (tmp_path / k8s).read_bytes(), (ROOT / k8s).read_bytes()
    assert fresh_k8s == committed_k8s, f"{k8s} is stale: run python tools/gen_proto.py"
