"""Deterministic simulator: virtual clock, measured inter-region RTTs, loss, partitions, crashes."""
