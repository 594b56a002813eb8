"""The committed protobuf/gRPC code is exactly what protoc generates from the .proto."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATED = [
    f"{base}{suffix}"
    for base in ("wire", "compat/wire_v1")
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
