"""Train the ``rl`` placement policy with MaskablePPO and export it for numpy.

The network (``CandidateNet``) is the one ``hyperion.policy.rl.MlpWeights`` evaluates:
a shared per-candidate MLP ``[ctx, cand] -> tanh(H) -> tanh(H) -> logit`` whose logits
are the action distribution directly (sb3's final linear layer is replaced by the
identity), plus a critic on the context and the mean of the candidates' hidden vectors
(used in training only). Seeded: torch, numpy and the environments take ``seed``.

By default the actor is first behaviour-cloned from the search teacher (module
``expert``) on training seeds: its plans are replayed into (observation, mask, slot,
every slot's measured value), and the actor is fitted to a softmax of those values
(``clone_temperature``), each decision weighted by how much its options' values differ,
so the few decisions that make or break a run count most (any heuristic can be the
teacher instead, with plain labels). Plans from several searches can be cloned
together: DAgger rounds (``hyperion policy plan --start``) add the search's labels on
the states an earlier policy reached. Then MaskablePPO fine-tunes it on the run's own
reward, the metric the benchmark scores. ``baseline="difference"`` subtracts
``skypilot-like``'s reward on the same scenario (same objective, less variance), and
``"ratio"`` divides by it, which optimizes the mean *ratio* instead, weighing the cheap
scenarios that dominate the benchmark's mean far less than the benchmark does.
Every ``eval_every`` steps the numpy export is scored on validation seeds; the best
checkpoint is written to ``out`` with the training log (JSON lines) and a learning
curve (PNG) beside it. Needs the ``rl`` extra; this module is imported lazily.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv
from torch import nn

from hyperion.policy.rl import CAND_DIM, CTX_DIM, FEATURES_VERSION, MAX_CANDIDATES, MlpWeights
from hyperion.sim.fleet import seeds
from hyperion.sim.fleet.env import FleetEnv
from hyperion.sim.fleet.plans import (
    Dataset,
    check_training,
    load_dataset,
    plans_dataset,
    save_plans,
    search_plans,
)

HIDDEN = 64


class CandidateNet(nn.Module):
    """sb3 ``mlp_extractor``: latent_pi = one logit per candidate slot."""

    def __init__(self, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.l1 = nn.Linear(CTX_DIM + CAND_DIM, hidden)
        self.l2 = nn.Linear(hidden, hidden)
        self.l3 = nn.Linear(hidden, 1)
        self.v1 = nn.Linear(CTX_DIM + hidden, hidden)
        self.latent_dim_pi = MAX_CANDIDATES
        self.latent_dim_vf = hidden

    def _hidden(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = obs.shape[0]
        ctx = obs[:, :CTX_DIM]
        cand = obs[:, CTX_DIM:].reshape(b, MAX_CANDIDATES, CAND_DIM)
        x = torch.cat([ctx.unsqueeze(1).expand(b, MAX_CANDIDATES, CTX_DIM), cand], dim=-1)
        h = torch.tanh(self.l2(torch.tanh(self.l1(x))))
        valid = (cand.abs().sum(dim=-1, keepdim=True) > 0).float()
        return ctx, h, valid

    def forward_actor(self, obs: torch.Tensor) -> torch.Tensor:
        _, h, _ = self._hidden(obs)
        return self.l3(h).squeeze(-1)

    def forward_critic(self, obs: torch.Tensor) -> torch.Tensor:
        ctx, h, valid = self._hidden(obs)
        pooled = (h * valid).sum(dim=1) / valid.sum(dim=1).clamp(min=1.0)
        return torch.tanh(self.v1(torch.cat([ctx, pooled], dim=-1)))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_actor(obs), self.forward_critic(obs)


class CandidatePolicy(MaskableActorCriticPolicy):
    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = CandidateNet()

    def _build(self, lr_schedule: Callable[[float], float]) -> None:
        super()._build(lr_schedule)
        self.action_net = nn.Identity()  # the per-candidate logits are the distribution
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )


def export(model: MaskablePPO) -> MlpWeights:
    net = model.policy.mlp_extractor
    assert isinstance(net, CandidateNet)

    def arr(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.float32)

    return MlpWeights(
        w1=arr(net.l1.weight.T),
        b1=arr(net.l1.bias),
        w2=arr(net.l2.weight.T),
        b2=arr(net.l2.bias),
        w3=arr(net.l3.weight[0]),
        b3=arr(net.l3.bias[0]),
    )


def save_weights(w: MlpWeights, path: Path, meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        w1=w.w1,
        b1=w.b1,
        w2=w.w2,
        b2=w.b2,
        w3=w.w3,
        b3=w.b3,
        features_version=np.int64(FEATURES_VERSION),
        meta=np.array(json.dumps(meta, sort_keys=True)),
    )


def validate(w: MlpWeights, n: int) -> float:
    """Mean reward of the exported policy on the first ``n`` validation seeds."""
    from hyperion.policy.rl import RlPolicy
    from hyperion.sim.fleet import scenario
    from hyperion.sim.fleet.run import run

    pol = RlPolicy(w)
    return float(np.mean([run(scenario.make(s), pol).reward for s in seeds.validation_seeds(n)]))


class _Checkpoints(BaseCallback):
    def __init__(self, every: int, n_val: int, out: Path, log: Any, meta: dict[str, Any]):
        super().__init__()
        self.every, self.n_val, self.out, self.log, self.meta = every, n_val, out, log, meta
        self.best = -np.inf
        self.episodes: list[float] = []
        self.t0 = time.monotonic()
        self.next_eval = every

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            if "metrics" in info:
                self.episodes.append(float(info["metrics"].reward))
        if self.num_timesteps >= self.next_eval:
            self.next_eval += self.every
            self.evaluate()
        return True

    def evaluate(self) -> None:
        w = export(self.model)
        val = validate(w, self.n_val)
        recent = round(float(np.mean(self.episodes[-200:])), 4) if self.episodes else None
        row = {
            "steps": self.num_timesteps,
            "episodes": len(self.episodes),
            "train_reward_recent": recent,
            "validation_reward": round(val, 4),
            "wall_s": round(time.monotonic() - self.t0, 1),
        }
        if val > self.best:
            self.best = val
            save_weights(w, self.out, {**self.meta, **row})
            row["saved"] = True
        self.log.write(json.dumps(row) + "\n")
        self.log.flush()


def _no_values(n: int) -> npt.NDArray[np.float32]:
    return np.full((n, MAX_CANDIDATES), np.nan, dtype=np.float32)


def clone_dataset(teacher: str, scenario_seeds: range) -> Dataset:
    """(observation, mask, teacher's slot) for every decision ``teacher`` takes on
    ``scenario_seeds`` (training seeds), driven exactly as the benchmark drives it;
    decisions whose pick is outside the network's shortlist are left out."""
    from hyperion.policy.model import Decision
    from hyperion.policy.rl import observation, shortlist
    from hyperion.sim.fleet import scenario
    from hyperion.sim.fleet.bench import make_policy
    from hyperion.sim.fleet.run import FleetSim

    check_training(scenario_seeds)
    obs_l, mask_l, act_l = [], [], []
    for s in scenario_seeds:
        sim = FleetSim(scenario.make(s))
        pol = make_policy(teacher)
        seen = 0
        while (p := sim.next_decision()) is not None:
            regions = sim.st.preempted_regions
            if hasattr(pol, "observe_preemption"):
                for wid, region in regions[seen:]:
                    pol.observe_preemption(wid, region)
            seen = len(regions)
            out = pol.choose(p.request, p.candidates, p.tender_id)
            slots = shortlist(p.request, p.candidates, p.tender_id)
            if isinstance(out, Decision) and out.index in slots:
                obs, mask = observation(p.request, p.candidates, slots)
                obs_l.append(obs)
                mask_l.append(mask)
                act_l.append(slots.index(out.index))
            sim.apply(out)
    return (
        np.stack(obs_l),
        np.stack(mask_l),
        np.asarray(act_l, dtype=np.int64),
        _no_values(len(act_l)),
    )


def _valued(mask: npt.NDArray[np.bool_], values: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """Decisions where the teacher measured every feasible slot's value."""
    known = np.isfinite(values)
    out: npt.NDArray[np.bool_] = np.where(mask, known, True).all(axis=1) & known.any(axis=1)
    return out


def clone_targets(data: Dataset, temperature: float) -> npt.NDArray[np.float32]:
    """Per decision, the distribution the actor is fitted to: where the teacher measured
    every feasible slot's value, ``softmax(value / temperature)`` over them (a choice
    ``temperature`` worse in mean reward gets 1/e of the weight); elsewhere the
    teacher's slot alone."""
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    _, mask, act, values = data
    n = act.shape[0]
    target = np.zeros((n, MAX_CANDIDATES), dtype=np.float32)
    target[np.arange(n), act] = 1.0
    valued = _valued(mask, values)
    if valued.any():
        v = np.where(mask[valued], values[valued], -np.inf) / temperature
        v -= v.max(axis=1, keepdims=True)
        e = np.exp(v)
        target[valued] = e / e.sum(axis=1, keepdims=True)
    return target


def decision_weights(data: Dataset) -> npt.NDArray[np.float32]:
    """How much each decision matters, mean 1: where the teacher measured the options,
    the spread of their values (best less mean over the feasible slots), so the few
    decisions that make or break a run outweigh the many where every bid earns the
    same; decisions with a plain label get the mean."""
    _, mask, _, values = data
    valued = _valued(mask, values)
    spread = np.zeros(len(mask), dtype=np.float64)
    if valued.any():
        v = np.where(mask[valued], values[valued], np.nan)
        spread[valued] = np.nanmax(v, axis=1) - np.nanmean(v, axis=1)
    mean = spread[valued].mean() if valued.any() and spread[valued].mean() > 0 else 1.0
    spread[~valued] = mean
    out: npt.NDArray[np.float32] = (spread / mean).astype(np.float32)
    return out


def behaviour_clone(
    model: MaskablePPO,
    data: Dataset,
    *,
    epochs: int = 30,
    lr: float = 3e-3,
    seed: int = 0,
    temperature: float = 0.02,
    weighted: bool = False,
) -> dict[str, float]:
    """Fit the actor's masked logits to the teacher (cross-entropy with
    ``clone_targets``); return the final training accuracy (the teacher's slot is the
    argmax) and regret (where values are known: the best value less the value of the
    argmax, in mean reward)."""
    net = model.policy.mlp_extractor
    assert isinstance(net, CandidateNet)
    obs = torch.as_tensor(data[0])
    mask = torch.as_tensor(data[1])
    target = torch.as_tensor(clone_targets(data, temperature))
    weight = torch.as_tensor(decision_weights(data) if weighted else np.ones(len(data[2])))
    opt = torch.optim.Adam(
        [*net.l1.parameters(), *net.l2.parameters(), *net.l3.parameters()], lr=lr
    )
    gen = torch.Generator().manual_seed(seed)
    n = obs.shape[0]
    for _ in range(epochs):
        for idx in torch.randperm(n, generator=gen).split(256):
            logits = net.forward_actor(obs[idx]).masked_fill(~mask[idx], -1e9)
            nll = -(target[idx] * torch.log_softmax(logits, dim=1)).sum(dim=1)
            loss = (weight[idx] * nll).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = net.forward_actor(obs).masked_fill(~mask, -1e9).argmax(dim=1).numpy()
    values = data[3]
    rows = np.isfinite(values[np.arange(n), pred]) & np.isfinite(values).any(axis=1)
    best = np.nanmax(np.where(data[1], values, np.nan)[rows], axis=1) if rows.any() else []
    regret = float(np.mean(best - values[rows, pred[rows]])) if rows.any() else 0.0
    return {
        "clone_accuracy": round(float((pred == data[2]).mean()), 4),
        "clone_regret": round(regret, 5),
        "clone_valued": int(rows.sum()),
    }


def train(
    steps: int,
    seed: int,
    out: Path,
    *,
    n_envs: int = 2,
    eval_every: int = 5_000,
    n_val: int = 300,
    baseline: str = "difference",
    clone: str | None = "search",
    clone_scenarios: int = 400,
    learning_rate: float = 1e-4,
    ent_coef: float = 0.0,
    jobs: int = 1,
    clone_epochs: int = 60,
    clone_temperature: float = 0.02,
    clone_weighted: bool = True,
    teacher_worlds: int = 2,
    clone_data: Sequence[Path] = (),
    loaded: tuple[Dataset, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train, keep the best validation checkpoint at ``out``; return a summary.

    With ``clone``, the actor is first fitted to a teacher's choices on
    ``clone_scenarios`` training seeds (behaviour cloning): a heuristic's name, or
    ``search`` for the search teacher's best trajectories (module ``expert``, in
    ``jobs`` processes, each choice scored on ``teacher_worlds`` draws of the scenario's
    chance). The search's plans are written beside ``out`` (``.clone.npz``);
    ``clone_data`` reuses such files instead of searching again, all of them together
    (an earlier run's and DAgger rounds' from ``hyperion policy plan``; ``loaded``: what
    ``load_dataset(clone_data)`` already returned, so they are not read twice). The clone
    is checkpointed (step 0), and PPO fine-tunes it.
    The PPO reward is the run's own reward (the benchmark's metric), or relative to
    ``skypilot-like``'s on the same scenario (``baseline``, module ``env``)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(1)
    env = DummyVecEnv([lambda: FleetEnv(seeds.TRAIN, baseline=baseline) for _ in range(n_envs)])
    env.seed(seed)
    model = MaskablePPO(
        CandidatePolicy,
        env,
        n_steps=512,
        batch_size=256,
        n_epochs=6,
        gamma=1.0,
        gae_lambda=0.95,
        learning_rate=learning_rate,
        ent_coef=ent_coef,
        clip_range=0.2,
        seed=seed,
        verbose=0,
        device="cpu",
    )
    log_path = out.with_suffix(".log.jsonl")
    meta: dict[str, Any] = {
        "seed": seed,
        "steps_requested": steps,
        "hidden": HIDDEN,
        "baseline": baseline,
        "clone": clone,
        "clone_scenarios": clone_scenarios if clone else 0,
        "teacher_worlds": teacher_worlds if clone == "search" and not clone_data else None,
        "clone_data": [str(p) for p in clone_data] if clone == "search" and clone_data else None,
        "clone_temperature": clone_temperature if clone == "search" else None,
        "clone_weighted": clone_weighted if clone == "search" else None,
        "learning_rate": learning_rate,
        "ent_coef": ent_coef,
    }
    rules_val = _rules_validation(n_val)
    with log_path.open("w") as log:
        log.write(json.dumps({"rules_validation_reward": round(rules_val, 4), **meta}) + "\n")
        cb = _Checkpoints(eval_every, n_val, out, log, meta)
        if clone:
            t0 = time.monotonic()
            # the top of the training range, away from the seeds the environments draw
            start = seeds.TRAIN.stop - clone_scenarios
            found: dict[str, Any] = {}
            if clone == "search" and clone_data:
                data, found = loaded if loaded is not None else load_dataset(clone_data)
            elif clone == "search":
                plans, found = search_plans(range(start, seeds.TRAIN.stop), jobs, teacher_worlds)
                save_plans(out.with_suffix(".clone.npz"), plans, found)
                data = plans_dataset(plans)
            else:
                data = clone_dataset(clone, range(start, seeds.TRAIN.stop))
            fit = behaviour_clone(
                model,
                data,
                seed=seed,
                epochs=clone_epochs,
                temperature=clone_temperature,
                weighted=clone_weighted,
            )
            row = {
                **found,
                "clone": clone,
                "clone_decisions": int(data[2].size),
                **fit,
                "clone_wall_s": round(time.monotonic() - t0, 1),
            }
            log.write(json.dumps(row) + "\n")
            cb.model = model
            cb.num_timesteps = 0
            cb.evaluate()
        if steps > 0:
            model.learn(total_timesteps=steps, callback=cb)
        cb.evaluate()
    _plot(log_path, out.with_suffix(".curve.png"), rules_val)
    return {
        "best_validation_reward": cb.best,
        "rules_validation_reward": rules_val,
        "log": str(log_path),
        "weights": str(out),
    }


def _rules_validation(n: int) -> float:
    from hyperion.policy.rules import RulesPolicy
    from hyperion.sim.fleet import scenario
    from hyperion.sim.fleet.run import run

    pol = RulesPolicy()
    return float(np.mean([run(scenario.make(s), pol).reward for s in seeds.validation_seeds(n)]))


def _plot(log_path: Path, png: Path, rules_val: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(x) for x in log_path.read_text().splitlines()]
    rows = [r for r in rows if "steps" in r]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(
        [r["steps"] for r in rows],
        [r["validation_reward"] for r in rows],
        "o-",
        label="rl (validation seeds)",
    )
    ax.plot(
        [r["steps"] for r in rows],
        [
            float("nan") if r["train_reward_recent"] is None else r["train_reward_recent"]
            for r in rows
        ],
        ".--",
        label="rl (training episodes, last 200)",
    )
    ax.axhline(rules_val, color="gray", ls=":", label="rules (validation seeds)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean reward")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
