"""Kubernetes-compatible REST API served by every node (not yet built)."""
