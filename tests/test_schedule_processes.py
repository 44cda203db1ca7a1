"""Schedules on real `actorbatch server start` processes: exactly one run per fire time with three schedulers racing,
missed fire times after real downtime, overlap policies with runs longer than the interval, and schedule changes made
from another process while a server runs.

Fire times are read from the log (RunCreated and FireSkipped carry `fire_time`), cross-checked with `client.runs`.
"""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

import actorbatch
from actorbatch.domain.events import Event, job_id
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.jobs import JobReplaced, JobScheduled, JobUnscheduled
from actorbatch.domain.runs import FireSkipped, RunCreated
from actorbatch.domain.servers import ServerStarted
from tests.processes import ROOT, stop, wait_for

pytestmark = pytest.mark.slow

SKIP_REASON = "skipped: the previous run is still active"
SECOND = timedelta(seconds=1)


def start_server(url: str, name: str, threads: int, log: Path) -> subprocess.Popen[bytes]:
    """`actorbatch server start`, its output kept in `log` (the child holds the file; this process closes it)."""
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "actorbatch", "--db", url, "server", "start", "--name", name,
                                 "--threads", str(threads), "--lease-timeout", "2"],
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=out, stderr=out)


def add(client: actorbatch.Client, name: str, schedule: dict[str, Any], seconds: float = 0.0,
        replace: bool = False) -> None:
    body = {"run": "actorbatch.examples:sleep", "params": {"seconds": seconds}} if seconds else \
        {"run": "actorbatch.examples:noop"}
    client.add_job(parse_job({"name": name, "schedule": schedule, "tasks": [{"name": "t", **body}]}), replace=replace)


def log(client: actorbatch.Client) -> list[tuple[int, Event]]:
    return client.store.read(0, 10**6)


@dataclass
class Fires:
    """What the log says about one job's fire times."""

    runs: list[tuple[int, RunCreated]]  # (log position, event), in log order
    skips: list[tuple[int, FireSkipped]]

    @property
    def run_times(self) -> list[datetime]:
        return [e.fire_time for _, e in self.runs if e.fire_time is not None]

    @property
    def skip_times(self) -> list[datetime]:
        return [e.fire_time for _, e in self.skips]

    def decided(self) -> list[datetime]:
        return sorted(self.run_times + self.skip_times)


def fires(client: actorbatch.Client, job: str) -> Fires:
    return fires_in(log(client), job)


def fires_in(events: list[tuple[int, Event]], job: str) -> Fires:
    return Fires([(p, e) for p, e in events if isinstance(e, RunCreated) and e.definition["name"] == job
                  and e.fire_time is not None],
                 [(p, e) for p, e in events if isinstance(e, FireSkipped) and e.job == job])


def job_events(client: actorbatch.Client, job: str) -> list[Event]:
    return client.store.events(job_id(job))


def grid(anchor: datetime, after: datetime, until: datetime, step: timedelta = SECOND) -> list[datetime]:
    """`every` fire times anchor + k * step in (after, until]."""
    k = max(1, (after - anchor) // step + 1)
    result = []
    while anchor + k * step <= until:
        result.append(anchor + k * step)
        k += 1
    return result


def parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def wall() -> datetime:
    return datetime.now(UTC)


def assert_one_decision_per_fire_time(f: Fires) -> None:
    decided = f.decided()
    assert len(decided) == len(set(decided)), "a fire time decided twice"


def servers_alive(client: actorbatch.Client, n: int) -> bool:
    return sum(bool(s["alive"]) for s in client.servers()) >= n


# ---- three schedulers racing -------------------------------------------------------------------

def test_three_servers_create_exactly_one_run_per_fire_time_for_20_seconds(client: actorbatch.Client, db_url: str,
                                                                           tmp_path: Path) -> None:
    procs = [start_server(db_url, f"s{i}", threads=2, log=tmp_path / f"s{i}.log") for i in (1, 2, 3)]
    try:
        wait_for(lambda: servers_alive(client, 3), 20, "three servers")
        add(client, "tick", {"every": "1s"})
        wait_for(lambda: len(fires(client, "tick").run_times) >= 21, 30, "21 fire times (20 s)")
        stopping = wall()
    finally:
        codes = [stop(p) for p in procs]
    assert codes == [0, 0, 0]
    f = fires(client, "tick")
    times = f.run_times
    assert len(times) == len(set(times)), "two runs for one fire time"
    assert f.skips == []  # a no-op never overlaps the next fire
    anchor = job_events(client, "tick")[0].timestamp
    assert sorted(times) == grid(anchor, min(times) - SECOND, max(times)), "a fire time is missing"
    assert min(times) == anchor + SECOND and len(times) >= 21
    rows = client.runs(job="tick", limit=10**6)
    assert sorted(r["id"] for r in rows) == sorted(str(e.originator_id) for _, e in f.runs)
    created = {str(e.originator_id): e.fire_time for _, e in f.runs if e.fire_time is not None}
    assert {r["status"] for r in rows if created[r["id"]] < stopping - SECOND} == {"succeeded"}
    assert len({t["server"] for r in rows for t in client.run(r["id"])["tasks"]}) >= 2  # they shared the work


# ---- downtime: missed fire times ---------------------------------------------------------------

MISFIRE_JOBS = {
    "mis-all": {"every": "1s", "misfire": "run-all", "overlap": "allow"},
    "mis-all-default-overlap": {"every": "1s", "misfire": "run-all"},
    "mis-once": {"every": "1s"},  # run-once is the default
    "mis-skip": {"every": "1s", "misfire": "skip"},
    # unscheduled and scheduled again during the downtime; the first while the read models follow, the second not
    "mis-paused": {"every": "1s", "misfire": "run-all", "overlap": "allow"},
    "mis-paused-unseen": {"every": "1s", "misfire": "run-all", "overlap": "allow"},
}
BORDER = timedelta(milliseconds=50)  # a fire this close after the restart may count as missed or not


@dataclass
class Downtime:
    events: list[tuple[int, Event]]
    stopped_at: int  # log position of the last event written before the restart
    restarted_at: datetime  # the second server's registration: its scheduler starts a moment later
    paused: dict[str, tuple[datetime, datetime]]  # job -> (unscheduled at, scheduled again at)


@pytest.fixture(scope="module")
def downtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Downtime]:
    """Jobs fire on one server; every server stops for ~3.5 s; one starts again."""
    folder = tmp_path_factory.mktemp("downtime")
    url = f"sqlite:///{folder / 'actorbatch.db'}"
    actorbatch.init(url)
    with actorbatch.connect(url, user="tester") as client:
        first = start_server(url, "before", threads=4, log=folder / "before.log")
        try:
            wait_for(lambda: servers_alive(client, 1), 20, "the first server")
            client.add_jobs([parse_job({"name": name, "schedule": schedule,
                                        "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]})
                             for name, schedule in MISFIRE_JOBS.items()])  # one transaction: one anchor for all
            wait_for(lambda: all(len(fires(client, name).decided()) >= 2 for name in MISFIRE_JOBS), 20,
                     "two fires of every job")
            just_after_a_fire(client, "mis-all")  # so no fire time falls into the drain
        finally:
            assert stop(first) == 0
        down_since = time.monotonic()
        stopped_at = client.store.head()
        client.unschedule("mis-paused")
        time.sleep(1.1)  # a fire time with mis-paused unscheduled
        client.schedule("mis-paused")
        client.jobs()  # the read models catch up
        client.unschedule("mis-paused-unseen")
        time.sleep(1.1)
        client.schedule("mis-paused-unseen")  # the read models lag: the next server starts before they catch up
        time.sleep(max(0.0, 3.5 - (time.monotonic() - down_since)))  # the downtime: ~3.5 fire times missed
        second = start_server(url, "after", threads=4, log=folder / "after.log")
        try:
            def restarted() -> datetime | None:
                return next((e.timestamp for p, e in log(client) if p > stopped_at and isinstance(e, ServerStarted)),
                            None)

            wait_for(lambda: restarted() is not None, 20, "the second server")
            restart = restarted()
            assert restart is not None
            wait_for(lambda: all(max(fires(client, name).decided()) > restart + 2 * SECOND for name in MISFIRE_JOBS),
                     20, "fires after the restart")
        finally:
            assert stop(second) == 0
        paused = {}
        for name in ("mis-paused", "mis-paused-unseen"):
            changes = job_events(client, name)
            paused[name] = (next(e.timestamp for e in changes if isinstance(e, JobUnscheduled)),
                            next(e.timestamp for e in changes if isinstance(e, JobScheduled)))
        yield Downtime(log(client), stopped_at, restart, paused)


@dataclass
class Restart:
    last_before: datetime  # the last fire time decided before the downtime
    runs_after: list[datetime]  # fire times of the runs created after it, in log order
    decided_after: list[tuple[datetime, str]]  # (fire time, "run" | "skip") after it, by fire time
    last: datetime
    missed: list[datetime]  # fire times in (last_before, restart]
    border: list[datetime]  # fire times in (restart, restart + BORDER]: missed or not, depending on the ms
    later: list[datetime]  # fire times after the border, up to `last`


def restart(d: Downtime, job: str) -> Restart:
    f = fires_in(d.events, job)
    assert_one_decision_per_fire_time(f)
    both: list[tuple[int, RunCreated | FireSkipped]] = [*f.runs, *f.skips]
    last_before = max(e.fire_time for p, e in both if p <= d.stopped_at and e.fire_time is not None)
    decided = sorted((e.fire_time, "run" if isinstance(e, RunCreated) else "skip")
                     for p, e in both if p > d.stopped_at and e.fire_time is not None)
    last = decided[-1][0]
    return Restart(last_before, [e.fire_time for p, e in f.runs if p > d.stopped_at and e.fire_time], decided, last,
                   grid(last_before, last_before, d.restarted_at),
                   grid(last_before, d.restarted_at, d.restarted_at + BORDER),
                   grid(last_before, d.restarted_at + BORDER, last))


def test_run_all_creates_one_run_per_missed_fire_time_oldest_first(downtime: Downtime) -> None:
    r = restart(downtime, "mis-all")
    assert len(r.missed) >= 3
    assert r.runs_after == [*r.missed, *r.border, *r.later]  # each once, oldest first, none missing
    catch_up = [e for _, e in fires_in(downtime.events, "mis-all").runs if e.fire_time in r.missed]
    assert max(e.timestamp for e in catch_up) - downtime.restarted_at < timedelta(seconds=1)  # at once, on start


def test_run_all_with_the_default_overlap_creates_every_missed_run(downtime: Downtime) -> None:
    r = restart(downtime, "mis-all-default-overlap")
    assert r.runs_after[:len(r.missed)] == r.missed


def test_run_once_creates_one_run_for_the_latest_missed_fire_time(downtime: Downtime) -> None:
    r = restart(downtime, "mis-once")
    assert len(r.missed) >= 3
    for_missed = [(t, kind) for t, kind in r.decided_after if t <= downtime.restarted_at]
    if r.border and not for_missed:  # the border fire counted as the latest missed one: it has the run
        assert r.decided_after[0] == (r.border[0], "run")
    else:
        assert for_missed == [(r.missed[-1], "run")]
    # later fire times are decided as usual (the first may be skipped: the catch-up run can still be active)
    assert [t for t, _ in r.decided_after if t > downtime.restarted_at] == [*r.border, *r.later]
    assert ("run" in {kind for t, kind in r.decided_after if t in r.later}) and len(r.later) >= 2


def test_skip_creates_no_run_for_missed_fire_times_and_the_schedule_continues(downtime: Downtime) -> None:
    r = restart(downtime, "mis-skip")
    assert len(r.missed) >= 3
    assert len(r.later) >= 2
    assert r.runs_after in (r.later, [*r.border, *r.later])  # none for the missed ones; then as usual
    assert [kind for _, kind in r.decided_after] == ["run"] * len(r.runs_after)


def paused_runs(downtime: Downtime, job: str) -> tuple[list[datetime], list[datetime], datetime]:
    unscheduled, scheduled = downtime.paused[job]
    r = restart(downtime, job)
    assert r.last_before < unscheduled
    return r.runs_after, grid(scheduled, scheduled, r.last), scheduled


def test_fire_times_while_unscheduled_never_exist(downtime: Downtime) -> None:
    runs, expected, scheduled = paused_runs(downtime, "mis-paused")
    # run-all catches up what fell after `schedule` (counted from it); the unscheduled span has no fire times
    assert runs == expected
    assert runs[0] == scheduled + SECOND < downtime.restarted_at


def test_fire_times_while_unscheduled_never_exist_when_the_read_models_lag(downtime: Downtime) -> None:
    runs, expected, _ = paused_runs(downtime, "mis-paused-unseen")
    assert runs == expected


# ---- overlap: runs longer than the interval ---------------------------------------------------

OVERLAP_JOBS = ("skip", "queue", "allow")
RUN_S = 2.5


@dataclass
class Overlap:
    events: list[tuple[int, Event]]
    runs: dict[str, list[dict[str, Any]]]  # per job, with fire_time, created_at, started_at, ended_at
    jobs: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def overlap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Overlap]:
    """`every = 1s` jobs whose one task sleeps 2.5 s, one per overlap policy, for ~8 s on one server."""
    folder = tmp_path_factory.mktemp("overlap")
    url = f"sqlite:///{folder / 'actorbatch.db'}"
    actorbatch.init(url)
    with actorbatch.connect(url, user="tester") as client:
        server = start_server(url, "ov", threads=8, log=folder / "ov.log")
        try:
            wait_for(lambda: servers_alive(client, 1), 20, "the server")
            for policy in OVERLAP_JOBS:
                add(client, f"ov-{policy}", {"every": "1s", "overlap": policy}, seconds=RUN_S)
            wait_for(lambda: len(fires(client, "ov-skip").decided()) >= 8, 20, "eight fire times")
        finally:
            assert stop(server) == 0  # drains: running attempts end first
        events = log(client)
        runs = {}
        for policy in OVERLAP_JOBS:
            created = {str(e.originator_id): e for _, e in fires_in(events, f"ov-{policy}").runs}
            rows = client.runs(job=f"ov-{policy}", limit=10**6)
            assert sorted(r["id"] for r in rows) == sorted(created)
            runs[policy] = sorted(({"fire_time": created[r["id"]].fire_time, "created_at": created[r["id"]].timestamp,
                                    "started_at": parse(r["started_at"]), "ended_at": parse(r["ended_at"]),
                                    "status": r["status"]} for r in rows), key=lambda r: r["fire_time"])
        yield Overlap(events, runs, {p: client.job(f"ov-{p}") for p in OVERLAP_JOBS})


def test_overlap_skip_records_skipped_fires_and_never_two_active_runs(overlap: Overlap) -> None:
    f = fires_in(overlap.events, "ov-skip")
    assert_one_decision_per_fire_time(f)
    decided = f.decided()
    assert decided == grid(decided[0] - SECOND, decided[0] - SECOND, decided[-1])  # every fire time decided
    assert len(f.skips) >= 4
    assert {e.reason for _, e in f.skips} == {SKIP_REASON}
    job = overlap.jobs["skip"]
    assert job["skipped_fires"] == len(f.skips) and job["last_skip"] == SKIP_REASON
    runs = overlap.runs["skip"]
    for earlier, later in pairwise(runs):
        assert earlier["ended_at"] is not None and later["created_at"] >= earlier["ended_at"]  # never two active


def test_overlap_queue_starts_the_next_run_when_the_previous_ends(overlap: Overlap) -> None:
    f = fires_in(overlap.events, "ov-queue")
    assert f.skips == []
    runs = [r for r in overlap.runs["queue"] if r["started_at"] is not None]
    assert len(runs) >= 3
    times = [r["fire_time"] for r in overlap.runs["queue"]]
    assert times == grid(times[0] - SECOND, times[0] - SECOND, times[-1])  # none lost: consecutive fire times
    assert len(times) < len(fires_in(overlap.events, "ov-skip").decided())  # the rest were still queued
    for earlier, later in pairwise(runs):
        assert later["started_at"] >= earlier["ended_at"]  # never overlap in time
        assert later["created_at"] - earlier["ended_at"] < timedelta(seconds=0.5)  # started as the previous ended


def test_overlap_allow_runs_them_concurrently(overlap: Overlap) -> None:
    f = fires_in(overlap.events, "ov-allow")
    assert f.skips == []
    times = f.run_times
    assert sorted(times) == grid(times[0] - SECOND, times[0] - SECOND, max(times))
    runs = [r for r in overlap.runs["allow"] if r["ended_at"] is not None]
    assert len(runs) >= 4
    overlapping = [(a, b) for a, b in pairwise(runs) if b["started_at"] < a["ended_at"]]
    assert len(overlapping) >= 3
    assert all(b["started_at"] - b["fire_time"] < timedelta(seconds=0.5) for _, b in overlapping)  # not held back


# ---- schedule changes from another process ---------------------------------------------------

def just_after_a_fire(client: actorbatch.Client, job: str) -> None:
    """Return as soon as `job` fired again: the next fire time is a whole interval away."""
    latest = max(fires(client, job).run_times)
    wait_for(lambda: max(fires(client, job).run_times) > latest, 10, f"a new fire time of {job}")


def wait_new_fire(client: actorbatch.Client, job: str, after: datetime, n: int = 1, timeout: float = 10) -> None:
    wait_for(lambda: len([t for t in fires(client, job).run_times if t > after]) >= n, timeout,
             f"{n} new fire time(s) of {job}")


def test_schedule_changes_from_another_process_are_picked_up_without_restart(client: actorbatch.Client,
                                                                           db_url: str, tmp_path: Path) -> None:
    server = start_server(db_url, "live", threads=2, log=tmp_path / "live.log")
    try:
        wait_for(lambda: servers_alive(client, 1), 20, "the server")
        add(client, "chg", {"every": "1s"})
        added = job_events(client, "chg")[0].timestamp
        wait_new_fire(client, "chg", added, 2)
        # unschedule right after a fire: no fire time after it may exist
        just_after_a_fire(client, "chg")
        client.unschedule("chg")
        unscheduled = job_events(client, "chg")[-1].timestamp
        time.sleep(2.5)  # nothing may happen here: there is nothing to poll for
        assert max(fires(client, "chg").run_times) < unscheduled
        assert client.job("chg")["scheduled"] is False and client.job("chg")["next_fire"] is None
        client.schedule("chg")
        scheduled = job_events(client, "chg")[-1].timestamp
        wait_new_fire(client, "chg", scheduled, 2)
        history = len(client.runs(job="chg", limit=10**6))
        just_after_a_fire(client, "chg")
        add(client, "chg", {"every": "2s"}, replace=True)
        replaced = job_events(client, "chg")[-1]
        assert isinstance(replaced, JobReplaced)
        wait_new_fire(client, "chg", replaced.timestamp, 2)
    finally:
        assert stop(server) == 0
    times = sorted(fires(client, "chg").run_times)
    span1 = [t for t in times if t < unscheduled]
    span2 = [t for t in times if scheduled < t < replaced.timestamp]
    span3 = [t for t in times if t > replaced.timestamp]
    assert span1 == grid(added, added, span1[-1])
    assert span2 == grid(scheduled, scheduled, span2[-1])  # resumed, counted from `schedule`
    assert span3 == grid(replaced.timestamp, replaced.timestamp, span3[-1], 2 * SECOND)  # the new rule
    assert len(times) == len(span1) + len(span2) + len(span3)  # nothing between unschedule and schedule
    assert len(client.runs(job="chg", limit=10**6)) >= history + 2  # the old runs stay


def test_unschedule_then_schedule_quickly_fires_only_on_the_new_schedule(client: actorbatch.Client, db_url: str,
                                                                         tmp_path: Path) -> None:
    server = start_server(db_url, "quick", threads=2, log=tmp_path / "quick.log")
    try:
        wait_for(lambda: servers_alive(client, 1), 20, "the server")
        add(client, "flip", {"every": "2s"})
        added = job_events(client, "flip")[0].timestamp
        wait_new_fire(client, "flip", added)
        client.unschedule("flip")  # right after a fire: the old schedule's next one is ~2 s away
        client.schedule("flip")
        scheduled = job_events(client, "flip")[-1].timestamp
        wait_new_fire(client, "flip", scheduled, 2)
    finally:
        assert stop(server) == 0
    after = sorted(t for t in fires(client, "flip").run_times if t > scheduled)
    assert after == grid(scheduled, scheduled, after[-1], 2 * SECOND)
