"""Test-suite settings: property tests draw the same examples on every run and never
fail on timing (rule 7: tests are deterministic), so a red CI is always reproducible
from the commit alone: no deadlines, no slow-generation health check."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "hyperion",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("hyperion")
