"""`run list`, `status` and `job list` on a log of --events events (issue target: ≤ 100 ms with 1,000,000).

    python -m bench.listings [--events 1000000] [--dir /dev/shm] [--repeats 5] [--store FILE]

Builds a SQLite store the way `bench.as_of` does (runs submitted, claimed and finished a thousand at a time, with
heartbeats; the read models follow the log), or reuses `--store FILE` if it exists. Then times each listing in
this process (a client connected once: the query and the rows' decoding) and as a fresh `actorbatch` process
(Python's start and the imports included, which `actorbatch --version` shows alone): medians of wall and CPU
time. The package's bytecode is compiled first, as installing it does: a checkout run with
PYTHONDONTWRITEBYTECODE set would otherwise compile every module of its own in every process.
"""

import compileall
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import actorbatch
from bench.as_of import busy_day, busy_day_arguments, report

TARGET_MS = 100


def main() -> None:
    args = busy_day_arguments(__doc__, 1_000_000, 5).parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        url = busy_day(args, folder, "listings.db")
        with actorbatch.connect(url, user="bench") as client:
            client.catch_up()
            runs = client.views.db.query("SELECT COUNT(*) FROM ab_runs")[0][0]
            print(f"log: {client.store.head():,} events, {runs:,} runs in the read models")
            listings: list[tuple[str, Callable[[], Any], list[str]]] = [
                ("run list", client.runs, ["run", "list", "--json"]),
                ("run list --status running", lambda: client.runs(status="running"),
                 ["run", "list", "--status", "running", "--json"]),
                ("status", client.status, ["status", "--json"]),
                ("job list", client.jobs, ["job", "list", "--json"]),
            ]
            for name, call, _ in listings:
                report(f"{name}, in process (target {TARGET_MS} ms)", [_timed(call) for _ in range(args.repeats)])
        compileall.compile_dir(Path(actorbatch.__file__).parent, quiet=1)
        report("actorbatch --version, a fresh process: Python's start and the imports alone",
               [_fresh([sys.executable, "-m", "actorbatch", "--version"]) for _ in range(3)])
        for name, _, command in listings:
            report(f"actorbatch {name}, a fresh process each",
                   [_fresh([sys.executable, "-m", "actorbatch", "--db", url, *command]) for _ in range(3)])


def _timed(call: Callable[[], Any]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def _fresh(command: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


if __name__ == "__main__":
    main()
