"""Shared by the tests that run a real ``Node`` in-process or the ``hyperion`` CLI as a
subprocess: waiting on a condition, a node running until the block ends, the CLI's
environment (its own XDG data dir, never the real default mesh dir)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from hyperion.daemon import Node

CALL_TIMEOUT_S = 60.0


async def wait_for(pred: Callable[[], bool], timeout_s: float = 10.0, what: str = "") -> None:
    """Poll ``pred`` every 20 ms; AssertionError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(node: Node) -> AsyncIterator[Node]:
    """``node`` running (listening) for the block; stopped and awaited after it."""
    stop = asyncio.Event()
    task = asyncio.create_task(node.run(stop))
    try:
        await wait_for(lambda: bool(node.addr) or task.done(), what="node to listen")
        if task.done():
            task.result()
        yield node
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")  # never touch the real default mesh dir
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("COLUMNS", None)
    return env


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m hyperion ARGS`` in ``tmp_path``, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "hyperion", *args],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT_S,
    )
