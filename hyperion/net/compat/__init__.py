"""Frozen wire schemas of earlier protocol versions (see wire_v1.proto)."""
