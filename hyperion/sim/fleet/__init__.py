"""The fleet model (DESIGN §12): seeded scenarios of a hybrid AWS/GCP/Azure/edge fleet
built from the data in ``../shared/data``, runs of placement policies on them, the
baselines, the benchmark, and (with the ``rl`` extra) the gymnasium environment and
MaskablePPO training of the ``rl`` policy."""
