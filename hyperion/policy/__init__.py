"""Placement policies: transparent rules and the numpy-evaluated RL scorer (not yet built)."""
