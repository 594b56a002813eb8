"""The ``rl`` policy: a PPO-trained candidate scorer evaluated with numpy only.

Theory of operation: a decision sees the request (context features) and up to
``MAX_CANDIDATES`` feasible bids (per-candidate features). One small MLP, shared by
all candidates, maps ``[context, candidate]`` to a logit; the policy picks the highest
logit among the feasible candidates (infeasible ones are masked, exactly as in
training). Sharing the MLP makes the scorer indifferent to the order of the bids and
lets it score any number of them. When more than ``MAX_CANDIDATES`` bids are feasible,
the ``rules`` score picks which ones the network sees (DESIGN §6: only a bounded set of
bids is ever scored). Equal logits break on the (tender id, node id) hash.

The weights file (``rl_weights.npz``, trained by ``hyperion policy train``) holds
``w1 b1 w2 b2 w3 b3`` and the feature layout version; nothing here imports torch.
``features`` is the single definition of the observation, used by the training
environment too, so what is trained is what runs. Pure apart from ``load_weights``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hyperion.policy.model import (
    GOALS,
    NEAR_MS,
    Candidate,
    Decision,
    NoFit,
    Request,
    location_rtt,
)
from hyperion.policy.plugins import BAND_MONTHLY_RATE, explain, feasible
from hyperion.policy.rules import scores, tie_break

FloatArray = npt.NDArray[np.float32]

FEATURES_VERSION = 3
MAX_CANDIDATES = 64  # bids one decision scores; beyond, rules pick the 64 best
USER_GEOS = ("US", "EU", "APAC", "SA")  # the user geographies the fleet model has
# the observation's columns, by name (context, then per candidate)
CONTEXT_FEATURES = (
    *(f"goal_{g}" for g in GOALS),
    "batch",
    "prefer_spot",
    "replica_fraction",
    "one_over_replicas",
    *(f"users_{g}" for g in USER_GEOS),
    *(f"placed_rtt_{g}" for g in USER_GEOS),
    "data_locality",
    "candidates",
    "tail_rtt",
    "uncovered",
)
CANDIDATE_FEATURES = (
    "log_cost",
    "log_cost_over_cheapest",
    "spot",
    "band",
    "band_monthly_rate",
    "log_speed",
    "log_efficiency_over_best",
    "user_rtt",
    "user_rtt_after",
    *(f"rtt_{g}" for g in USER_GEOS),
    "locality",
    "replicas_on_node",
    "replicas_in_zone",
    "replicas_in_region",
    "load",
    "reliability",
    "edge",
    "gpus_free",
    "tail_rtt_after",
    "tail_rtt_gain",
    "uncovered_after",
    "uncovered_gain",
    "cost_rank",
    "user_rtt_after_rank",
)
CTX_DIM = len(CONTEXT_FEATURES)
CAND_DIM = len(CANDIDATE_FEATURES)
TAIL_QUANTILE = 0.01  # the reward's P99: the slowest 1 % of requests set its latency
WEIGHTS_FILE = Path(__file__).with_name("rl_weights.npz")
FEATURE_MAX = 10.0  # every feature is clipped to [-10, 10]
_RTT_SCALE_MS = 100.0
_NO_RTT = 3.0  # placed RTT feature when no replica serves a geography yet (300 ms)
_FAR_MS = _NO_RTT * _RTT_SCALE_MS


def _users(req: Request) -> tuple[tuple[str, float], ...]:
    """The request's user weights per location (a geography, or a metro in one);
    evenly spread over the geographies when none are given."""
    return req.user_weights() or tuple((g, 1.0 / len(USER_GEOS)) for g in USER_GEOS)


def _rtt(rtts: Mapping[str, float], location: str) -> float:
    return location_rtt(rtts, location, _FAR_MS)


def tail_rtt_ms(rtt_ms: Mapping[str, float], users: Sequence[tuple[str, float]]) -> float:
    """The RTT the slowest ``TAIL_QUANTILE`` of the users see: walking the user
    locations from the farthest, the RTT of the one at which their summed weight passes
    the quantile. A metro with 2 % of the users 200 ms away sets a P99 of at least
    200 ms, whatever the mean RTT is; one with 0.5 % does not."""
    acc = 0.0
    for g, w in sorted(users, key=lambda gw: -_rtt(rtt_ms, gw[0])):
        acc += w
        if acc > TAIL_QUANTILE:
            return min(_rtt(rtt_ms, g), _FAR_MS)
    return 0.0


def uncovered(req: Request, capacity: Mapping[str, float]) -> float:
    """The share of the service's users whose demand the capacity within ``NEAR_MS``
    of them cannot absorb: a location with weight ``w`` needs ``w * replicas`` units
    of reference-GPU speed (each replica's share of the load on a reference GPU)."""
    out = 0.0
    for g, w in _users(req):
        need = w * max(req.replicas, 1)
        if need > 0:
            out += w * max(0.0, 1.0 - location_rtt(capacity, g, 0.0) / need)
    return out


def context_features(req: Request, n_candidates: int) -> FloatArray:
    """The request part of the observation (``CTX_DIM`` floats)."""
    users = req.geography_weights()
    ctx = [1.0 if req.goal == g else 0.0 for g in GOALS]
    ctx += [
        1.0 if req.kind == "batch" else 0.0,
        1.0 if req.prefer_spot else 0.0,
        req.replica / max(req.replicas, 1),
        1.0 / max(req.replicas, 1),
    ]
    ctx += [users.get(g, 0.0) for g in USER_GEOS]
    ctx += [
        min(req.placed_rtt_ms.get(g, _NO_RTT * _RTT_SCALE_MS) / _RTT_SCALE_MS, _NO_RTT)
        for g in USER_GEOS
    ]
    ctx += [1.0 if req.data_locality else 0.0, n_candidates / MAX_CANDIDATES]
    ctx.append(tail_rtt_ms(req.placed_rtt_ms, _users(req)) / _RTT_SCALE_MS)
    ctx.append(uncovered(req, req.placed_capacity))
    out = np.asarray(ctx, dtype=np.float32)
    assert out.shape == (CTX_DIM,)
    return out


def _ranks(values: Sequence[float]) -> list[float]:
    """0 for the smallest value, 1 for the largest (ties share the lower rank)."""
    n = len(values)
    if n <= 1:
        return [0.0] * n
    order = sorted(values)
    return [order.index(v) / (n - 1) for v in values]


def candidate_features(req: Request, cands: Sequence[Candidate]) -> FloatArray:
    """The per-candidate part of the observation (``len(cands) x CAND_DIM``)."""
    users = _users(req)
    placed = {u: _rtt(req.placed_rtt_ms, u) for u, _ in users}
    tail_now = tail_rtt_ms(req.placed_rtt_ms, users)
    short_now = uncovered(req, req.placed_capacity)
    costs = [c.cost_per_hour(req) for c in cands]
    eff = [c.speed / (k + 1e-3) for c, k in zip(cands, costs, strict=True)]
    min_cost = min(costs, default=0.0)
    max_eff = max(eff, default=1.0)
    locality_cloud, _, locality_region = (req.data_locality or "").partition(":")
    marginal = []
    rows = []
    for c, cost, e in zip(cands, costs, eff, strict=True):
        rtts = [_rtt(c.rtt_ms, g) / _RTT_SCALE_MS for g in USER_GEOS]
        mine = {u: _rtt(c.rtt_ms, u) for u, _ in users}
        after = {u: min(mine[u], placed[u]) for u, _ in users}
        weighted = sum(w * mine[u] for u, w in users) / _RTT_SCALE_MS
        gain = sum(w * after[u] for u, w in users) / _RTT_SCALE_MS
        marginal.append(gain)
        tail = tail_rtt_ms(after, users)
        with_c = {
            u: location_rtt(req.placed_capacity, u, 0.0) + (c.speed if mine[u] <= NEAR_MS else 0.0)
            for u, _ in users
        }
        short = uncovered(req, with_c)
        band = c.interruption_band if c.interruption_band is not None else 0
        if locality_cloud and c.cloud == locality_cloud:
            locality = 1.0 if c.region == locality_region else 0.5
        else:
            locality = 0.0
        rows.append(
            [
                math.log(cost + 0.01) / 3.0,
                math.log((cost + 0.01) / (min_cost + 0.01)),
                1.0 if c.spot else 0.0,
                band / 4.0 if c.spot else 0.0,
                BAND_MONTHLY_RATE[band] if c.spot else 0.0,
                math.log(c.speed),
                math.log(e / max_eff),
                weighted,
                gain,
                *rtts,
                locality,
                min(c.replicas_on_node, 4) / 4.0,
                min(c.replicas_in_zone, 4) / 4.0,
                min(c.replicas_in_region, 4) / 4.0,
                c.load,
                c.reliability,
                1.0 if c.edge else 0.0,
                c.gpus_free / c.gpus if c.gpus else 0.0,
                tail / _RTT_SCALE_MS,
                (tail_now - tail) / _RTT_SCALE_MS,
                short,
                short_now - short,
                0.0,
                0.0,
            ]
        )
    for row, rc, rm in zip(rows, _ranks(costs), _ranks(marginal), strict=True):
        row[-2], row[-1] = rc, rm
    out = np.asarray(rows, dtype=np.float32).reshape(len(cands), CAND_DIM)
    return np.clip(out, -FEATURE_MAX, FEATURE_MAX)


def shortlist(req: Request, candidates: Sequence[Candidate], tender_id: str) -> list[int]:
    """Indices of the feasible candidates the network scores, at most MAX_CANDIDATES,
    in the order given."""
    ok = feasible(req, candidates)
    if len(ok) <= MAX_CANDIDATES:
        return ok
    values = scores(req, [candidates[i] for i in ok])
    order = sorted(
        range(len(ok)), key=lambda k: (-values[k], tie_break(tender_id, candidates[ok[k]].node_id))
    )
    return sorted(ok[k] for k in order[:MAX_CANDIDATES])


def observation(
    req: Request, candidates: Sequence[Candidate], slots: Sequence[int]
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """The flat observation ``[context, K x candidate]`` (zero-padded) and the action
    mask for the candidates at ``slots`` (indices into ``candidates``)."""
    obs = np.zeros(CTX_DIM + MAX_CANDIDATES * CAND_DIM, dtype=np.float32)
    mask = np.zeros(MAX_CANDIDATES, dtype=np.bool_)
    obs[:CTX_DIM] = context_features(req, len(slots))
    if slots:
        feats = candidate_features(req, [candidates[i] for i in slots])
        obs[CTX_DIM : CTX_DIM + len(slots) * CAND_DIM] = feats.ravel()
        mask[: len(slots)] = True
    return obs, mask


@dataclass(frozen=True, slots=True)
class MlpWeights:
    """The actor of the trained policy: ``[ctx, cand] -> tanh -> tanh -> logit``."""

    w1: FloatArray
    b1: FloatArray
    w2: FloatArray
    b2: FloatArray
    w3: FloatArray
    b3: FloatArray

    def __post_init__(self) -> None:
        hidden = self.w1.shape[1]
        if self.w1.shape != (CTX_DIM + CAND_DIM, hidden):
            raise ValueError(f"w1 has shape {self.w1.shape}, expected ({CTX_DIM + CAND_DIM}, H)")
        if self.w2.shape[0] != hidden or self.w3.shape != (self.w2.shape[1],):
            raise ValueError("layer shapes do not chain")

    def logits(self, ctx: FloatArray, feats: FloatArray) -> FloatArray:
        """One logit per candidate row of ``feats``; the context part of layer 1 is
        computed once for all of them."""
        h = np.tanh(feats @ self.w1[CTX_DIM:] + (ctx @ self.w1[:CTX_DIM] + self.b1))
        h = np.tanh(h @ self.w2 + self.b2)
        out: FloatArray = h @ self.w3 + self.b3
        return out


def load_weights(path: Path = WEIGHTS_FILE) -> MlpWeights:
    """Read a weights file written by ``hyperion policy train``; raise ValueError."""
    try:
        with np.load(path) as z:
            version = int(z["features_version"])
            arrays = {k: z[k].astype(np.float32) for k in ("w1", "b1", "w2", "b2", "w3", "b3")}
    except (OSError, KeyError) as e:
        raise ValueError(f"cannot read policy weights {path}: {e}") from e
    if version != FEATURES_VERSION:
        raise ValueError(f"{path}: feature layout {version}, this code uses {FEATURES_VERSION}")
    arrays["b3"] = arrays["b3"].reshape(())
    return MlpWeights(**arrays)


class RlPolicy:
    """The learned scorer: masked argmax of the MLP's logits over the shortlist."""

    name = "rl"

    def __init__(self, weights: MlpWeights) -> None:
        self.weights = weights

    @classmethod
    def load(cls, path: Path = WEIGHTS_FILE) -> RlPolicy:
        return cls(load_weights(path))

    def choose(
        self, request: Request, candidates: Sequence[Candidate], tender_id: str
    ) -> Decision | NoFit:
        slots = shortlist(request, candidates, tender_id)
        if not slots:
            return explain(request, candidates)
        ctx = context_features(request, len(slots))
        feats = candidate_features(request, [candidates[i] for i in slots])
        logits = self.weights.logits(ctx, feats)
        k = min(
            range(len(slots)),
            key=lambda j: (-float(logits[j]), tie_break(tender_id, candidates[slots[j]].node_id)),
        )
        i = slots[k]
        return Decision(candidates[i].node_id, i, float(logits[k]), self.name)
