"""`python -m simulations [--seed N] [--sweep K] [--scenario FILE] [--report]`: run simulations, say how each went.

It prints each seed first, so even a run that hangs or dies can be repeated; on a failed check it prints the
checker, the virtual moment and the exact command that reproduces it, and exits 1. `--sweep K` runs K seeds from
the first (random unless `--seed` gives it) and stops at the first failure: the random sweep, beside the fixed
seeds the tests run.
"""

import argparse
import random
import sys
from pathlib import Path

from actorbatch.clock import monotonic_s
from simulations.config import SimConfig
from simulations.scenario import load_scenario
from simulations.simulator import Result, Simulation
from simulations.swarm import swarm


def config_for(seed: int, scenario: str | None) -> SimConfig:
    return load_scenario(Path(scenario), seed) if scenario else swarm(seed)


def describe(config: SimConfig) -> str:
    threads = sum(s.threads for s in config.servers)
    faults = ", ".join(f"{sum(f.kind == k for f in config.faults.planned)} {k}"
                       for k in ("crash", "pause", "fail", "drain")) or "none"
    return (f"{config.name}: {len(config.servers)} servers ({threads} threads), {config.workload.jobs} jobs, "
            f"{config.safety_s / 3600:.2f} h of faults ({faults}; failing writes p={config.faults.write_fail_p:g}, "
            f"slow tasks p={config.faults.slow_p:g}), lease timeout {config.timing.lease_timeout_s:g}s")


def summary(result: Result, wall_s: float) -> str:
    c = result.counts
    return (f"{c['events']:,} events, {c['runs']:,} runs, {result.steps:,} steps, "
            f"{result.ended_us / 3.6e9:.2f} h simulated in {wall_s:.2f} s; excused overlaps {result.overlaps}; "
            f"log {result.digest[:16]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulations", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help="default: a random one, printed")
    parser.add_argument("--scenario", help="a scenario file, e.g. simulations/scenarios/month-end.toml")
    parser.add_argument("--sweep", type=int, default=1, metavar="K", help="run K seeds, one after the other")
    parser.add_argument("--report", action="store_true",
                        help="write a report (JSON, Markdown, PNG) to simulations/reports/<name>-<seed>/; "
                        "always on with --scenario")
    args = parser.parse_args(argv)
    first = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    for seed in range(first, first + max(args.sweep, 1)):
        if simulate(seed, args.scenario, args.report) != 0:
            return 1
    return 0


def simulate(seed: int, scenario: str | None, report: bool) -> int:
    print(f"seed {seed}", flush=True)
    config = config_for(seed, scenario)
    print(describe(config), flush=True)
    started = monotonic_s()
    result = Simulation(config).run()
    wall_s = monotonic_s() - started
    print(summary(result, wall_s))
    if report or scenario:
        from simulations.report import write_report

        print(f"report: {write_report(result, wall_s)}")
    if result.failure is not None:
        failure = result.failure
        if result.crash:
            print(result.crash, file=sys.stderr)
        print(f"FAILED {failure.checker} at {failure.at}: {failure.message}", file=sys.stderr)
        print(f"reproduce: {config.reproduce()}", file=sys.stderr)
        return 1
    print("ok: every check held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
