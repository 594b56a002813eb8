"""Object catalog, workload custodians and the tender/bid/award scheduler (not yet built)."""
