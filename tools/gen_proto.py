"""Regenerate the protobuf/gRPC Python code from hyperion/net/*.proto.

Usage: python tools/gen_proto.py [OUT_DIR]   (default: the repository root, in place)
tests/test_wire.py runs it into a temporary directory and fails if the result differs
from the committed files.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTOS = ["hyperion/net/wire.proto", "hyperion/net/compat/wire_v1.proto"]


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for proto in PROTOS:
        args = [
            "protoc",
            f"-I{ROOT}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            str(ROOT / proto),
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed for {proto}")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
