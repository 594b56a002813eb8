"""Workload plane: pub/sub, CRDT state, ephemeral Raft groups, sidecar API (not yet built)."""
