"""How long the web console's pages and API take with a million events in the log (DESIGN §4: ≤ 100 ms each).

    python -m bench.web [--events 1000000] [--dir /dev/shm] [--repeats 5] [--keep]

Builds the busy day of `bench.as_of` (runs submitted a thousand at a time, claimed and finished by a server, with
its heartbeats; the read models following the log), then times each page and API request in the console's own
process (server time, no network): the median wall time and CPU time of --repeats requests. On a machine shared
with other work the CPU time says more. `--keep` leaves the store in --dir, and a later run with `--keep` reuses it.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import actorbatch
from actorbatch.web.app import create_app
from actorbatch.web.console import Console
from bench.as_of import build

PATHS = ("/", "/api/status", "/runs", "/api/runs", "/runs?after={deep}", "/api/runs?after={deep}",
         "/api/runs?job=pay&status=succeeded", "/runs?status=running", "/runs/{run}", "/api/runs/{run}",
         "/api/runs/{run}/logs", "/jobs", "/jobs/pay", "/servers", "/api/servers", "/audit?limit=500",
         "/api/audit?user=bench&limit=100")


def measure(url: str, repeats: int) -> None:
    from starlette.testclient import TestClient  # in this process: server time, no network

    with actorbatch.connect(url, user="bench") as client:
        deep = client.runs(limit=500_000)[-1]["id"]
        run = client.runs(status="running", limit=1)[0]["id"]
        with TestClient(create_app(Console(client, public_read=True))) as web:
            print(f"{'wall ms':>9} {'CPU ms':>8}  request")
            for path in PATHS:
                walls, cpus = [], []
                for _ in range(repeats):
                    wall, cpu = time.perf_counter(), time.process_time()
                    response = web.get(path.format(deep=deep, run=run))
                    walls.append((time.perf_counter() - wall) * 1000)
                    cpus.append((time.process_time() - cpu) * 1000)
                    assert response.status_code == 200, (path, response.text[:200])
                print(f"{statistics.median(walls):9.1f} {statistics.median(cpus):8.1f}  {path}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    shm = Path("/dev/shm")  # noqa: S108 - tmpfs: the figures measure the console, not the disk
    parser.add_argument("--dir", default=str(shm) if shm.is_dir() else None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the store in --dir, or reuse the one kept there")
    args = parser.parse_args()
    if args.keep:
        path = Path(args.dir or tempfile.gettempdir()) / f"bench-web-{args.events}.db"
        url = f"sqlite:///{path}"
        if not path.exists():
            build(url, args.events)
        measure(url, args.repeats)
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        url = f"sqlite:///{Path(folder) / 'web.db'}"
        build(url, args.events)
        measure(url, args.repeats)


if __name__ == "__main__":
    main()
