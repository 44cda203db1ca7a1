"""How much of what a real server executes the simulator executes too: the measure of "the simulator runs the
product's code".

    python -m simulations.core_coverage [--seed N]

Runs a real batch server (in this process, on a SQLite file) while another process submits a mixed workload: a
dependent graph with a failing, retried task, run-later runs, a cancelled run and a scheduled job, then a drain;
then a seeded simulation. Prints, per module, the statements the real server executed and how many of them the
simulation executed too. Task bodies, the CLI and the SQL adapters are left out on both sides.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import coverage

import actorbatch
from actorbatch.actors.server import BatchServer, ServerConfig
from actorbatch.domain.jobfile import parse_job
from simulations.simulator import Simulation
from simulations.swarm import swarm

PACKAGE = Path(actorbatch.__file__).parent
# The bodies, the command line and the SQL adapters (the event store over SQLite or PostgreSQL, the read models'
# SQL, the client's queries) are left out on both sides: the simulation has its own log, bodies and users.
LEFT_OUT = ("runners/", "cli/", "examples/", "projections/", "store/eventstore.py", "store/sql.py",
            "store/notify.py", "store/identity.py", "store/roles.py", "store/pgfactory.py", "store/urls.py",
            "api.py", "__main__.py")
# The workload, submitted by another process while the measured server runs: a run of the graph now and one in a
# second, a long run cancelled mid-way; then it waits for them.
WORKLOAD = """
import sys, time
from datetime import timedelta
import actorbatch
with actorbatch.connect(sys.argv[1], user="measure") as client:
    runs = [client.run_job("graph"), client.run_job("graph", at=client.clock.now() + timedelta(seconds=1))]
    doomed = client.run_job("nap")
    time.sleep(0.5)
    client.cancel(doomed)
    for run in runs:
        client.wait(run, timeout=60)
"""


def prepare(url: str) -> None:
    """The store and its jobs: a dependent graph with a failing, retried task, a long task, a scheduled job."""
    actorbatch.init(url)
    with actorbatch.connect(url, user="measure") as client:
        client.add_job(parse_job({"name": "graph", "tasks": [
            {"name": "a", "run": "actorbatch.examples:noop"},
            {"name": "b", "run": "actorbatch.examples:fail", "retries": 1, "retry_delay": "0.2s",
             "after": {"a": "succeeded"}},
            {"name": "c", "run": "actorbatch.examples:noop", "after": {"b": "failed"}},
            {"name": "d", "run": "actorbatch.examples:noop", "after": {"b": "ended", "c": "ended"}, "when": "any"}]}))
        client.add_job(parse_job({"name": "nap", "tasks": [
            {"name": "t", "run": "actorbatch.examples:sleep", "params": {"seconds": 2}}]}))
        client.add_job(parse_job({"name": "tick", "schedule": {"every": "1s"},
                                  "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]}))


def real_server(url: str) -> None:
    """What `server start` runs, in this process, while another process submits the workload; then a drain."""
    with BatchServer(url, ServerConfig(name="measured", threads=2, projector="process", lease_timeout_s=3)):
        subprocess.run([sys.executable, "-c", WORKLOAD, url], check=True, timeout=120)


def executed(data: coverage.CoverageData) -> dict[str, set[int]]:
    lines = {}
    for path in data.measured_files():
        relative = Path(path).resolve().relative_to(PACKAGE.resolve()).as_posix() if path.startswith(
            str(PACKAGE)) else None
        if relative is not None and not relative.startswith(LEFT_OUT):
            lines[relative] = set(data.lines(path) or ())
    return lines


def measure(run: object, *args: object) -> dict[str, set[int]]:
    cov = coverage.Coverage(data_file=None, source=[str(PACKAGE)], concurrency=["thread"])
    cov.start()
    try:
        run(*args)  # type: ignore[operator]
    finally:
        cov.stop()
    return executed(cov.get_data())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'real.db'}"
        prepare(url)
        real = measure(real_server, url)
    simulated = measure(lambda: Simulation(swarm(args.seed)).run())
    total = shared = 0
    for module in sorted(real):
        both = real[module] & simulated.get(module, set())
        total, shared = total + len(real[module]), shared + len(both)
        print(f"{module:40} {len(real[module]):5} real {len(both):5} simulated too")
    print(f"the simulation (seed {args.seed}) executes {shared:,} of the {total:,} statements the real server "
          f"executed: {100 * shared / total:.1f}%")


if __name__ == "__main__":
    main()
