"""Runtimes that start replicas: supervised processes and Podman (not yet built)."""
