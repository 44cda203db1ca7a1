"""Exactly one run per fire time: every decision is for a real fire time, none is taken twice, none is missing.

A decision is a RunCreated with a fire time, or a FireSkipped (the overlap policy said no). It must be for a fire
time of the job's schedule while the job was scheduled (fire times while unscheduled do not exist). At the end,
every fire time at which some scheduler was up throughout, with a margin of `tolerance_s` either side for clock
skew and for hearing the log, must have its decision. Jobs with `overlap = "queue"` hold fire times in memory
until the active run ends, and a crash may forget them, so for those only "at most one" is required.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from actorbatch.domain.events import Event
from actorbatch.domain.jobs import JobAdded, JobRemoved, JobReplaced, JobScheduled, JobUnscheduled
from actorbatch.domain.recurrence import Schedule
from actorbatch.domain.runs import FireSkipped, RunCreated
from simulations.checkers import CheckFailed

CHECKER = "one-run-per-fire-time"
_TICK = timedelta(microseconds=1)
MAX_FIRES = 100_000  # per job and scheduled period, a bound on the final check


@dataclass
class Period:
    """A job was scheduled from `since` until `until` (None: still is)."""

    schedule: Schedule
    since: datetime
    until: datetime | None = None


class FireTimes:
    def __init__(self, tolerance_s: float) -> None:
        self.tolerance = timedelta(seconds=tolerance_s)
        self.periods: dict[str, list[Period]] = {}
        self.decided: set[tuple[str, datetime]] = set()
        self._names: dict[UUID, str] = {}

    def appended(self, events: Sequence[Event]) -> None:
        for event in events:
            if isinstance(event, JobAdded | JobReplaced | JobScheduled | JobUnscheduled | JobRemoved):
                self._job(event)
            elif isinstance(event, RunCreated | FireSkipped) and event.fire_time is not None:
                name = event.job if isinstance(event, FireSkipped) else event.definition["name"]
                self._decision(name, event.fire_time, event.timestamp)

    def _job(self, event: Event) -> None:
        if isinstance(event, JobAdded | JobReplaced):
            self._names[event.originator_id] = event.definition["name"]
        periods = self.periods.setdefault(self._names[event.originator_id], [])
        if periods and periods[-1].until is None:
            periods[-1].until = event.timestamp
        if isinstance(event, JobAdded | JobReplaced):
            schedule = event.definition["schedule"]
            if schedule is not None:
                periods.append(Period(Schedule.from_dict(schedule), event.timestamp))
        elif isinstance(event, JobScheduled) and periods:
            periods.append(Period(periods[-1].schedule, event.timestamp))

    def _decision(self, job: str, fire: datetime, at: datetime) -> None:
        if (job, fire) in self.decided:
            raise CheckFailed(CHECKER, f"a second decision for {job} at {fire}", at)
        self.decided.add((job, fire))
        for period in self.periods.get(job, []):
            late = period.until is None or fire <= period.until + self.tolerance
            if period.since < fire and late and period.schedule.next_fire(fire - _TICK, period.since) == fire:
                return
        raise CheckFailed(CHECKER, f"a decision for {job} at {fire}, which is not a fire time of its schedule "
                          "while it was scheduled", at)

    def missing(self, until: datetime, covered: Callable[[datetime, datetime], bool]) -> None:
        """Fail if a fire time up to `until` that some scheduler was up for has no decision."""
        for job, periods in self.periods.items():
            for period in periods:
                if period.schedule.overlap == "queue":
                    continue
                end = min(until, period.until) if period.until is not None else until
                for fire in period.schedule.fires(period.since, end - self.tolerance, period.since, MAX_FIRES):
                    if (fire - period.since > self.tolerance and (job, fire) not in self.decided
                            and covered(fire - self.tolerance, fire + self.tolerance)):
                        raise CheckFailed(CHECKER, f"no run (or skip) for {job} at {fire}, though a scheduler "
                                          "was up throughout", until)
