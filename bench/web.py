"""How long the web console's pages and API take with a million events in the log (DESIGN §4: ≤ 100 ms each).

    python -m bench.web [--runs 500000] [--repeats 5]

Builds a SQLite store (on /dev/shm where there is one) whose log holds `--runs` runs created in bulk and all but a
few hundred of them cancelled (two events each, about a million events in all), catches the read models up, then
times each page and API request in the console's own process (server time, no network), median of `--repeats`.
"""

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import actorbatch
from actorbatch.domain.runs import RunCancelled
from actorbatch.web.app import create_app
from actorbatch.web.console import Console
from tests.web_screens import add_jobs

BATCH = 10_000
ACTIVE = 300  # runs left running: the status screen lists them all


def build(url: str, runs: int) -> tuple[int, float]:
    """The store; (events in the log, seconds the read models took to be rebuilt from it)."""
    actorbatch.init(url)
    with actorbatch.connect(url, user="bench") as client:
        add_jobs(client)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        for first in range(0, runs, BATCH):
            count = min(BATCH, runs - first)
            job = ("month-end", "nightly-cleanup")[first // BATCH % 2]
            ids = client.commands.run_many(job, [({"n": first + i}, start + timedelta(seconds=first + i))
                                                 for i in range(count)])
            cancel = ids if first + count < runs else ids[:-ACTIVE]
            now = client.clock.now()
            client.store.append(*[RunCancelled(originator_id=i, originator_version=2, timestamp=now, user="bench")
                                  for i in cancel])
        began = time.perf_counter()
        client.rebuild_projections()
        return client.store.head(), time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from starlette.testclient import TestClient  # server time: in this process, no network

    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as folder:
        url = f"sqlite:///{Path(folder) / 'web.db'}"
        events, caught_up_s = build(url, args.runs)
        print(f"{events:,} events; read models rebuilt in {caught_up_s:.1f}s")
        with actorbatch.connect(url, user="bench") as client:
            deep = client.runs(limit=args.runs // 2)[-1]["id"]
            run_id = client.runs(status="running", limit=1)[0]["id"]
            app = create_app(Console(client, public_read=True))
            with TestClient(app) as web:
                for path in ("/", "/api/status", "/runs", "/api/runs", f"/runs?after={deep}",
                             f"/api/runs?after={deep}", "/api/runs?job=month-end&status=cancelled",
                             "/runs?status=running", f"/runs/{run_id}", f"/api/runs/{run_id}", "/jobs",
                             "/jobs/month-end", "/servers", "/audit", "/api/audit?user=bench&limit=100"):
                    times = []
                    for _ in range(args.repeats):
                        began = time.perf_counter()
                        response = web.get(path)
                        times.append((time.perf_counter() - began) * 1000)
                        assert response.status_code == 200, (path, response.text[:200])
                    print(f"{statistics.median(times):8.1f} ms  {path}")


if __name__ == "__main__":
    main()
