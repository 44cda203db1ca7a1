"""A 40-task sequential chain (each task after the previous one succeeded): the cost of one step, from one task's
end to the next one's start, in the same process as the client and across processes.

    python -m bench.chain [--tasks 40] [--repeats 3] [--db sqlite|postgresql://...]

Per step = (last task's start - first task's start) / (tasks - 1), read from the run's own record (each task's
`started_at`), so it measures the servers' step, not the client's polling. Windmill's benchmark shape; Hatchet
publishes 1.22 s and Temporal 2.97 s for 40 steps on a 2-vCPU machine.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import actorbatch
from actorbatch.domain.jobfile import parse_job

ROOT = Path(__file__).resolve().parent.parent


def chain_job(tasks: int) -> actorbatch.JobDefinition:
    return parse_job({"name": "chain40", "tasks": [
        {"name": f"s{i}", "run": "actorbatch.examples:noop", **({"after": {f"s{i - 1}": "succeeded"}} if i else {})}
        for i in range(tasks)]})


def per_step_ms(detail: dict[str, object]) -> float:
    starts = sorted(datetime.fromisoformat(str(t["started_at"]).replace("Z", "+00:00"))  # type: ignore[index]
                    for t in detail["tasks"])  # type: ignore[attr-defined]
    return (starts[-1] - starts[0]).total_seconds() * 1000 / (len(starts) - 1)


def fresh_store(db: str, folder: Path) -> str:
    url = f"sqlite:///{folder / 'chain.db'}" if db == "sqlite" else db
    if url.startswith("postgresql"):
        base, name = url.rsplit("/", 1)
        subprocess.run(["psql", f"{base}/postgres", "-qc", f"drop database if exists {name} with (force)"], check=True)
        subprocess.run(["psql", f"{base}/postgres", "-qc", f"create database {name}"], check=True)
    actorbatch.init(url)
    return url


def same_process(url: str, tasks: int) -> float:
    with actorbatch.connect(url, user="bench") as client:
        client.add_job(chain_job(tasks), replace=True)
        with actorbatch.BatchServer(url, actorbatch.ServerConfig(name="chain", threads=2)):
            client.wait(client.run_job("chain40"), timeout=120)  # warm: imports, first reads
            return per_step_ms(client.wait(client.run_job("chain40"), timeout=120))


def across_processes(url: str, tasks: int) -> float:
    with actorbatch.connect(url, user="bench") as client:
        client.add_job(chain_job(tasks), replace=True)
        server = subprocess.Popen([sys.executable, "-m", "actorbatch", "--db", url, "server", "start", "--name",
                                   "chain-x", "--threads", "2"], cwd=ROOT, stderr=subprocess.DEVNULL)
        try:
            client.wait(client.run_job("chain40"), timeout=120)
            return per_step_ms(client.wait(client.run_job("chain40"), timeout=120))
        finally:
            server.terminate()
            server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--db", default="sqlite", help="sqlite (a temporary file) or a PostgreSQL URL")
    args = parser.parse_args()
    for label, measure in (("same process", same_process), ("across processes", across_processes)):
        figures = []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
                figures.append(measure(fresh_store(args.db, Path(folder)), args.tasks))
            time.sleep(0.2)
        print(f"{args.tasks}-task chain, {label}: {statistics.median(figures):.2f} ms per step "
              f"(runs: {', '.join(f'{f:.2f}' for f in figures)}; target <= 1 ms)")


if __name__ == "__main__":
    main()
