"""``hyperion sim membership``: SWIM at scale on the measured inter-region RTTs.

Nodes are spread round-robin (in seeded random order) over the 69 measured cloud
regions. The run either starts from a formed mesh (``start="formed"``: every node
already knows every other, as after a completed join — the default, because joining
10,000 nodes one rumor at a time is a different experiment) or lets every node join
through a random earlier node (``start="join"``). A ``crash_fraction`` of the nodes
crash at uniformly random times in [10 %, 60 %] of the run and stay down.

Metrics:
* ``detect_s_*`` — per crash, time until *every* node still live at the end has
  marked the crashed node dead (crashes not detected by everyone count as undetected);
* ``false_dead`` — distinct never-crashed nodes that any node declared dead;
* ``converged_s`` — time from which every live node's view is exact (live members
  alive, crashed members dead) and stays so until the end, checked every 0.5 s.
"""

from __future__ import annotations

import functools
import hashlib
import random
import time
from array import array
from dataclasses import dataclass

import numpy as np

from hyperion.mesh.membership import PROFILES, MemberEvent, Membership
from hyperion.mesh.table import ALIVE, DEAD, Directory
from hyperion.sim import rtt as rtt_mod
from hyperion.sim.engine import Simulator, cyclic_gc_paused
from hyperion.sim.metrics import peak_rss_mib, percentile, rounded

CHECK_EVERY_S = 0.5


def sim_node_id(seed: int, i: int) -> str:
    return hashlib.sha256(f"hyperion-sim:{seed}:{i}".encode()).hexdigest()[:40]


@dataclass
class MembershipExperiment:
    nodes: int
    seed: int
    duration_s: float = 60.0
    crash_fraction: float = 0.0
    loss: float = 0.0
    profile: str = "lan"
    start: str = "formed"
    join_window_s: float = 5.0
    trace: bool = False

    def __post_init__(self) -> None:
        if self.nodes < 2:
            raise ValueError("--nodes must be at least 2")
        if not 0.0 <= self.crash_fraction < 1.0:
            raise ValueError("--crash-fraction must be in [0, 1)")
        if not 0.0 <= self.loss < 1.0:
            raise ValueError("--loss must be in [0, 1)")
        if self.duration_s <= 0:
            raise ValueError("--duration must be positive")
        if self.profile not in PROFILES:
            raise ValueError(f"--profile must be one of {', '.join(PROFILES)}")
        if self.start not in ("formed", "join"):
            raise ValueError("--start must be formed or join")

    def run(self) -> dict[str, object]:
        with cyclic_gc_paused():
            return self._run()

    def _run(self) -> dict[str, object]:
        wall0 = time.perf_counter()
        n = self.nodes
        matrix = rtt_mod.load()
        sim = Simulator(self.seed, matrix, loss=self.loss, trace=self.trace)
        rng = random.Random(self.seed)
        regions = list(range(len(matrix.regions)))
        rng.shuffle(regions)
        directory = Directory()  # shared intern table; each core keeps its own view
        config = PROFILES[self.profile]
        # Incarnations are tiny in a run; 16-bit keys keep 10k x 10k views in memory.
        key_dtype = np.uint16 if n > 2000 else np.uint32
        ids = [sim_node_id(self.seed, i) for i in range(n)]
        addrs = [f"sim://{i}" for i in range(n)]
        for i in range(n):
            directory.slot(ids[i], addrs[i], f"node-{i}")

        def make_core(i: int, now: float) -> Membership:
            return Membership(
                ids[i],
                addrs[i],
                name=f"node-{i}",
                rng=random.Random(self.seed * 1_000_003 + i),
                now=now,
                config=config,
                directory=directory,
                key_dtype=key_dtype,
            )

        cores: list[Membership | None] = [None] * n
        if self.start == "formed":
            for i in range(n):
                core = make_core(i, 0.0)
                core.adopt_directory(0.0)
                cores[i] = core
                sim.add_node(addrs[i], core, region=regions[i % len(regions)])
        else:
            for i in range(n):
                sim.add_node(addrs[i], None, region=regions[i % len(regions)])

            def starter(i: int, t: float) -> None:
                def go() -> None:
                    c = make_core(i, t)
                    cores[i] = c
                    effects = [] if i == 0 else c.join([addrs[rng.randrange(i)]], t)
                    sim.restart(i, c, effects)

                sim.at(t, go)

            for i in range(n):
                starter(i, 0.0 if i == 0 else self.join_window_s * i / n)

        # Crash schedule.
        n_crash = int(round(self.crash_fraction * n))
        crashed = rng.sample(range(n), n_crash)
        crash_at: dict[int, float] = {}
        lo = 0.1 * self.duration_s
        if self.start == "join":
            lo = max(lo, self.join_window_s)
        hi = max(lo, 0.6 * self.duration_s)
        for c in crashed:
            crash_at[c] = rng.uniform(lo, hi)
        crashed_set = set(crashed)
        crash_col = {c: k for k, c in enumerate(crashed)}
        # When each node marked each crash dead: one row of doubles per crash, written from
        # on_notify (a million events at 10k, so plain arrays, not numpy scalars).
        dead_at = [array("d", [np.inf]) * n for _ in range(n_crash)]
        crash_of_id = {ids[c]: (crash_at[c], dead_at[crash_col[c]]) for c in crashed}
        false_dead: set[str] = set()
        false_suspect = 0
        state_changes = 0

        def on_notify(i: int, ev: object, now: float) -> None:
            nonlocal false_suspect, state_changes
            if not isinstance(ev, MemberEvent):
                return
            state_changes += 1
            hit = crash_of_id.get(ev.node_id)
            if hit is not None and now >= hit[0]:
                row = hit[1]
                if ev.state == "dead" and row[i] == np.inf:
                    row[i] = now
                return
            if ev.state == "dead":
                false_dead.add(ev.node_id)
            elif ev.state == "suspect":
                false_suspect += 1

        sim.on_notify = on_notify

        def crash(c: int) -> None:
            sim.crash(c)
            cores[c] = None

        for c, t in crash_at.items():
            sim.at(t, functools.partial(crash, c))

        # Convergence checker.
        survivors = np.array([i for i in range(n) if i not in crashed_set], dtype=np.int64)
        surv_slots = np.array([directory.find(ids[i]) for i in survivors], dtype=np.int64)
        crash_slots = np.array([directory.find(ids[c]) for c in crashed], dtype=np.int64)
        exact_since: list[float | None] = [None]
        last_checked_changes = [-1]

        def exact_now(t: float) -> bool:
            down = [c for c in crashed if crash_at[c] <= t]
            n_live = n - len(down)
            for i in survivors.tolist():
                core = cores[i]
                if core is None or core.table.alive != n_live or core.table.dead != len(down):
                    return False
            if last_checked_changes[0] == state_changes:
                return True
            for i in survivors.tolist():
                keys = cores[i].table.view()
                if len(keys) < len(directory) or np.any((keys[surv_slots] & 3) != ALIVE):
                    return False
                if len(down) == len(crashed) and np.any((keys[crash_slots] & 3) != DEAD):
                    return False
            last_checked_changes[0] = state_changes
            return True

        def check(t: float) -> None:
            if exact_now(t):
                if exact_since[0] is None:
                    exact_since[0] = t
            else:
                exact_since[0] = None
            if t + CHECK_EVERY_S <= self.duration_s:
                sim.at(t + CHECK_EVERY_S, lambda: check(t + CHECK_EVERY_S))

        sim.at(CHECK_EVERY_S, lambda: check(CHECK_EVERY_S))
        sim.run(self.duration_s)

        detect: list[float] = []
        undetected = 0
        surv_idx = survivors
        for c in crashed:
            row = np.frombuffer(dead_at[crash_col[c]])[surv_idx]
            worst = float(row.max()) if len(row) else 0.0
            if worst == np.inf:
                undetected += 1
            else:
                detect.append(worst - crash_at[c])
        first_detect: list[float] = []
        for c in crashed:
            row = np.frombuffer(dead_at[crash_col[c]])[surv_idx]
            if len(row) and float(row.min()) != np.inf:
                first_detect.append(float(row.min()) - crash_at[c])
        conv = exact_since[0]
        counters: dict[str, int] = {}
        for live in cores:
            if live is not None:
                for k, v in live.stats.counters.items():
                    counters[k] = counters.get(k, 0) + v
        result: dict[str, object] = {
            "nodes": n,
            "seed": self.seed,
            "profile": self.profile,
            "start": self.start,
            "duration_s": self.duration_s,
            "loss": self.loss,
            "crashed": n_crash,
            "converged_s": None if conv is None else round(conv, 3),
            "detect_s_p50": rounded(percentile(detect, 50)),
            "detect_s_p99": rounded(percentile(detect, 99)),
            "detect_s_max": rounded(max(detect) if detect else None),
            "first_detect_s_p50": rounded(percentile(first_detect, 50)),
            "undetected": undetected,
            "false_dead": len(false_dead),
            "false_suspect_events": false_suspect,
            "msgs_per_node_per_s": round(sim.stats.sent / n / self.duration_s, 3),
            "messages_lost": sim.stats.lost,
            "core_counters_live_nodes": dict(sorted(counters.items())),
            "wall_s": round(time.perf_counter() - wall0, 3),
            "peak_rss_mib": round(peak_rss_mib(), 1),
        }
        if self.trace:
            result["trace_digest"] = sim.trace_digest()
        return result
