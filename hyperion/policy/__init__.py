"""Placement policies (DESIGN §7): Filter/Score plug-ins, the reward, ``rules`` and ``rl``.

The scheduler asks a policy by name::

    from hyperion.policy import Candidate, Request, get_policy
    policy = get_policy("rules")          # or "rl" (numpy only, shipped weights)
    outcome = policy.choose(request, bids, tender_id)
    if isinstance(outcome, NoFit): ...    # outcome.message -> Unschedulable condition

Everything here is pure and deterministic; ``get_policy("rl")`` reads the packaged
weights file once.
"""

from __future__ import annotations

from hyperion.policy.model import (
    GOALS,
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    Candidate,
    Code,
    Decision,
    MatchExpression,
    NoFit,
    Policy,
    Request,
    Status,
    VersionRange,
)
from hyperion.policy.plugins import check, explain, feasible, violates_hard_constraints
from hyperion.policy.reward import REWARD_WEIGHTS, VIOLATION_REWARD, reward
from hyperion.policy.rules import RulesPolicy, tie_break

POLICIES = ("rules", "rl")

__all__ = [
    "GOALS",
    "GPU_PRODUCT_LABEL",
    "GPU_RESOURCE",
    "POLICIES",
    "REWARD_WEIGHTS",
    "VIOLATION_REWARD",
    "Candidate",
    "Code",
    "Decision",
    "MatchExpression",
    "NoFit",
    "Policy",
    "Request",
    "RulesPolicy",
    "Status",
    "VersionRange",
    "check",
    "explain",
    "feasible",
    "get_policy",
    "reward",
    "tie_break",
    "violates_hard_constraints",
]


def get_policy(name: str) -> Policy:
    """``rules`` or ``rl`` (``--policy rules|rl``); raise ValueError for another name or
    an unreadable weights file."""
    if name == "rules":
        return RulesPolicy()
    if name == "rl":
        from hyperion.policy.rl import RlPolicy

        return RlPolicy.load()
    raise ValueError(f"unknown policy {name!r}: choose one of {', '.join(POLICIES)}")
