"""The scheduler's behaviour, driven directly: no threads, no store, no sleeps; time is a value.

A tiny first-writer-wins log stands in for the store where races between schedulers matter.
"""

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from uuid import UUID

import pytest

from actorbatch.behaviours.scheduling import MAX_QUEUED, ScheduleBehaviour
from actorbatch.clock import ManualClock
from actorbatch.domain.events import Event, job_id
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.jobs import JobAdded, JobRemoved, JobReplaced, JobScheduled, JobState, JobUnscheduled
from actorbatch.domain.recurrence import RUN_ALL_LIMIT, parse_schedule
from actorbatch.domain.runs import FireSkipped, Run, RunCreated, scheduled_run_id
from tests.conftest import T0

SKIP_REASON = "skipped: the previous run is still active"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def definition(name: str, schedule: dict[str, Any], tasks: int = 1) -> dict[str, Any]:
    return parse_job({"name": name, "schedule": schedule,
                      "tasks": [{"name": f"t{i}", "run": "m:f"} for i in range(tasks)]}).to_dict()


class Jobs:
    """Job events with the right versions, as `job add`, `job add --replace`, `job schedule` ... append them."""

    def __init__(self) -> None:
        self.versions: Counter[str] = Counter()

    def _next(self, name: str, when: datetime) -> dict[str, Any]:
        self.versions[name] += 1
        return {"originator_id": job_id(name), "originator_version": self.versions[name], "timestamp": when}

    def add(self, name: str, schedule: dict[str, Any], when: datetime = T0, tasks: int = 1) -> JobAdded:
        return JobAdded(**self._next(name, when), definition=definition(name, schedule, tasks), user="alice")

    def replace(self, name: str, schedule: dict[str, Any], when: datetime) -> JobReplaced:
        return JobReplaced(**self._next(name, when), definition=definition(name, schedule), user="alice")

    def schedule(self, name: str, when: datetime) -> JobScheduled:
        return JobScheduled(**self._next(name, when), user="alice")

    def unschedule(self, name: str, when: datetime) -> JobUnscheduled:
        return JobUnscheduled(**self._next(name, when), user="alice")

    def remove(self, name: str, when: datetime) -> JobRemoved:
        return JobRemoved(**self._next(name, when), user="alice")


def tick(b: ScheduleBehaviour, now: datetime) -> list[Event]:
    """One scheduler step: decide, then hear the own events back (as the store's listener delivers them)."""
    events = b.decide(now)
    b.observe(events)
    return events


def fired(events: Iterable[Event]) -> list[tuple[str, datetime]]:
    """(kind, fire time) of each decision, in order."""
    result = []
    for e in events:
        if isinstance(e, RunCreated | FireSkipped):
            assert e.fire_time is not None  # the scheduler's runs always carry their fire time
            result.append((type(e).__name__, e.fire_time))
    return result


def created(events: Iterable[Event]) -> list[RunCreated]:
    return [e for e in events if isinstance(e, RunCreated)]


def run_times(events: Iterable[Event]) -> list[float]:
    """Fire times of the runs created, as seconds after T0."""
    return [(e.fire_time - T0).total_seconds() for e in created(events) if e.fire_time is not None]


def finish(run_created: RunCreated, when: datetime) -> list[Event]:
    """A server claims every task of the run and each succeeds: the events that end it."""
    run = Run()
    run.apply(run_created)
    events: list[Event] = []
    for task in list(run.tasks):
        claim = run.claim(task, "s1", when, 30)
        run.apply(claim)
        done = run.finish(task, claim.attempt, when, exit_status=None)
        run.apply(done)  # type: ignore[arg-type]
        events += [claim, done]
    return events


def end(b: ScheduleBehaviour, run_created: RunCreated, when: datetime) -> list[Event]:
    """The run ends: the behaviour hears it and releases queued fires, as the actor does."""
    events = []
    for jid in b.observe(finish(run_created, when)):
        events += b.release(jid, when)
    b.observe(events)
    return events


class Log:
    """The store as far as racing schedulers care: one event per (id, version), the first writer wins."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._taken: set[tuple[UUID, int]] = set()

    def append(self, events: Iterable[Event]) -> list[Event]:
        stored = []
        for event in events:
            key = (event.originator_id, event.originator_version)
            if key not in self._taken:
                self._taken.add(key)
                self.events.append(event)
                stored.append(event)
        return stored


# ---- firing on time -----------------------------------------------------------------------------

def test_fires_at_the_fire_time_on_a_manual_clock_and_not_a_microsecond_before(clock: ManualClock) -> None:
    jobs, b = Jobs(), ScheduleBehaviour(clock.now())
    b.observe([jobs.add("tick", {"every": "10s"})])
    assert b.next_wake() == at(10)  # `every` counts from when the job was scheduled; that moment is no fire
    for expected in (10, 20, 30):
        clock.set(at(expected) - timedelta(microseconds=1))
        assert tick(b, clock.now()) == []
        clock.advance(1e-6)
        events = tick(b, clock.now())
        assert fired(events) == [("RunCreated", at(expected))]
        run = events[0]
        assert isinstance(run, RunCreated)
        assert run.originator_id == scheduled_run_id(job_id("tick"), at(expected))
        assert run.timestamp == run.due_at == at(expected) and run.originator_version == 1
        assert run.user == "alice" and run.definition["name"] == "tick"
        assert b.next_wake() == at(expected + 10)
        end(b, run, clock.now())


@pytest.mark.parametrize("schedule", [
    {"every": "7s"},
    {"every": "90s", "start": "2026-11-02T08:59:00Z"},
    {"hourly": ":05", "timezone": "Asia/Kolkata"},
    {"cron": "*/3 * * * *"},
    {"daily": "09:30", "timezone": "Europe/Berlin"},
], ids=lambda s: next(iter(s)))
def test_exactly_one_event_per_fire_time_however_the_clock_steps(schedule: dict[str, Any]) -> None:
    jobs, b = Jobs(), ScheduleBehaviour(T0)
    b.observe([jobs.add("j", {**schedule, "overlap": "allow"})])
    rng, now, events = random.Random(7), T0, []
    until = T0 + timedelta(days=2)
    while now < until:
        now += timedelta(seconds=rng.choice([0.001, 0.3, 1, 3, 59, 61, 600, 3599]))
        events += tick(b, now)
    expected = parse_schedule(schedule).fires(T0, now, T0, 10**6)
    assert len(expected) >= 2
    assert [fire for _, fire in fired(events)] == expected  # each once, in order, none missing
    assert len({e.originator_id for e in events}) == len(events)
    assert all(e.timestamp >= e.fire_time for e in created(events) if e.fire_time)  # never early


def test_a_berlin_daily_job_across_the_spring_forward_night_fires_once_at_the_jump() -> None:
    jobs, start = Jobs(), datetime(2026, 3, 27, 12, tzinfo=UTC)
    b = ScheduleBehaviour(start)
    b.observe([jobs.add("berlin", {"daily": "02:30", "timezone": "Europe/Berlin", "overlap": "allow"}, start)])
    events = []
    for hour in range(4 * 24):
        events += tick(b, start + timedelta(hours=hour))
    assert [fire for _, fire in fired(events)] == [
        datetime(2026, 3, 28, 1, 30, tzinfo=UTC),  # 02:30 CET
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # 02:30 does not exist: 03:00 CEST, the jump
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),  # 02:30 CEST
        datetime(2026, 3, 31, 0, 30, tzinfo=UTC),
    ]


def test_a_schedule_ends_before_its_end_and_an_at_job_fires_once() -> None:
    jobs, b = Jobs(), ScheduleBehaviour(T0)
    b.observe([jobs.add("bounded", {"every": "10s", "start": "2026-11-02T09:00:05Z", "end": "2026-11-02T09:00:35Z",
                                    "overlap": "allow"}),
               jobs.add("once", {"at": "2026-11-02T09:00:12Z"})])
    events = []
    for second in range(0, 120, 3):
        events += tick(b, at(second))
    assert sorted(fired(events), key=lambda f: f[1]) == [
        ("RunCreated", at(5)), ("RunCreated", at(12)), ("RunCreated", at(15)), ("RunCreated", at(25))]
    assert b.next_wake() is None  # 35 is the end, exclusive; nothing left on the heap


# ---- misfires: fire times before the scheduler started ------------------------------------------

def down_then_up(misfire: str, overlap: str = "allow") -> list[Event]:
    """An `every = 10s` job scheduled at T0 whose first scheduler starts at T0 + 45 s (fires 10..40 missed)."""
    jobs, b = Jobs(), ScheduleBehaviour(at(45))
    b.observe([jobs.add("j", {"every": "10s", "misfire": misfire, "overlap": overlap})])
    events = tick(b, at(45))
    for run in created(events):
        end(b, run, at(46))
    return events + tick(b, at(50)) + tick(b, at(60))


def test_run_all_creates_one_run_per_missed_fire_time_oldest_first() -> None:
    events = down_then_up("run-all")
    assert run_times(events) == [10, 20, 30, 40, 50, 60]
    assert [e.timestamp for e in events[:4]] == [at(45)] * 4  # at once, on start


def test_run_once_creates_one_run_for_the_latest_missed_fire_time() -> None:
    assert run_times(down_then_up("run-once")) == [40, 50, 60]


def test_skip_creates_none_for_missed_fire_times_and_then_continues() -> None:
    assert run_times(down_then_up("skip")) == [50, 60]


def test_run_once_is_the_default() -> None:
    assert run_times(down_then_up(parse_schedule({"every": "1s"}).misfire)) == [40, 50, 60]


def test_run_all_with_the_default_overlap_still_creates_every_missed_run() -> None:
    events = down_then_up("run-all", overlap="skip")
    assert [kind for kind, _ in fired(events)[:4]] == ["RunCreated"] * 4


def test_run_all_creates_at_most_the_limit_in_one_pass_and_the_rest_in_the_next() -> None:
    jobs, b = Jobs(), ScheduleBehaviour(at(5000.5))
    b.observe([jobs.add("j", {"every": "1s", "misfire": "run-all", "overlap": "allow"})])
    first = tick(b, at(5000.5))
    assert run_times(first) == list(range(1, RUN_ALL_LIMIT + 1))
    assert run_times(tick(b, at(5000.5))) == list(range(RUN_ALL_LIMIT + 1, 2 * RUN_ALL_LIMIT + 1))


def test_run_all_catches_up_a_long_outage_completely_in_order() -> None:
    jobs, b = Jobs(), ScheduleBehaviour(at(2500.5))
    b.observe([jobs.add("j", {"every": "1s", "misfire": "run-all", "overlap": "allow"})])
    events = []
    for _ in range(5):  # however many passes it takes
        events += tick(b, at(2500.5))
    assert run_times(events) == list(range(1, 2501))


def test_missed_counts_only_after_the_last_fire_handled_before_the_downtime() -> None:
    jobs = Jobs()
    job = JobState()
    job.apply(jobs.add("j", {"every": "10s", "misfire": "run-all", "overlap": "allow"}))
    job.fired(at(20))  # as the read model has it: runs up to 20 were created by an earlier scheduler
    b = ScheduleBehaviour(at(45))
    b.adopt(job)
    assert run_times(tick(b, at(45))) == [30, 40]


def test_fire_times_while_unscheduled_do_not_exist_so_they_are_never_missed() -> None:
    jobs, b = Jobs(), ScheduleBehaviour(at(100))
    b.observe([jobs.add("j", {"every": "10s", "misfire": "run-all", "overlap": "allow"}),
               jobs.unschedule("j", at(12)), jobs.schedule("j", at(33))])  # all while no scheduler ran
    assert run_times(tick(b, at(100))) == [43, 53, 63, 73, 83, 93]  # `every` counts from the new schedule
    jobs2, b2 = Jobs(), ScheduleBehaviour(datetime(2026, 11, 10, 12, tzinfo=UTC))
    b2.observe([jobs2.add("d", {"daily": "06:00", "misfire": "run-all", "overlap": "allow"}),
                jobs2.unschedule("d", datetime(2026, 11, 3, 12, tzinfo=UTC)),
                jobs2.schedule("d", datetime(2026, 11, 7, 12, tzinfo=UTC))])
    days = [f.day for _, f in fired(tick(b2, datetime(2026, 11, 10, 12, tzinfo=UTC)))]
    assert days == [8, 9, 10]  # scheduling again forgives the 3rd, missed before the unschedule


def test_a_job_scheduled_while_the_scheduler_runs_has_nothing_missed() -> None:
    jobs, b = Jobs(), ScheduleBehaviour(T0)
    b.observe([jobs.add("j", {"every": "10s", "misfire": "run-all", "overlap": "allow"}, at(100))])
    assert tick(b, at(105)) == []
    assert run_times(tick(b, at(110))) == [110]


# ---- overlap: the previous run still active -----------------------------------------------------

def test_overlap_skip_records_the_skipped_fire_with_a_reason_and_never_two_active_runs() -> None:
    jobs, b = Jobs(), ScheduleBehaviour(T0)
    b.observe([jobs.add("j", {"every": "10s"})])
    first = tick(b, at(10))
    skipped = tick(b, at(20)) + tick(b, at(30))
    assert fired(skipped) == [("FireSkipped", at(20)), ("FireSkipped", at(30))]
    for event in skipped:
        assert isinstance(event, FireSkipped)
        assert event.reason == SKIP_REASON and event.job == "j"
        assert event.originator_id == scheduled_run_id(job_id("j"), event.fire_time)  # the run's id: one decision
        assert event.originator_version == 1
    assert b.jobs[job_id("j")].skipped == 2 and b.jobs[job_id("j")].last_skip == SKIP_REASON
    assert end(b, created(first)[0], at(35)) == []  # skipped fires are not run later
    assert run_times(tick(b, at(40))) == [40]


def test_overlap_queue_starts_queued_fires_in_order_as_each_run_ends() -> None:
    jobs, b = Jobs(), ScheduleBehaviour(T0)
    b.observe([jobs.add("j", {"every": "10s", "overlap": "queue"})])
    running = created(tick(b, at(10)))[0]
    assert tick(b, at(20)) == [] and tick(b, at(30)) == [] and tick(b, at(40)) == []  # held back
    started = []
    for when in (41, 52, 53):
        nxt = end(b, running, at(when))
        assert len(nxt) == 1 and isinstance(nxt[0], RunCreated)
        running = nxt[0]
        assert running.timestamp == at(when) and running.fire_time is not None  # created as the previous ended...
        assert running.originator_id == scheduled_run_id(job_id("j"), running.fire_time)  # ...under its fire time
        started.append(running.fire_time)
        assert tick(b, at(when)) == []  # one at a time
    assert started == [at(20), at(30), at(40)]
    assert fired(tick(b, at(50))) == []  # 50 queues behind 40's run (still active)
    assert run_times(end(b, running, at(54))) == [50]


def test_overlap_queue_is_bounded_and_skips_beyond_the_bound_with_a_reason() -> None:
    jobs, b = Jobs(), ScheduleBehaviour(T0)
    b.observe([jobs.add("j", {"every": "1s", "overlap": "queue"})])
    running = created(tick(b, at(1)))[0]
    events = []
    for second in range(2, MAX_QUEUED + 5):
        events += tick(b, at(second))
    queued_until = 1 + MAX_QUEUED
    assert [f for _, f in fired(events)] == [at(s) for s in range(queued_until + 1, MAX_QUEUED + 5)]
    assert all(isinstance(e, FireSkipped) and "queued" in e.reason for e in events)
    drained = []
    while True:
        nxt = end(b, running, at(200))
        if not nxt:
            break
        running = created(nxt)[0]
        drained.append(running.fire_time)
    assert drained == [at(s) for s in range(2, queued_until + 1)]  # none lost up to the bound, oldest first


def test_overlap_allow_runs_them_concurrently() -> None:
    jobs, b = Jobs(), ScheduleBehaviour(T0)
    b.observe([jobs.add("j", {"every": "10s", "overlap": "allow"})])
    events = tick(b, at(10)) + tick(b, at(20)) + tick(b, at(30))
    assert run_times(events) == [10, 20, 30]
    assert len(b.active[job_id("j")]) == 3


def test_a_run_created_elsewhere_counts_as_active_and_its_end_frees_the_job() -> None:
    jobs, b = Jobs(), ScheduleBehaviour(T0)
    add = jobs.add("j", {"every": "10s", "overlap": "queue"})
    b.observe([add])
    job = JobState()
    job.apply(add)
    assert job.definition is not None
    on_demand = Run.create(UUID(int=1), job.definition, 1, {}, "bob", at(5), at(5))  # `job run j` elsewhere
    b.observe([on_demand])
    assert tick(b, at(10)) == []  # queued behind it
    assert run_times(end(b, on_demand, at(12))) == [10]


def test_a_fire_time_handled_by_another_scheduler_is_not_decided_again() -> None:
    add = Jobs().add("j", {"every": "10s", "overlap": "queue"})
    fast, slow = ScheduleBehaviour(T0), ScheduleBehaviour(T0)
    fast.observe([add])
    slow.observe([add])
    log = Log()
    theirs = log.append(fast.decide(at(10)))
    slow.observe(theirs)  # heard before slow's own timer went off for fire 10
    assert slow.decide(at(10)) == []  # fire 10 is handled: nothing to decide, nothing to queue
    fast.observe(theirs)
    ended = log.append(finish(created(theirs)[0], at(11)))
    released = [e for jid in slow.observe(ended) for e in slow.release(jid, at(11))]
    slow.observe(log.append(released))
    assert fired(slow.decide(at(20))) == [("RunCreated", at(20))]  # nothing is running: fire 20 starts


def still_running_from_before_the_downtime(misfire: str, overlap: str) -> list[Event]:
    """The run for fire 10 is still active (another server runs it) when this scheduler starts at 45."""
    jobs = Jobs()
    job = JobState()
    job.apply(jobs.add("j", {"every": "10s", "misfire": misfire, "overlap": overlap}))
    assert job.definition is not None and job.id is not None
    job.fired(at(10))
    run = Run()
    run.apply(Run.create(scheduled_run_id(job.id, at(10)), job.definition, 1, {}, "alice", at(10), at(10),
                         fire_time=at(10)))
    b = ScheduleBehaviour(at(45))
    b.adopt(job, [run])
    return tick(b, at(45))


def test_a_catch_up_run_does_not_start_beside_a_run_still_active_from_before_the_downtime() -> None:
    assert fired(still_running_from_before_the_downtime("run-once", "skip")) == [("FireSkipped", at(40))]


def test_a_catch_up_run_with_overlap_queue_waits_for_the_run_still_active() -> None:
    assert still_running_from_before_the_downtime("run-once", "queue") == []  # queued behind it


def test_a_seeded_active_run_counts_for_the_overlap_policy() -> None:
    jobs = Jobs()
    job = JobState()
    job.apply(jobs.add("j", {"every": "10s"}))
    run = Run()
    run.apply(Run.create(UUID(int=1), job.definition, 1, {}, "alice", T0, T0))  # type: ignore[arg-type]
    b = ScheduleBehaviour(T0)
    b.adopt(job, [run])
    assert fired(tick(b, at(10))) == [("FireSkipped", at(10))]


# ---- schedule changes ---------------------------------------------------------------------------

def test_replace_changes_future_fire_times_and_keeps_the_cursor() -> None:
    jobs, b = Jobs(), ScheduleBehaviour(T0)
    b.observe([jobs.add("j", {"every": "10s", "overlap": "allow"})])
    events = tick(b, at(10)) + tick(b, at(20))
    b.observe([jobs.replace("j", {"every": "7s", "overlap": "allow"}, at(25))])
    for second in range(25, 50):
        events += tick(b, at(second))
    assert run_times(events) == [10, 20, 32, 39, 46]  # no 30 or 40 of the old rule
    b.observe([jobs.replace("j", {"daily": "10:00", "overlap": "allow"}, at(50))])
    assert tick(b, datetime(2026, 11, 2, 9, 59, 59, tzinfo=UTC)) == []  # stale entries of the old rule pass
    assert run_times(tick(b, datetime(2026, 11, 2, 10, tzinfo=UTC))) == [3600]


def test_unschedule_stops_future_fires_and_schedule_resumes_from_the_next_one() -> None:
    jobs, b = Jobs(), ScheduleBehaviour(T0)
    b.observe([jobs.add("j", {"every": "10s", "overlap": "allow"})])
    events = tick(b, at(10))
    b.observe([jobs.unschedule("j", at(15))])
    assert b.next_wake() in (None, at(20))  # a stale heap entry may remain; it must not fire
    assert tick(b, at(100)) == []
    b.observe([jobs.schedule("j", at(103))])
    events += tick(b, at(113)) + tick(b, at(125))
    assert run_times(events) == [10, 113, 123]


def test_reschedule_restarts_the_count_from_now() -> None:
    jobs, b = Jobs(), ScheduleBehaviour(T0)
    b.observe([jobs.add("j", {"every": "10s", "overlap": "allow"})])
    events = tick(b, at(10))
    b.observe([jobs.schedule("j", at(14))])  # `job reschedule`: JobScheduled while scheduled
    for second in range(14, 40):
        events += tick(b, at(second))
    assert run_times(events) == [10, 24, 34]


def test_a_removed_job_never_fires_again() -> None:
    jobs, b = Jobs(), ScheduleBehaviour(T0)
    b.observe([jobs.add("j", {"every": "10s", "overlap": "allow"})])
    tick(b, at(10))
    b.observe([jobs.remove("j", at(12))])
    assert tick(b, at(1000)) == []


def test_unschedule_and_schedule_within_one_interval_fire_only_the_new_schedules_times() -> None:
    jobs, b = Jobs(), ScheduleBehaviour(T0)
    b.observe([jobs.add("j", {"every": "10s", "overlap": "allow"})])
    events = tick(b, at(10))
    b.observe([jobs.unschedule("j", at(12)), jobs.schedule("j", at(13))])
    for second in range(13, 40):
        events += tick(b, at(second))
    assert run_times(events) == [10, 23, 33]  # not 20: that was the old schedule's


def test_a_job_removed_and_added_again_fires_only_on_its_new_schedule() -> None:
    jobs, b = Jobs(), ScheduleBehaviour(T0)
    b.observe([jobs.add("j", {"every": "10s", "overlap": "allow"})])
    events = tick(b, at(10))
    b.observe([jobs.remove("j", at(12)), jobs.add("j", {"daily": "10:00", "overlap": "allow"}, at(13))])
    events += tick(b, at(3600))
    assert run_times(events) == [10, 3600]


# ---- jitter -------------------------------------------------------------------------------------

def test_jitter_delays_the_due_time_but_the_fire_time_stays_the_identity() -> None:
    schedule = {"every": "60s", "jitter": "30s", "overlap": "allow"}
    jobs = Jobs()
    adds = [jobs.add(f"j{i}", schedule) for i in range(20)]
    mine, theirs = ScheduleBehaviour(T0), ScheduleBehaviour(T0)
    mine.observe(adds)
    theirs.observe(adds)
    a, b = tick(mine, at(60)), tick(theirs, at(60))
    assert a == b  # every scheduler decides the same runs, due at the same jittered moments
    assert len(a) == 20
    dues = set()
    for event in created(a):
        assert event.fire_time == at(60) and event.timestamp == at(60)  # created on the fire time...
        assert at(60) <= event.due_at < at(90)  # ...due within the jitter
        assert event.originator_id == scheduled_run_id(job_id(event.definition["name"]), at(60))
        dues.add(event.due_at)
    assert len(dues) == 20  # jobs sharing a fire time spread out
    assert mine.next_wake() == at(120)  # the jitter does not move the next fire time


# ---- races between schedulers -------------------------------------------------------------------

def race(behaviours: Sequence[ScheduleBehaviour], log: Log, until: float, seed: int,
         finish_after: float) -> None:
    """Each scheduler steps at its own random moments; runs end `finish_after` s after they are created;
    everyone hears what was stored with a random lag."""
    rng = random.Random(seed)
    heard = [0] * len(behaviours)
    ends: list[tuple[datetime, RunCreated]] = []
    now = T0
    while now < at(until):
        now += timedelta(seconds=rng.uniform(0.05, 0.4))
        for run_created in [r for t, r in ends if t <= now]:
            log.append(finish(run_created, now))
        ends = [(t, r) for t, r in ends if t > now]
        for i, b in enumerate(behaviours):
            new = log.events[heard[i]:]
            if rng.random() < 0.7:  # hear the log, or not yet
                heard[i] = len(log.events)
                pending = [e for jid in b.observe(new) for e in b.release(jid, now)]
            else:
                pending = []
            stored = log.append([*pending, *b.decide(now)])
            ends += [(now + timedelta(seconds=finish_after), e) for e in created(stored)]


@pytest.mark.parametrize("seed", range(5))
def test_racing_schedulers_store_exactly_one_decision_per_fire_time(seed: int) -> None:
    jobs = Jobs()
    adds = [jobs.add("fast", {"every": "1s", "overlap": "allow"}),
            jobs.add("slow", {"every": "3s", "overlap": "allow"})]
    behaviours = [ScheduleBehaviour(T0) for _ in range(3)]
    for b in behaviours:
        b.observe(adds)
    log = Log()
    race(behaviours, log, until=60, seed=seed, finish_after=0.1)
    decisions = [(e.definition["name"], e.fire_time) for e in created(log.events)]
    assert len(decisions) == len(set(decisions))
    fast = sorted(f for n, f in decisions if n == "fast" and f is not None)
    assert fast == [at(s) for s in range(1, len(fast) + 1)]  # in order from the first, none missing
    assert {f for n, f in decisions if n == "fast"} >= {at(s) for s in range(1, 59)}
    assert {f for n, f in decisions if n == "slow"} >= {at(s) for s in range(3, 58, 3)}


def test_a_run_that_lost_the_race_to_a_skip_does_not_block_the_job_for_ever() -> None:
    jobs = Jobs()
    add = jobs.add("j", {"every": "10s"})
    a, b = ScheduleBehaviour(T0), ScheduleBehaviour(T0)
    a.observe([add])
    b.observe([add])
    log = Log()
    first = log.append(a.decide(at(10)) + b.decide(at(10)))
    a.observe(first)
    b.observe(first)
    ended = finish(created(first)[0], at(15))
    a.observe(ended)  # a hears that the run ended; b does not yet
    mine, theirs = a.decide(at(20)), b.decide(at(20))
    assert fired(mine) == [("RunCreated", at(20))] and fired(theirs) == [("FireSkipped", at(20))]
    stored = log.append(theirs + mine)  # b's skip is stored first; a's run for 20 never exists
    assert fired(stored) == [("FireSkipped", at(20))]
    a.observe(stored)
    b.observe(ended + stored)
    # Nothing is running now: the next fire must create a run on either scheduler.
    assert fired(a.decide(at(30))) == [("RunCreated", at(30))]


# ---- many jobs ----------------------------------------------------------------------------------

def test_the_heap_handles_many_jobs_each_firing_on_its_own_times() -> None:
    rules: list[dict[str, Any]] = [{"every": f"{3600 + i * 7}s"} for i in range(2000)]
    rules += [{"cron": f"{i % 60} {i % 24} * * *"} for i in range(1000)]
    rules += [{"daily": f"{i % 24:02d}:{i % 60:02d}", "timezone": "Europe/Berlin"} for i in range(1000)]
    rules += [{"weekly": {"days": ["tue", "sat"], "at": f"{i % 24:02d}:00"}} for i in range(500)]
    jobs, b = Jobs(), ScheduleBehaviour(T0)
    b.observe([jobs.add(f"j{i}", {**rule, "overlap": "allow"}) for i, rule in enumerate(rules)])
    until = at(25 * 3600)
    events, now = [], T0
    while now < until:
        now = min(b.next_wake() or until, until)
        step = tick(b, now)
        assert all(e.fire_time == now for e in created(step))  # woken exactly for each fire time
        events += step
    got = Counter(e.definition["name"] for e in created(events))
    for i, rule in enumerate(rules):
        assert got[f"j{i}"] == len(parse_schedule(rule).fires(T0, until, T0, 10**6)), rule
    assert len(events) == len({e.originator_id for e in events}) > 15_000
    fires = [e.fire_time for e in created(events)]
    assert all(x is not None and y is not None and x <= y for x, y in pairwise(fires))
