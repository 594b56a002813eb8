"""Protocol cores stay sans-I/O: no asyncio, socket, ssl, time or global random (STYLE §1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "hyperion"
CORES = [
    "core.py",
    "mesh/membership.py",
    "mesh/phi.py",
    "mesh/table.py",
    "mesh/dht.py",
    "mesh/pubsub.py",
    "mesh/leases.py",
    "policy/model.py",
    "policy/plugins.py",
    "policy/reward.py",
    "policy/rules.py",
    "policy/rl.py",
    "control/hlc.py",
    "control/catalog.py",
    "control/custodian.py",
    "workplane/raft.py",
    "workplane/raft_host.py",
    "workplane/dapr.py",
    "workplane/pubsub.py",
    "workplane/state.py",
    "workplane/invoke.py",
    "workplane/kv.py",
    "workplane/strong.py",
    "control/strong.py",
]
FORBIDDEN = {"asyncio", "socket", "ssl", "time", "threading", "selectors", "grpc"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("rel", CORES)
def test_core_imports_no_io(rel: str) -> None:
    mods = imported_modules(ROOT / rel)
    assert not (mods & FORBIDDEN), f"{rel} imports {mods & FORBIDDEN}"


@pytest.mark.parametrize("rel", CORES)
def test_core_uses_only_injected_randomness(rel: str) -> None:
    src = (ROOT / rel).read_text()
    tree = ast.parse(src)
    for node in ast.walk(tree):
        # random is allowed only as a type (random.Random passed in), never called at module level
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            base = node.func.value
            if isinstance(base, ast.Name) and base.id == "random":
                pytest.fail(
                    f"{rel}:{node.lineno} calls random.{node.func.attr} (use the injected rng)"
                )
