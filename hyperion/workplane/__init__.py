"""Workload plane: pub/sub, CRDT state, ephemeral Raft groups, sidecar API.

Built so far: the Dapr-compatible sidecar a node serves to its pods (``sidecar.py``,
over the pure ``dapr.py``, ``state.py`` and ``invoke.py``: eventual state in the
catalog, service invocation, metadata, health); the Raft core (``raft.py``), its
multiplexing host (``raft_host.py``) and wire codec (``raft_codec.py``), driven by the
simulator in tests; the node does not run Raft groups yet.
"""
