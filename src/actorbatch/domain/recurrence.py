"""Schedules: a recurrence rule in a time zone, between bounds, with what to do about missed and overlapping
runs; when a scheduled job fires next."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from actorbatch.domain.durations import parse_duration_s
from actorbatch.domain.limits import LATEST, show
from actorbatch.domain.rules import RULE_PARSERS, At, Every, Rule
from actorbatch.domain.timezones import iso_utc, load_zone, parse_instant, wall_to_utc
from actorbatch.errors import InvalidJob
from actorbatch.frozen import frozen

RUN_ALL_LIMIT = 1000
MISFIRE_POLICIES = ("run-once", "run-all", "skip")
OVERLAP_POLICIES = ("skip", "queue", "allow")

_TICK = timedelta(microseconds=1)  # datetime resolution: "at or after t" = "after t - _TICK"


@frozen
class Schedule:
    """When a job fires (rule, zone, bounds) and what to do about missed or overlapping runs."""

    rule: Rule
    timezone: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None
    misfire: str = "run-once"
    overlap: str = "skip"
    jitter_s: float = 0.0

    @cached_property
    def _zone(self) -> ZoneInfo:
        return load_zone(self.timezone)

    def next_fire(self, after: datetime, scheduled_at: datetime) -> datetime | None:
        """First fire time strictly after `after` (aware; UTC out), or None once the schedule ends.

        `scheduled_at` is when the job was scheduled: `every` counts from `start`, or from
        `scheduled_at` when start is None.
        """
        if after.tzinfo is None:
            raise ValueError("next_fire needs an aware datetime")
        if after >= LATEST:  # every schedule ends by LATEST: fire times stay far from datetime's last year
            return None
        if self.start is not None and after < self.start:
            after = self.start - _TICK  # a fire at `start` itself counts
        fire = self._next_unbounded(after, scheduled_at)
        end = LATEST if self.end is None else min(self.end, LATEST)
        return fire if fire is not None and fire < end else None

    def fires(self, after: datetime, until: datetime, scheduled_at: datetime, limit: int) -> list[datetime]:
        """Fire times in (after, until], oldest first, at most `limit`."""
        found: list[datetime] = []
        while len(found) < limit:
            fire = self.next_fire(found[-1] if found else after, scheduled_at)
            if fire is None or fire > until:
                break
            found.append(fire)
        return found

    def due_at(self, fire: datetime, key: str = "") -> datetime:
        """When the run for `fire` is due: `fire` plus a jitter in [0, jitter_s).

        The jitter is a hash of `key` (e.g. the job id, so jobs sharing a fire time spread out)
        and the fire time: every server and every replay agree on it. The fire time itself stays
        the run's identity.
        """
        if not self.jitter_s:
            return fire
        digest = hashlib.sha256(f"{key}@{iso_utc(fire)}".encode()).digest()
        return fire + timedelta(seconds=self.jitter_s * int.from_bytes(digest[:8]) / 2**64)

    def to_dict(self) -> dict[str, object]:
        """The canonical [schedule] table: times in UTC with 'Z', durations in seconds."""
        table = self.rule.to_table()
        table.update(timezone=self.timezone, misfire=self.misfire, overlap=self.overlap)
        if self.start is not None:
            table["start"] = iso_utc(self.start)
        if self.end is not None:
            table["end"] = iso_utc(self.end)
        if self.jitter_s:
            table["jitter"] = self.jitter_s
        return table

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Schedule:
        """Inverse of to_dict, whose table parse_schedule reads back exactly."""
        return parse_schedule(d)

    def _next_unbounded(self, after: datetime, scheduled_at: datetime) -> datetime | None:
        rule = self.rule
        if isinstance(rule, At):
            return rule.at if rule.at > after else None
        if isinstance(rule, Every):
            return _next_every(self.start or scheduled_at, rule.interval_s, after)
        local = after.astimezone(self._zone).replace(tzinfo=None)
        while True:  # a repeated hour or a gap can map candidates to `after` or before: pass them
            local = rule.calendar.next_after(local)
            fire = wall_to_utc(local, self._zone)
            if fire > after:
                return fire


def _next_every(anchor: datetime, interval_s: float, after: datetime) -> datetime:
    """anchor + k * interval for the smallest k >= 0 strictly after `after`, exact to the µs."""
    step_us = round(interval_s * 1_000_000)
    k = max(0, (after - anchor) // _TICK // step_us + 1)
    return anchor + k * timedelta(microseconds=step_us)


def _latest_fire(schedule: Schedule, since: datetime, now: datetime, scheduled_at: datetime) -> datetime | None:
    """The last fire time in (since, now], by bisection: ~50 next_fire calls however many fires."""
    latest = schedule.next_fire(since, scheduled_at)
    if latest is None or latest > now:
        return None
    hi = now  # invariant: `latest` is a fire time and none lies in (hi, now]
    while latest < hi:
        mid = latest + (hi - latest) / 2
        fire = schedule.next_fire(mid, scheduled_at)
        if fire is not None and fire <= hi:
            latest = fire
        else:
            hi = mid
    return latest


def misfired(schedule: Schedule, last_fire: datetime | None, scheduled_at: datetime, now: datetime) -> list[datetime]:
    """Missed fire times to run now: due at or before `now`, after `last_fire` and `scheduled_at`.

    run-all: all of them, oldest first, but at most the oldest RUN_ALL_LIMIT (1000), so a long
    outage of a frequent schedule stays bounded; call again with the last one returned as
    `last_fire` for the next ones. run-once: only the latest. skip: none.
    """
    since = scheduled_at if last_fire is None else max(last_fire, scheduled_at)
    if schedule.misfire == "run-all":
        return schedule.fires(since, now, scheduled_at, RUN_ALL_LIMIT)
    if schedule.misfire == "run-once":
        latest = _latest_fire(schedule, since, now, scheduled_at)
        return [] if latest is None else [latest]
    return []


_SETTINGS = ("timezone", "start", "end", "misfire", "overlap", "jitter")


def _choice(table: Mapping[str, object], key: str, allowed: tuple[str, ...]) -> str:
    value = table.get(key, allowed[0])
    if not isinstance(value, str) or value not in allowed:
        raise InvalidJob(f"schedule.{key}: expected one of {', '.join(allowed)}, got {show(value)}")
    return value


def parse_schedule(table: Mapping[str, object]) -> Schedule:
    """The job file's [schedule] table -> Schedule; raises InvalidJob (one line) on any mistake."""
    unknown = sorted(set(table) - set(RULE_PARSERS) - set(_SETTINGS))
    if unknown:
        raise InvalidJob(f"schedule: unknown key {unknown[0]!r}")
    rule_keys = [key for key in RULE_PARSERS if key in table]
    if len(rule_keys) != 1:
        raise InvalidJob("schedule: exactly one of at, every, hourly, daily, weekly, monthly, cron")
    zone = load_zone(table.get("timezone", "UTC"))
    rule = RULE_PARSERS[rule_keys[0]](table[rule_keys[0]], zone)
    start = parse_instant(table["start"], zone, "schedule.start") if "start" in table else None
    end = parse_instant(table["end"], zone, "schedule.end") if "end" in table else None
    if start is not None and end is not None and end <= start:
        raise InvalidJob(f"schedule.end: must be after schedule.start, got {show(table['end'])}")
    return Schedule(
        rule,
        zone.key,
        start,
        end,
        misfire=_choice(table, "misfire", MISFIRE_POLICIES),
        overlap=_choice(table, "overlap", OVERLAP_POLICIES),
        jitter_s=parse_duration_s(table["jitter"], "schedule.jitter") if "jitter" in table else 0.0,
    )


MAX_BACKFILL = 10_000  # fire times one backfill creates runs for, at most


def backfill_fires(schedule: Schedule, start: datetime, end: datetime, scheduled_at: datetime) -> list[datetime]:
    """The fire times in [start, end), oldest first; InvalidJob (one line) for an empty range or one with more
    than MAX_BACKFILL fire times. `every` counts from `start` of the schedule, else from `scheduled_at`."""
    if end <= start:
        raise InvalidJob(f"--to: must be after --from, got {iso_utc(end)} <= {iso_utc(start)}")
    fires = schedule.fires(start - _TICK, end - _TICK, scheduled_at, MAX_BACKFILL + 1)
    if len(fires) > MAX_BACKFILL:
        raise InvalidJob(f"--from/--to: more than {MAX_BACKFILL:,} fire times in that range; backfill it in parts")
    return fires
