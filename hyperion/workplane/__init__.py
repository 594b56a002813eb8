"""Workload plane: pub/sub, CRDT state, ephemeral Raft groups, sidecar API.

Built so far: the Raft core (``raft.py``), its multiplexing host (``raft_host.py``) and
wire codec (``raft_codec.py``), driven by the simulator in tests; the node does not run
them yet.
"""
