"""Load-aware competition for leases with real servers: several BatchServers in this process, each with its own
store connection, threads and timers, on one SQLite file or one PostgreSQL database. They hear each other only
through the log, as separate processes do. The assertions are on shares and counts, never on wall-clock limits."""

import contextlib
from collections import Counter
from collections.abc import Iterator

import pytest

import actorbatch
from actorbatch.domain.jobfile import parse_job
from tests.processes import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("db_url" if request.param == "sqlite" else "pg_url"))


@contextlib.contextmanager
def servers(url: str, *specs: tuple[str, int], load_bias: float = 1.0) -> Iterator[dict[str, actorbatch.BatchServer]]:
    started: dict[str, actorbatch.BatchServer] = {}
    try:
        for name, threads in specs:
            config = actorbatch.ServerConfig(name=name, threads=threads, lease_timeout_s=5, projector="off",
                                             load_bias=load_bias)
            started[name] = actorbatch.BatchServer(url, config).start()
        yield started
    finally:
        for server in started.values():
            server.stop(drain=False)


def sleeper(name: str, width: int, seconds: float | list[float]) -> actorbatch.JobDefinition:
    each = seconds if isinstance(seconds, list) else [seconds] * width
    return parse_job({"name": name, "tasks": [
        {"name": f"t{i:02d}", "run": "actorbatch.examples:sleep", "params": {"seconds": each[i]}}
        for i in range(width)]})


def shares(detail: dict[str, object]) -> Counter[str]:
    tasks = detail["tasks"]
    assert isinstance(tasks, list)
    return Counter(t["server"] for t in tasks)


def test_three_equal_idle_servers_split_a_wide_job_about_evenly(url: str) -> None:
    width = 60
    with actorbatch.connect(url, user="tester") as client:
        client.add_job(sleeper("wide", width, [0.1 + 0.01 * (i % 11) for i in range(width)]))
        with servers(url, ("s1", 2), ("s2", 2), ("s3", 2)):  # 10 rounds each: a round is 10% of a share
            detail = client.wait(client.run_job("wide"), timeout=60)
    assert detail["status"] == "succeeded"
    counts = shares(detail)
    assert sum(counts.values()) == width
    for name in ("s1", "s2", "s3"):  # within 20% of a third each
        assert 0.8 * width / 3 <= counts[name] <= 1.2 * width / 3, counts


def test_a_server_busy_with_long_tasks_leaves_new_tasks_to_an_idle_peer(url: str) -> None:
    short = 20
    with actorbatch.connect(url, user="tester") as client:
        client.add_job(sleeper("long", 2, 60))
        client.add_job(sleeper("short", 1, 0.05))
        with servers(url, ("busy", 4)) as running:
            long_run = client.run_job("long")
            wait_for(lambda: running["busy"].busy() == 2, 30, "the busy server to start both long tasks")
            with servers(url, ("idle", 4)):
                wait_for(lambda: sum(s["alive"] for s in client.servers()) == 2, 30, "both servers to be up")
                details = [client.wait(client.run_job("short"), timeout=60) for _ in range(short)]
            client.cancel(long_run)
    assert all(d["status"] == "succeeded" for d in details)
    counts = sum((shares(d) for d in details), Counter[str]())
    # "busy" runs 2 of 4 threads (load 0.5), "idle" none: each new task waits 50 ms on "busy" for "idle" to win it
    assert counts["idle"] + counts["busy"] == short
    assert counts["busy"] <= 2, counts


def test_the_busy_server_still_takes_part_once_the_idle_peer_is_full(url: str) -> None:
    """Liveness first: the bias decides who wins a task, it never leaves a free thread idle beside a backlog."""
    width = 40
    with actorbatch.connect(url, user="tester") as client:
        client.add_job(sleeper("long", 2, 60))
        client.add_job(sleeper("wide", width, 0.1))
        with servers(url, ("busy", 4), load_bias=100) as running:
            long_run = client.run_job("long")
            wait_for(lambda: running["busy"].busy() == 2, 30, "the busy server to start both long tasks")
            with servers(url, ("idle", 4), load_bias=100):
                wait_for(lambda: sum(s["alive"] for s in client.servers()) == 2, 30, "both servers to be up")
                detail = client.wait(client.run_job("wide"), timeout=60)
            client.cancel(long_run)
    assert detail["status"] == "succeeded"
    counts = shares(detail)
    # while "idle" runs 4 of 4 (load 1) "busy" (0.5) is the least busy, and claims at once even at bias 100
    assert counts["busy"] > 0 and counts["idle"] > counts["busy"], counts
