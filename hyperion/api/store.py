"""The API's view of the object catalog on one node.

``ObjectStore`` adapts the replicated, sans-I/O ``Catalog`` core (``hyperion.control``)
to what an API server needs:

* Kubernetes object semantics at the edge: the catalog keeps objects without
  ``metadata.resourceVersion`` (each node has its own sequence); the store strips it on
  write and sets it from the node-local ``rv`` on every read.
* Writes go through the driver (``execute`` runs the effects the core returns, e.g. the
  push of a fresh write to peers), on the event loop that owns the core.
* Watchers: ``wait_newer(rv)`` returns when the catalog's rv moves past ``rv``; the
  daemon calls ``notify()`` whenever the core reports applied changes (local or from
  peers), so a watch wakes within one event-loop turn.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

from hyperion.control.catalog import Catalog, Change, Entry, Key
from hyperion.core import Effect

WriteFn = Callable[[Key, dict[str, Any] | None, float], tuple[Change | None, list[Effect]]]


def with_rv(obj: dict[str, Any], rv: int) -> dict[str, Any]:
    """A copy of ``obj`` (top level and metadata) with ``metadata.resourceVersion``."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta["resourceVersion"] = str(rv)
    out["metadata"] = meta
    return out


def without_rv(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta.pop("resourceVersion", None)
    return out


class ObjectStore:
    """One node's object store (see the module docstring)."""

    def __init__(
        self,
        catalog: Catalog,
        execute: Callable[[list[Effect]], None],
        clock: Callable[[], float],
        write: WriteFn | None = None,
    ) -> None:
        """``write`` defaults to ``catalog.write``; a node passes ``MeshNode.catalog_write``
        so that the effects go through the machine plane's routing."""
        self.catalog = catalog
        self._execute = execute
        self._write = write or catalog.write
        self._clock = clock
        self._changed = asyncio.Event()

    @property
    def rv(self) -> int:
        return self.catalog.rv

    def get(self, key: Key) -> dict[str, Any] | None:
        entry = self.catalog.get(key)
        return None if entry is None or entry.obj is None else with_rv(entry.obj, entry.rv)

    def entry(self, key: Key) -> Entry | None:
        return self.catalog.get(key)

    def list(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return [
            with_rv(e.obj, e.rv)
            for e in self.catalog.list(resource, namespace)
            if e.obj is not None
        ]

    def write(self, key: Key, obj: dict[str, Any] | None) -> Change | None:
        """Store ``obj`` (None deletes); return the change applied, with its rv."""
        change, effects = self._write(key, None if obj is None else without_rv(obj), self._clock())
        self._execute(effects)
        self.notify()
        return change

    def changes_since(self, rv: int) -> list[Change]:
        return self.catalog.changes_since(rv)

    def notify(self) -> None:
        """Wake every watcher (called after local writes and remote changes)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_newer(self, rv: int, timeout: float) -> bool:
        """Wait until the store's rv exceeds ``rv``; False on timeout."""
        while self.catalog.rv <= rv:
            event = self._changed
            try:
                async with asyncio.timeout(timeout):
                    await event.wait()
            except TimeoutError:
                return self.catalog.rv > rv
        return True
