"""Start-up costs a person or a process manager waits for: `actorbatch --help`, a listing on an empty store, and a
server started on a backlog of runs it has not heard of (the peers' W1 shape) until its first task body runs.

    python -m bench.startup [--runs 5000] [--repeats 5]

Each figure is the median of `--repeats` fresh processes, with wall time and CPU time (user + system of the child,
from `os.wait4`): on a shared machine wall time follows the load, CPU time much less. The backlog is submitted with
`Client.run_many` into a fresh SQLite file, no projector running (the read models hold none of it), then
`actorbatch server start --threads 2` is launched; first body = the first line a task body writes - the launch.
The package's bytecode is compiled first, as installing it does (a checkout run with PYTHONDONTWRITEBYTECODE set
would compile every module of its own in every process).
"""

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import actorbatch
from actorbatch.domain.jobfile import parse_job
from bench.tasks import LOG_ENV, wall

ROOT = Path(__file__).resolve().parent.parent
COMMAND = [sys.executable, "-m", "actorbatch"]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one child process run to its end."""
    started = wall()
    child = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{' '.join(argv)} exited {child.returncode}")
    return wall() - started, usage.ru_utime + usage.ru_stime


def first_body(folder: Path, runs: int) -> float:
    """Seconds from launching a server on `runs` unheard runs to the first body."""
    url, log = f"sqlite:///{folder / 'start.db'}", folder / "events.log"
    actorbatch.init(url)
    with actorbatch.connect(url, user="bench") as client:
        client.add_job(parse_job({"name": "noop", "tasks": [{"name": "t", "run": "bench.tasks:noop"}]}))
        client.run_many("noop", ({"i": i} for i in range(runs)))
    env = {**os.environ, LOG_ENV: str(log), "PYTHONPATH": str(ROOT)}
    launched = wall()
    server = subprocess.Popen([*COMMAND, "--db", url, "server", "start", "--name", "start", "--threads", "2"],
                              env=env, cwd=ROOT, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while not (log.exists() and log.read_text()):
            if wall() - launched > 120:
                raise SystemExit("no task body ran within 120 s")
            time.sleep(0.002)
        return float(log.read_text().split()[2]) - launched
    finally:
        server.terminate()
        server.wait(timeout=120)


def show(label: str, figures: list[float], unit: str = "ms") -> None:
    scale = 1000 if unit == "ms" else 1
    values = ", ".join(f"{f * scale:.0f}" for f in figures)
    print(f"{label:<44} median {statistics.median(figures) * scale:7.0f} {unit}   ({values})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000, help="runs in the backlog of the server start")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    compileall.compile_dir(Path(actorbatch.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        url = f"sqlite:///{Path(folder) / 'empty.db'}"
        actorbatch.init(url)
        env = {**os.environ, "ACTORBATCH_DB": url}
        for label, argv in (("actorbatch --help", ["--help"]), ("actorbatch run list (empty store)", ["run", "list"])):
            runs = [timed([*COMMAND, *argv], env) for _ in range(args.repeats)]
            show(f"{label}, wall", [w for w, _ in runs])
            show(f"{label}, CPU", [c for _, c in runs])
    starts = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
            starts.append(first_body(Path(folder), args.runs))
    show(f"server start -> first body ({args.runs} runs waiting)", starts)
    print(f"(load average {os.getloadavg()[0]:.1f}; CPU of this process {resource.getrusage(0).ru_utime:.1f} s)")


if __name__ == "__main__":
    main()
