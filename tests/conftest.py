"""Test-suite settings: property tests draw the same examples on every run (rule 7:
tests are deterministic), so a red CI is always reproducible from the commit alone."""

from hypothesis import settings

settings.register_profile("hyperion", derandomize=True, database=None)
settings.load_profile("hyperion")
