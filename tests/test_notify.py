"""Push, not poll: on PostgreSQL each commit to the log is notified, servers hear it through LISTEN, and poll only
while they cannot listen. On SQLite an idle server relaxes its polling. Counts are asserted, never durations."""

import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

import actorbatch
from actorbatch.clock import SystemClock
from actorbatch.domain.jobfile import parse_job
from actorbatch.store import notify
from tests.processes import stop, wait_for

NOOP = {"name": "pickup", "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]}


@pytest.fixture
def pg_client(pg_url: str) -> Iterator[actorbatch.Client]:
    with actorbatch.connect(pg_url, user="submitter") as client:
        client.add_job(parse_job(NOOP))
        yield client


def server(url: str, **options: Any) -> actorbatch.BatchServer:
    config = {"name": "listener", "threads": 2, "projector": "off", "lease_timeout_s": 60.0, **options}
    return actorbatch.BatchServer(url, actorbatch.ServerConfig(**config))


def listening(srv: actorbatch.BatchServer) -> bool:
    return srv.listener is not None and srv.listener.listening and srv.node.plant.pace.listening


def started_after_ms(client: actorbatch.Client, submitted: datetime, run_id: object) -> float:
    detail = client.wait(run_id, timeout=30, poll_s=0.005)  # type: ignore[arg-type]
    assert detail["status"] == "succeeded"
    started = datetime.fromisoformat(str(detail["tasks"][0]["started_at"]).replace("Z", "+00:00"))
    return (started - submitted).total_seconds() * 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@pytest.mark.postgres
def test_one_notification_per_commit_whatever_it_holds(pg_client: actorbatch.Client, pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"LISTEN {notify.CHANNEL}")
        pg_client.run_job("pickup")  # one event
        pg_client.run_many("pickup", [{}] * 50)  # fifty events, one transaction
        heard = list(conn.notifies(timeout=1.0))
    assert [n.channel for n in heard] == [notify.CHANNEL, notify.CHANNEL]


@pytest.mark.postgres
def test_work_from_another_connection_is_started_on_notification(pg_client: actorbatch.Client, pg_url: str) -> None:
    clock = SystemClock()
    with server(pg_url) as srv:
        wait_for(lambda: listening(srv), 10, "the server to listen")
        assert srv.listener is not None
        notified = srv.listener.notifications
        latencies = []
        for _ in range(50):
            time.sleep(0.02)
            submitted = clock.now()
            latencies.append(started_after_ms(pg_client, submitted, pg_client.run_job("pickup")))
        assert len(latencies) == 50  # every run started
        assert srv.listener.notifications - notified >= 50  # at least the submissions were heard
    print(f"submitted -> started, 50 runs: p50 {statistics.median(latencies):.1f} ms, "
          f"p99 {percentile(latencies, 0.99):.1f} ms")


@pytest.mark.postgres
def test_an_idle_listening_server_reads_only_for_its_safety_poll(pg_client: actorbatch.Client, pg_url: str) -> None:
    with server(pg_url, safety_poll_s=1.0) as srv:
        wait_for(lambda: listening(srv), 10, "the server to listen")
        pg_client.wait(pg_client.run_job("pickup"), timeout=30)
        time.sleep(0.5)  # the run's last echoes
        reads, since = srv.store.follows, time.monotonic()
        time.sleep(3)
        reads, elapsed_s = srv.store.follows - reads, time.monotonic() - since
    # Polling every 10 ms would have read about 300 times; the safety poll reads once a second (+1 for a
    # heartbeat that may fall in the window, +1 for the window's edges).
    assert reads <= elapsed_s / 1.0 + 2, reads


def test_an_idle_sqlite_server_relaxes_its_polling(db_url: str) -> None:
    with actorbatch.connect(db_url, user="submitter") as client:
        client.add_job(parse_job(NOOP))
        with server(db_url, idle_poll_s=0.1) as srv:
            client.wait(client.run_job("pickup"), timeout=30)
            time.sleep(1.5)  # quiet for longer than a second: relaxed
            reads, since = srv.store.follows, time.monotonic()
            time.sleep(2)
            reads, elapsed_s = srv.store.follows - reads, time.monotonic() - since
            assert reads <= elapsed_s / 0.1 + 3, reads  # at 10 ms it would have been about 200
            run_id = client.run_job("pickup")  # and work is still picked up
            assert client.wait(run_id, timeout=30)["status"] == "succeeded"


def terminate(url: str, pid: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.mark.postgres
def test_a_broken_listen_connection_falls_back_to_polling_and_listens_again(
        pg_client: actorbatch.Client, pg_url: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="actorbatch.store")
    refused = {"now": False}
    connect = notify.connect

    def refusing(url: Any) -> Any:
        if refused["now"]:
            raise psycopg.OperationalError("connection refused (test)")
        return connect(url)

    monkeypatch.setattr(notify, "connect", refusing)
    clock = SystemClock()
    with server(pg_url) as srv:
        wait_for(lambda: listening(srv), 10, "the server to listen")
        assert srv.listener is not None and srv.listener.backend_pid is not None
        first_pid = srv.listener.backend_pid
        refused["now"] = True
        terminate(pg_url, first_pid)
        wait_for(lambda: not srv.node.plant.pace.listening, 10, "the follower to fall back to polling")
        notified = srv.listener.notifications
        polled = started_after_ms(pg_client, clock.now(), pg_client.run_job("pickup"))
        assert srv.listener.notifications == notified  # picked up by polling: nothing was heard
        refused["now"] = False
        wait_for(lambda: listening(srv), 30, "the server to listen again")
        assert srv.listener.backend_pid not in (None, first_pid)
        heard = started_after_ms(pg_client, clock.now(), pg_client.run_job("pickup"))
        assert srv.listener.notifications > notified
    lines = [r.getMessage() for r in caplog.records if "listen connection" in r.getMessage()]
    assert len(lines) == 2, lines  # one when it went, one when it came back
    assert "unreachable" in lines[0] and "polling" in lines[0] and "reachable again" in lines[1]
    print(f"started {polled:.1f} ms after submission while polling, {heard:.1f} ms when listening again")


@pytest.mark.postgres
def test_a_store_without_notifications_is_polled_until_init_adds_them(
        pg_client: actorbatch.Client, pg_url: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="actorbatch.store")
    monkeypatch.setattr(notify, "RECHECK_S", 0.2)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP TRIGGER {notify.TRIGGER} ON {notify.TABLE}")
    with server(pg_url) as srv:
        assert pg_client.wait(pg_client.run_job("pickup"), timeout=30)["status"] == "succeeded"
        assert not srv.node.plant.pace.listening
        actorbatch.init(pg_url)  # the upgrade
        wait_for(lambda: listening(srv), 10, "the server to listen once the trigger exists")
        assert pg_client.wait(pg_client.run_job("pickup"), timeout=30)["status"] == "succeeded"
    lines = [r.getMessage() for r in caplog.records if "no commit notifications" in r.getMessage()]
    assert len(lines) == 1, lines


def test_the_notification_trigger_is_only_on_postgresql(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    actorbatch.init(url)
    with actorbatch.BatchServer(url, actorbatch.ServerConfig(name="s", projector="off")) as srv:
        assert srv.listener is None and srv.node.plant.pace.relaxed_s == 0.1


def follow_process(url: str) -> subprocess.Popen[bytes]:
    """`projections follow`, as `server start --projector process` runs it."""
    return subprocess.Popen([sys.executable, "-m", "actorbatch", "--db", url, "projections", "follow"],
                            stderr=subprocess.DEVNULL)


def folded_to_head(client: actorbatch.Client) -> bool:
    rows = client.views.db.query("SELECT position FROM ab_position WHERE name = 'views'")
    return bool(rows) and int(rows[0][0]) == client.store.head()


def query_starts(url: str) -> dict[int, object]:
    """When each other backend of this database started its latest statement."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT pid, query_start FROM pg_stat_activity WHERE datname = current_database() "
                            "AND pid <> pg_backend_pid()").fetchall()
    return {int(pid): started for pid, started in rows}


@pytest.mark.postgres
def test_the_projector_process_catches_up_when_notified_and_sends_no_statement_while_idle(
        pg_client: actorbatch.Client, pg_url: str) -> None:
    follower = follow_process(pg_url)
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            wait_for(lambda: bool(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE query = %s",
                                               (f"LISTEN {notify.CHANNEL}",)).fetchone()[0]),  # type: ignore[index]
                     30, "the projector process to listen")
        for _ in range(2):  # each commit is heard and folded (no read of the log by this client meanwhile)
            pg_client.run_job("pickup")
            wait_for(lambda: folded_to_head(pg_client), 30, "the read models to reach the head of the log")
        time.sleep(0.5)  # its last look, which finds nothing more
        before = query_starts(pg_url)
        time.sleep(1.5)  # well within its safety read (every few seconds)
        after = query_starts(pg_url)
    finally:
        assert stop(follower) == 0
    assert {pid: at for pid, at in after.items() if before.get(pid) != at} == {}


def test_the_projector_process_on_sqlite_folds_every_commit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    actorbatch.init(url)
    with actorbatch.connect(url, user="submitter") as client:
        client.add_job(parse_job(NOOP))
        follower = follow_process(url)
        try:
            for _ in range(3):  # the look at the file's data_version must never hide a commit
                client.run_job("pickup")
                wait_for(lambda: folded_to_head(client), 30, "the read models to reach the head of the log")
                time.sleep(0.6)  # a few quiet looks between commits
        finally:
            assert stop(follower) == 0


def test_a_bell_wakes_one_wait_per_burst_of_rings_and_can_be_rung_from_a_signal_handler() -> None:
    import signal
    import threading

    bell = notify.Bell()
    try:
        assert not bell.wait(0)  # not rung
        for _ in range(10_000):  # more than a pipe holds: the extra rings are dropped, not blocking
            bell.ring()
        assert bell.wait(0) and not bell.wait(0)  # one wake-up for the burst
        threading.Timer(0.05, bell.ring).start()
        assert bell.wait(30)  # woken by another thread long before the timeout
        previous = signal.signal(signal.SIGUSR1, lambda signum, frame: bell.ring())
        try:
            signal.raise_signal(signal.SIGUSR1)
            assert bell.wait(0)
        finally:
            signal.signal(signal.SIGUSR1, previous)
    finally:
        bell.close()
