"""``hyperion bench fleet|startup|failover|sidecar`` and ``hyperion policy train``: the fleet
benchmark, the real-mesh benchmarks of ``bench/`` and the training of the ``rl``
placement policy (the latter needs the ``rl`` extra)."""

from __future__ import annotations

import importlib
import json
import runpy
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

bench_app = typer.Typer(help="Benchmarks that print JSON.", no_args_is_help=True)
policy_app = typer.Typer(help="Placement policies (rules, rl).", no_args_is_help=True)
console = Console()


@bench_app.callback()
def _bench() -> None:
    """Benchmarks that print JSON (a group even with one command)."""


@policy_app.callback()
def _policy() -> None:
    """Placement policies (a group even with one command)."""


def _error(msg: str) -> typer.Exit:
    print(f"error: {msg}", file=sys.stderr)
    return typer.Exit(2)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


@bench_app.command("fleet")
def bench_fleet(
    quick: Annotated[bool, typer.Option("--quick", help="Fewer scenarios (<= 60 s).")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Held-out scenario block, 0-99.")] = 0,
    scenarios: Annotated[
        int | None, typer.Option("--scenarios", help="Scenarios (default 120, quick 24).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the chart (needs matplotlib).")
    ] = None,
) -> None:
    """Every placement policy on the same seeded fleet scenarios (held-out seeds)."""
    from hyperion.sim.fleet.bench import FULL_SCENARIOS, QUICK_SCENARIOS, run_bench

    n = scenarios if scenarios is not None else (QUICK_SCENARIOS if quick else FULL_SCENARIOS)
    try:
        result = run_bench(seed, n)
    except ValueError as e:
        raise _error(str(e)) from None
    if plot is not None:
        try:
            from hyperion.sim.fleet.bench import plot as draw

            draw(result, plot)
        except ImportError:
            raise _error("--plot needs matplotlib (pip install 'hyperion[rl]')") from None
    if as_json:
        print(json.dumps(result))
        return
    table = Table(title=f"fleet benchmark: {n} held-out scenarios, seed {seed}")
    cols = {
        "reward": "reward",
        "cost_per_hour": "USD/h",
        "p99_latency_ms": "P99 ms",
        "p99_latency_ms_median": "P99 ms (median)",
        "bert_completion_min": "BERT min",
        "bert_cost_usd": "BERT USD",
        "violations": "violations",
        "preemptions": "preempted",
    }
    table.add_column("policy", no_wrap=True)
    for title in cols.values():
        table.add_column(title, justify="right")
    for name, row in result["policies"].items():
        table.add_row(name, *(_fmt(row[c]) for c in cols))
    console.print(table)
    gain = result.get("rl_vs_best_heuristic")
    if gain:
        console.print(
            f"rl vs best heuristic ({gain['best_heuristic']}): {gain['reward_gain_pct']:+.1f}% "
            f"mean reward; rl decision {result['rl_decision_us']} us (network), "
            f"{result['rl_choose_us']} us (whole choose)"
        )


def _run_bench_script(script: str, argv: list[str]) -> None:
    """Run ``bench/<script>`` of the source tree (``bench/`` is not a package) as
    ``__main__`` in this process, with ``argv``: its own argparse, output and cleanup."""
    path = Path(__file__).resolve().parents[2] / "bench" / script
    if not path.is_file():
        raise _error(f"{path} not found: this benchmark runs from a source checkout")
    saved = sys.argv
    sys.argv = [str(path), *argv]
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.argv = saved


@bench_app.command("startup")
def bench_startup(
    tries: Annotated[int, typer.Option("--tries", help="1-replica starts (0: skip).")] = 50,
    replicas: Annotated[
        int, typer.Option("--replicas", help="Replicas of the big Deployment (0: skip).")
    ] = 100,
    nodes_big: Annotated[int, typer.Option("--nodes-big", help="Nodes of the big mesh.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Real mesh: create → pods Running+Ready, 1 replica and many (bench/startup.py)."""
    argv = ["--tries", str(tries), "--replicas", str(replicas), "--nodes-big", str(nodes_big)]
    _run_bench_script("startup.py", argv + (["--json"] if as_json else []))


@bench_app.command("failover")
def bench_failover(
    tries: Annotated[int, typer.Option("--tries", help="Nodes killed, one per try.")] = 20,
    nodes: Annotated[int, typer.Option("--nodes", help="Nodes of the mesh.")] = 5,
    replicas: Annotated[int, typer.Option("--replicas", help="Replicas of the Deployment.")] = 6,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Real mesh: kill -9 of a node → its replicas Ready elsewhere (bench/failover.py)."""
    argv = ["--tries", str(tries), "--nodes", str(nodes), "--replicas", str(replicas)]
    _run_bench_script("failover.py", argv + (["--json"] if as_json else []))


@bench_app.command("sidecar")
def bench_sidecar(
    calls: Annotated[int, typer.Option("--calls", help="Calls per measured operation.")] = 300,
    writes: Annotated[int, typer.Option("--writes", help="Cross-node visibility writes.")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Real 2-node mesh: Dapr sidecar state and invocation latency (bench/sidecar.py)."""
    argv = ["--calls", str(calls), "--writes", str(writes)]
    _run_bench_script("sidecar.py", argv + (["--json"] if as_json else []))


def _trainer() -> Any:
    """The training module, which needs the rl extra; a clear error without it."""
    try:
        # by name, so that type checkers without the rl extra do not follow it
        return importlib.import_module("hyperion.sim.fleet.train")
    except ImportError as e:
        raise _error(
            f"training needs the rl extra ({e.name} is missing): pip install torch==2.13.0 "
            "--index-url https://download.pytorch.org/whl/cpu, then pip install 'hyperion[rl]'"
        ) from None


@policy_app.command("train")
def policy_train(
    steps: Annotated[int, typer.Option("--steps", help="Environment steps.")] = 40_000,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    out: Annotated[Path, typer.Option("--out", help="Weights file (.npz).")] = Path(
        "rl_weights.npz"
    ),
    eval_every: Annotated[int, typer.Option("--eval-every", help="Steps between checks.")] = 5_000,
    clone: Annotated[
        str,
        typer.Option(
            "--clone",
            help="Teacher cloned before PPO: search, skypilot-like, another heuristic, or none.",
        ),
    ] = "search",
    clone_scenarios: Annotated[
        int, typer.Option("--clone-scenarios", help="Training scenarios the teacher plays.")
    ] = 400,
    jobs: Annotated[int, typer.Option("--jobs", help="Processes for the search teacher.")] = 1,
    clone_epochs: Annotated[
        int, typer.Option("--clone-epochs", help="Behaviour-cloning passes over the data.")
    ] = 60,
    teacher_worlds: Annotated[
        int,
        typer.Option(
            "--teacher-worlds",
            help="Re-draws of each scenario's chance the search teacher scores a choice on "
            "(1: the scenario's own draws instead, clairvoyant).",
        ),
    ] = 2,
    clone_temperature: Annotated[
        float,
        typer.Option(
            "--clone-temperature",
            help="Reward difference that weighs a search teacher's option e times less.",
        ),
    ] = 0.02,
    clone_weighted: Annotated[
        bool,
        typer.Option(
            "--clone-weighted/--clone-unweighted",
            help="Weigh a search teacher's decisions by how much their options' values differ.",
        ),
    ] = True,
    clone_data: Annotated[
        list[Path] | None,
        typer.Option(
            "--clone-data",
            help="Reuse search plans (OUT.clone.npz of a run, or hyperion policy plan's); "
            "repeat to clone from several together.",
        ),
    ] = None,
    n_val: Annotated[
        int, typer.Option("--validation-scenarios", help="Validation seeds per checkpoint.")
    ] = 300,
    baseline: Annotated[
        str,
        typer.Option(
            "--baseline",
            help="PPO reward: none (the run's reward), difference or ratio to skypilot-like's.",
        ),
    ] = "difference",
) -> None:
    """Train the rl policy with MaskablePPO on training seeds; keep the best checkpoint
    on validation seeds; write OUT, OUT.log.jsonl and OUT.curve.png."""
    if steps < 0 or eval_every <= 0:
        raise _error("--steps must be 0 or more and --eval-every positive")
    teachers = ("search", "none", "static", "k8s-default", "greedy-cost", "skypilot-like", "rules")
    if clone not in teachers:
        raise _error(f"--clone must be one of {', '.join(teachers)}")
    if min(clone_scenarios, jobs, clone_epochs, n_val, teacher_worlds) <= 0:
        raise _error(
            "--clone-scenarios, --jobs, --clone-epochs, --teacher-worlds and "
            "--validation-scenarios must be positive"
        )
    if not clone_temperature > 0:
        raise _error("--clone-temperature must be positive")
    clone_data = clone_data or []
    if clone_data and (clone != "search" or not all(p.is_file() for p in clone_data)):
        raise _error("--clone-data needs --clone search and existing files")
    if baseline not in ("none", "difference", "ratio"):
        raise _error("--baseline must be none, difference or ratio")
    if steps == 0 and clone == "none":
        raise _error("nothing to train: --steps 0 and --clone none")
    trainer = _trainer()
    loaded = None
    if clone_data:
        try:
            loaded = trainer.load_dataset(clone_data)
        except ValueError as e:
            raise _error(str(e)) from None
    summary = trainer.train(
        steps,
        seed,
        out,
        eval_every=eval_every,
        clone=None if clone == "none" else clone,
        clone_scenarios=clone_scenarios,
        jobs=jobs,
        clone_epochs=clone_epochs,
        clone_temperature=clone_temperature,
        clone_weighted=clone_weighted,
        teacher_worlds=teacher_worlds,
        clone_data=clone_data,
        loaded=loaded,
        n_val=n_val,
        baseline=baseline,
    )
    print(json.dumps(summary))


@policy_app.command("plan")
def policy_plan(
    first: Annotated[int, typer.Option("--first", help="First training scenario seed.")],
    out: Annotated[Path, typer.Option("--out", help="Plans file (.npz) to write.")],
    count: Annotated[int, typer.Option("--count", help="Training scenarios to search.")] = 400,
    start: Annotated[
        Path | None,
        typer.Option(
            "--start",
            help="rl weights the search starts from and completes its runs with (a DAgger "
            "round); skypilot-like when left out.",
        ),
    ] = None,
    teacher_worlds: Annotated[
        int,
        typer.Option(
            "--teacher-worlds",
            help="Re-draws of each scenario's chance a choice is scored on "
            "(1: the scenario's own draws instead, clairvoyant).",
        ),
    ] = 2,
    jobs: Annotated[int, typer.Option("--jobs", help="Processes.")] = 1,
) -> None:
    """Run the search teacher on training seeds FIRST .. FIRST+COUNT-1 and write its
    plans for `hyperion policy train --clone-data`. With --start, it labels the states
    that policy reaches: DAgger's data."""
    from hyperion.policy.rl import load_weights
    from hyperion.sim.fleet import plans, seeds

    if min(count, teacher_worlds, jobs) <= 0:
        raise _error("--count, --teacher-worlds and --jobs must be positive")
    scenario_seeds = range(first, first + count)
    try:
        plans.check_training(scenario_seeds)
    except ValueError as e:
        raise _error(f"{e} ({seeds.TRAIN.start}-{seeds.TRAIN.stop - 1})") from None
    weights = None
    if start is not None:
        try:
            weights = load_weights(start)
        except (OSError, ValueError) as e:
            raise _error(f"--start: {e}") from None
    found, summary = plans.search_plans(scenario_seeds, jobs, teacher_worlds, weights)
    summary = {**summary, "start": "skypilot-like" if start is None else str(start)}
    plans.save_plans(out, found, summary)
    print(json.dumps({"plans": len(found), "out": str(out), **summary}))
