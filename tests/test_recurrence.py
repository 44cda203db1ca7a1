"""Recurrence rules against a brute-force reference that walks UTC minute by minute (or second by
second for `every`), across the 2026 DST transitions of four zones, plus the parse errors users see."""

import calendar
import re
import time as wall_clock
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actorbatch.domain.recurrence import RUN_ALL_LIMIT, Schedule, misfired, parse_schedule
from actorbatch.domain.rules import At, Cron, Daily, Every, Hourly, Monthly, Weekly
from actorbatch.errors import InvalidJob

MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
PROPERTY = settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# The 2026 transitions (UTC instants) around which the properties look; Kolkata has none.
TRANSITIONS = {
    "Europe/Berlin": [utc("2026-03-29T01:00"), utc("2026-10-25T01:00")],
    "America/New_York": [utc("2026-03-08T07:00"), utc("2026-11-01T06:00")],
    "Australia/Lord_Howe": [utc("2026-04-04T15:00"), utc("2026-10-03T15:30")],  # 30-minute shift
    "Asia/Kolkata": [utc("2026-03-28T20:30"), utc("2026-10-25T01:00")],
}
MONTH_ENDS = [utc("2026-02-28T12:00"), utc("2026-04-30T12:00"), utc("2026-12-31T12:00")]
WEEKDAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
CRON_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


# ---- the reference: written without the production code --------------------------------------


def reference_fires(
    matches: Callable[[datetime], bool], zone: ZoneInfo, after: datetime, until: datetime
) -> list[datetime]:
    """Fire instants in (after, until]: walk UTC minutes and read each one's local wall time.

    A matching local minute fires when it is read for the first time (fold 0); matching local
    minutes that the clocks jumped over fire at the instant the jump lands on, once."""
    instant = after.replace(second=0, microsecond=0)
    previous = instant.astimezone(zone).replace(tzinfo=None)
    found = []
    while instant <= until:
        instant += MINUTE
        aware = instant.astimezone(zone)
        local = aware.replace(tzinfo=None)
        jumped_over = [previous + MINUTE * n for n in range(1, (local - previous) // MINUTE)]
        fires_now = (aware.fold == 0 and matches(local)) or any(map(matches, jumped_over))
        if fires_now and after < instant <= until:
            found.append(instant)
        previous = local
    return found


def is_last_day(local: datetime) -> bool:
    return local.day == calendar.monthrange(local.year, local.month)[1]


def cron_weekday(local: datetime) -> int:
    return (local.isoweekday()) % 7  # cron counts from Sunday = 0


# ---- strategies ----------------------------------------------------------------------------------

zones = st.sampled_from(sorted(TRANSITIONS))
hot_hours = st.one_of(st.sampled_from([1, 2, 3]), st.integers(0, 23))  # where the 2026 jumps are
hot_minutes = st.one_of(st.sampled_from([0, 15, 29, 30, 31, 59]), st.integers(0, 59))


@st.composite
def windows(draw: st.DrawFn) -> tuple[ZoneInfo, datetime, datetime]:
    """A zone and a window of at most two days around one of its transitions or a month's end."""
    name = draw(zones)
    center = draw(st.sampled_from([*TRANSITIONS[name], *MONTH_ENDS]))
    after = center + draw(st.integers(-40 * 3600, 12 * 3600).map(lambda s: s * SECOND))
    until = after + draw(st.integers(1, 48 * 60).map(lambda m: m * MINUTE))
    return ZoneInfo(name), after, until


def check_against_reference(
    schedule: Schedule, matches: Callable[[datetime], bool], after: datetime, until: datetime
) -> None:
    zone = ZoneInfo(schedule.timezone)
    expected = reference_fires(matches, zone, after, until)
    actual = schedule.fires(after, until, scheduled_at=after, limit=10_000)
    assert actual == expected
    assert actual == sorted(set(actual))
    assert all(fire.utcoffset() == timedelta(0) for fire in actual)
    assert schedule.next_fire(after, after) == (actual[0] if actual else schedule.next_fire(until, after))


@PROPERTY
@given(windows(), hot_minutes)
def test_hourly_matches_reference(window: tuple[ZoneInfo, datetime, datetime], minute: int) -> None:
    zone, after, until = window
    schedule = parse_schedule({"hourly": f":{minute:02d}", "timezone": zone.key})
    check_against_reference(schedule, lambda local: local.minute == minute, after, until)


@PROPERTY
@given(windows(), hot_hours, hot_minutes)
def test_daily_matches_reference(window: tuple[ZoneInfo, datetime, datetime], hour: int, minute: int) -> None:
    zone, after, until = window
    schedule = parse_schedule({"daily": f"{hour:02d}:{minute:02d}", "timezone": zone.key})
    check_against_reference(schedule, lambda local: (local.hour, local.minute) == (hour, minute), after, until)


@PROPERTY
@given(
    windows(),
    st.lists(st.sampled_from(WEEKDAY_NAMES), min_size=1, max_size=3),
    hot_hours,
    hot_minutes,
)
def test_weekly_matches_reference(
    window: tuple[ZoneInfo, datetime, datetime], days: list[str], hour: int, minute: int
) -> None:
    zone, after, until = window
    table = {"weekly": {"days": days, "at": f"{hour}:{minute:02d}"}, "timezone": zone.key}

    def matches(local: datetime) -> bool:
        named = WEEKDAY_NAMES[local.weekday()] in days
        return named and (local.hour, local.minute) == (hour, minute)

    check_against_reference(parse_schedule(table), matches, after, until)


@PROPERTY
@given(
    windows(),
    st.one_of(st.just("last"), st.integers(1, 31), st.sampled_from([3, 4, 5, 7, 8, 24, 25, 29])),
    hot_hours,
    hot_minutes,
)
def test_monthly_matches_reference(
    window: tuple[ZoneInfo, datetime, datetime], day: int | str, hour: int, minute: int
) -> None:
    zone, after, until = window
    table = {"monthly": {"day": day, "at": f"{hour:02d}:{minute:02d}"}, "timezone": zone.key}

    def matches(local: datetime) -> bool:
        on_day = is_last_day(local) if day == "last" else local.day == day
        return on_day and (local.hour, local.minute) == (hour, minute)

    check_against_reference(parse_schedule(table), matches, after, until)


@st.composite
def cron_fields(
    draw: st.DrawFn, low: int, high: int, top: int | None = None, names: tuple[str, ...] = (), hot: tuple[int, ...] = ()
) -> tuple[str, set[int] | None]:
    """One cron field as text and the values it means (None for a bare '*'); written values stay <= top."""
    if draw(st.booleans()):
        return "*", None
    top = high if top is None else top
    items: list[str] = []
    values: set[int] = set()
    for _ in range(draw(st.integers(1, 3))):
        use_hot = bool(hot) and draw(st.booleans())
        first = draw(st.sampled_from(hot) if use_hot else st.integers(low, top))
        last, step = draw(st.integers(first, top)), draw(st.integers(1, 12))
        label = names[first - low] if first - low < len(names) and draw(st.booleans()) else str(first)
        text, meaning = draw(
            st.sampled_from(
                [
                    (label, [first]),
                    (f"{label}-{last}", range(first, last + 1)),
                    (f"{first}-{last}/{step}", range(first, last + 1, step)),
                    (f"{first}/{step}", range(first, high + 1, step)),
                    (f"*/{step}", range(low, high + 1, step)),
                ]
            )
        )
        items.append(text)
        values.update(meaning)
    return ",".join(items), values


@st.composite
def cron_expressions(draw: st.DrawFn) -> tuple[str, Callable[[datetime], bool]]:
    """A five-field expression and an independent matcher for it (POSIX day-or-weekday rule)."""
    minute, minutes = draw(cron_fields(0, 59, hot=(0, 15, 30, 45)))
    hour, hours = draw(cron_fields(0, 23, hot=(1, 2, 3)))
    day, days = draw(cron_fields(1, 31, top=28, hot=(1, 3, 4, 5, 8, 25, 28)))  # 29-31: see monthly
    month, months = draw(cron_fields(1, 12, names=MONTH_NAMES, hot=(1, 2, 3, 4, 5, 10, 11, 12)))
    weekday, weekdays = draw(cron_fields(0, 7, names=CRON_DAY_NAMES, hot=(0, 6, 7)))
    weekdays = None if weekdays is None else {d % 7 for d in weekdays}  # 7 is Sunday too

    def matches(local: datetime) -> bool:
        by_day = days is not None and local.day in days
        by_weekday = weekdays is not None and cron_weekday(local) in weekdays
        day_ok = by_day or by_weekday or (days is None and weekdays is None)
        return (
            (minutes is None or local.minute in minutes)
            and (hours is None or local.hour in hours)
            and (months is None or local.month in months)
            and day_ok
        )

    return f"{minute} {hour} {day} {month} {weekday}", matches


@settings(PROPERTY, max_examples=200)
@given(windows(), cron_expressions())
def test_cron_matches_reference(
    window: tuple[ZoneInfo, datetime, datetime], cron: tuple[str, Callable[[datetime], bool]]
) -> None:
    zone, after, until = window
    expression, matches = cron
    check_against_reference(parse_schedule({"cron": expression, "timezone": zone.key}), matches, after, until)


@PROPERTY
@given(windows(), st.integers(-24 * 60, 24 * 60))
def test_at_matches_reference(window: tuple[ZoneInfo, datetime, datetime], shift_m: int) -> None:
    zone, after, _ = window
    local = (after.astimezone(zone) + shift_m * MINUTE).replace(tzinfo=None, second=0)
    schedule = parse_schedule({"at": local.isoformat(), "timezone": zone.key})
    check_against_reference(schedule, lambda wall: wall == local, after - timedelta(days=1), after + timedelta(days=1))


@PROPERTY
@given(
    windows(),
    st.integers(1, 7200),
    st.integers(-3 * 3600, 3 * 3600),
    st.booleans(),
    st.integers(0, 20_000),
)
def test_every_matches_reference(
    window: tuple[ZoneInfo, datetime, datetime],
    interval_s: int,
    anchor_shift_s: int,
    from_start: bool,
    span_s: int,
) -> None:
    zone, after, _ = window
    anchor = after.replace(microsecond=0) + anchor_shift_s * SECOND
    table: dict[str, object] = {"every": f"{interval_s}s", "timezone": zone.key}
    if from_start:
        table["start"] = anchor.isoformat()
    scheduled_at = after - timedelta(days=1) if from_start else anchor
    until = after + span_s * SECOND
    expected, instant = [], after.replace(microsecond=0)
    while instant < until:  # walk seconds: absolute time, so no wall clock involved
        instant += SECOND
        if after < instant <= until and instant >= anchor and (instant - anchor) // SECOND % interval_s == 0:
            expected.append(instant)
    assert parse_schedule(table).fires(after, until, scheduled_at, limit=100_000) == expected


# ---- properties of the other operations --------------------------------------------------------


@PROPERTY
@given(windows(), cron_expressions(), st.integers(1, 400))
def test_run_once_is_the_latest_of_run_all(
    window: tuple[ZoneInfo, datetime, datetime],
    cron: tuple[str, Callable[[datetime], bool]],
    last_fire_shift_m: int,
) -> None:
    zone, scheduled_at, now = window
    table = {"cron": cron[0], "timezone": zone.key}
    last_fire = scheduled_at + last_fire_shift_m * MINUTE
    every_missed = parse_schedule(table).fires(last_fire, now, scheduled_at, limit=10_000)
    run_all = misfired(parse_schedule({**table, "misfire": "run-all"}), last_fire, scheduled_at, now)
    assert run_all == every_missed[:RUN_ALL_LIMIT]
    assert misfired(parse_schedule(table), last_fire, scheduled_at, now) == every_missed[-1:]
    assert misfired(parse_schedule({**table, "misfire": "skip"}), last_fire, scheduled_at, now) == []


FIXED_RULES: list[dict[str, object]] = [
    {"every": "15m"},
    {"every": 90.5},
    {"hourly": ":05"},
    {"daily": "2:30"},
    {"weekly": {"days": ["FRI", "mon", "mon"], "at": "02:00"}},
    {"monthly": {"day": "last", "at": "23:59"}},
    {"monthly": {"day": 31, "at": "00:00"}},
    {"at": "2026-10-25T02:30:00"},
]
rules = st.one_of(st.sampled_from(FIXED_RULES), cron_expressions().map(lambda cron: {"cron": cron[0]}))
schedule_tables = st.builds(
    lambda rule, options: {**rule, **options},
    rules,
    st.fixed_dictionaries(
        {
            "timezone": zones,
            "misfire": st.sampled_from(["run-once", "run-all", "skip"]),
            "overlap": st.sampled_from(["skip", "queue", "allow"]),
        },
        optional={
            "start": st.sampled_from(["2026-03-29T02:30:00", "2026-01-01T00:00:00+05:00", "2026-06-01"]),
            "jitter": st.sampled_from(["30s", "1.5m", 7]),
        },
    ),
)


@PROPERTY
@given(schedule_tables)
def test_to_dict_round_trips_through_msgpack(table: dict[str, object]) -> None:
    schedule = parse_schedule(table)
    stored = msgpack.unpackb(msgpack.packb(schedule.to_dict()))
    assert Schedule.from_dict(stored) == schedule
    assert Schedule.from_dict(stored).to_dict() == schedule.to_dict()


@PROPERTY
@given(schedule_tables, windows())
def test_fires_are_strictly_increasing_and_due_within_the_jitter(
    table: dict[str, object], window: tuple[ZoneInfo, datetime, datetime]
) -> None:
    _, after, until = window
    schedule = parse_schedule(table)
    fires = schedule.fires(after, until, after, limit=500)
    assert all(a < b for a, b in pairwise(fires))
    for fire in fires:
        assert schedule.next_fire(fire - timedelta(microseconds=1), after) == fire
        due = schedule.due_at(fire, key="invoice-run")
        assert fire <= due <= fire + timedelta(seconds=schedule.jitter_s)
        assert due == schedule.due_at(fire, key="invoice-run")


# ---- examples at the 2026 transitions ----------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "after", "rule", "expected"),
    [
        # Berlin springs forward 2026-03-29 02:00 -> 03:00 (01:00Z): 02:30 does not exist.
        (
            "Europe/Berlin",
            "2026-03-28T12:00",
            {"daily": "02:30"},
            ["2026-03-29T01:00", "2026-03-30T00:30"],
        ),
        (
            "Europe/Berlin",
            "2026-03-28T23:30",
            {"hourly": ":05"},
            ["2026-03-29T00:05", "2026-03-29T01:00", "2026-03-29T01:05"],
        ),
        # Four nonexistent local times collapse onto one instant, which fires once.
        (
            "Europe/Berlin",
            "2026-03-28T12:00",
            {"cron": "*/15 2 * * *"},
            ["2026-03-29T01:00", "2026-03-30T00:00"],
        ),
        # Berlin falls back 2026-10-25 03:00 -> 02:00 (01:00Z): 02:30 happens twice, fires at the first.
        (
            "Europe/Berlin",
            "2026-10-24T12:00",
            {"daily": "02:30"},
            ["2026-10-25T00:30", "2026-10-26T01:30"],
        ),
        (
            "Europe/Berlin",
            "2026-10-24T23:00",
            {"hourly": ":30"},
            ["2026-10-24T23:30", "2026-10-25T00:30", "2026-10-25T02:30"],
        ),
        # New York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z); 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z).
        (
            "America/New_York",
            "2026-03-07T12:00",
            {"daily": "02:30"},
            ["2026-03-08T07:00", "2026-03-09T06:30"],
        ),
        (
            "America/New_York",
            "2026-10-31T12:00",
            {"daily": "01:30"},
            ["2026-11-01T05:30", "2026-11-02T06:30"],
        ),
        (
            "America/New_York",
            "2026-03-06T00:00",
            {"cron": "30 2 * * sun,mon"},
            ["2026-03-08T07:00", "2026-03-09T06:30"],
        ),
        # Lord Howe: 2026-10-04 02:00 -> 02:30 (+10:30 -> +11, 15:30Z); 2026-04-05 02:00 -> 01:30 (15:00Z).
        (
            "Australia/Lord_Howe",
            "2026-10-02T00:00",
            {"daily": "02:15"},
            ["2026-10-02T15:45", "2026-10-03T15:30", "2026-10-04T15:15"],
        ),
        (
            "Australia/Lord_Howe",
            "2026-04-03T00:00",
            {"daily": "01:45"},
            ["2026-04-03T14:45", "2026-04-04T14:45", "2026-04-05T15:15"],
        ),
        (
            "Australia/Lord_Howe",
            "2026-04-04T13:00",
            {"hourly": ":45"},
            ["2026-04-04T13:45", "2026-04-04T14:45", "2026-04-04T16:15"],
        ),
        # Kolkata has no DST: +05:30 all year.
        (
            "Asia/Kolkata",
            "2026-03-28T00:00",
            {"daily": "02:00"},
            ["2026-03-28T20:30", "2026-03-29T20:30"],
        ),
        (
            "Europe/Berlin",
            "2026-01-01T00:00",
            {"monthly": {"day": 31, "at": "02:00"}},
            ["2026-01-31T01:00", "2026-03-31T00:00", "2026-05-31T00:00"],
        ),
        (
            "Europe/Berlin",
            "2026-01-01T00:00",
            {"monthly": {"day": "last", "at": "02:00"}},
            ["2026-01-31T01:00", "2026-02-28T01:00", "2026-03-31T00:00"],
        ),
        (
            "UTC",
            "2026-01-01T00:00",
            {"cron": "0 0 29 2 *"},
            ["2028-02-29T00:00", "2032-02-29T00:00"],
        ),
    ],
)
def test_fires_at_2026_transitions(zone: str, after: str, rule: dict[str, object], expected: list[str]) -> None:
    schedule = parse_schedule({**rule, "timezone": zone})
    fires = schedule.fires(utc(after), utc("2033-01-01T00:00"), utc(after), limit=len(expected))
    assert fires == [utc(text) for text in expected]


def test_the_transitions_used_are_real() -> None:
    for name, instants in TRANSITIONS.items():
        zone = ZoneInfo(name)
        for instant in instants:
            offsets = {(instant + delta).astimezone(zone).utcoffset() for delta in (-SECOND, timedelta(0))}
            assert len(offsets) == (1 if name == "Asia/Kolkata" else 2)


# ---- every, at, start and end ------------------------------------------------------------------


def test_every_counts_from_start_and_fires_at_start_itself() -> None:
    schedule = parse_schedule({"every": "15m", "start": "2026-03-29T01:00:00", "timezone": "Europe/Berlin"})
    assert schedule.start == utc("2026-03-29T00:00")
    fires = schedule.fires(utc("2026-03-28T00:00"), utc("2026-03-29T01:30"), utc("2026-03-01T00:00"), 10)
    assert fires == [utc("2026-03-29T00:00") + n * timedelta(minutes=15) for n in range(7)]  # DST-blind


def test_every_without_start_counts_from_scheduled_at() -> None:
    schedule = parse_schedule({"every": "1h30m"})
    scheduled_at = utc("2026-05-01T10:07:13")
    assert schedule.next_fire(scheduled_at, scheduled_at) == scheduled_at + timedelta(minutes=90)
    assert schedule.next_fire(scheduled_at - SECOND, scheduled_at) == scheduled_at  # k = 0 counts


def test_at_fires_once_and_then_the_schedule_is_over() -> None:
    schedule = parse_schedule({"at": "2026-12-01T02:00:00", "timezone": "Europe/Berlin"})
    assert schedule.rule == At(utc("2026-12-01T01:00"))
    assert schedule.next_fire(utc("2026-11-01T00:00"), utc("2026-11-01T00:00")) == utc("2026-12-01T01:00")
    assert schedule.next_fire(utc("2026-12-01T01:00"), utc("2026-11-01T00:00")) is None


def test_at_with_an_offset_or_seconds_is_taken_as_written() -> None:
    schedule = parse_schedule({"at": "2026-12-01T02:00:30.5+05:30", "timezone": "Europe/Berlin"})
    assert schedule.rule == At(utc("2026-11-30T20:30:30.5"))


def test_start_is_inclusive_and_end_exclusive() -> None:
    schedule = parse_schedule(
        {
            "daily": "02:00",
            "start": "2026-06-01T02:00:00",
            "end": "2026-06-03T02:00:00",
            "timezone": "Asia/Kolkata",
        }
    )
    fires = schedule.fires(utc("2026-01-01T00:00"), utc("2027-01-01T00:00"), utc("2026-01-01T00:00"), 10)
    assert fires == [utc("2026-05-31T20:30"), utc("2026-06-01T20:30")]
    assert schedule.next_fire(utc("2026-06-01T20:30"), utc("2026-01-01T00:00")) is None


def test_naive_start_in_a_gap_or_a_fold_follows_the_dst_rules() -> None:
    gap = parse_schedule({"hourly": ":00", "start": "2026-03-29T02:30:00", "timezone": "Europe/Berlin"})
    fold = parse_schedule({"hourly": ":00", "start": "2026-10-25T02:30:00", "timezone": "Europe/Berlin"})
    assert (gap.start, fold.start) == (utc("2026-03-29T01:00"), utc("2026-10-25T00:30"))
    assert parse_schedule({"daily": "02:00", "start": "2026-06-01"}).start == utc("2026-06-01T00:00")


def test_rules_and_defaults_as_parsed() -> None:
    assert parse_schedule({"weekly": {"days": ["FRI", "mon", "fri"], "at": "2:00"}}) == Schedule(
        Weekly(("mon", "fri"), 2, 0)
    )
    schedule = parse_schedule({"cron": " 0  2 * *   MON-FRI "})
    assert (schedule.rule, schedule.timezone, schedule.start, schedule.end) == (
        Cron("0 2 * * MON-FRI"),
        "UTC",
        None,
        None,
    )
    assert (schedule.misfire, schedule.overlap, schedule.jitter_s) == ("run-once", "skip", 0.0)
    assert parse_schedule({"every": "15m"}).rule == Every(900.0)
    assert parse_schedule({"hourly": ":05"}).rule == Hourly(5)
    assert parse_schedule({"daily": "23:59"}).rule == Daily(23, 59)
    assert parse_schedule({"monthly": {"day": "last", "at": "02:00"}}).rule == Monthly("last", 2, 0)


def test_cron_restricting_both_day_fields_fires_on_either() -> None:
    schedule = parse_schedule({"cron": "0 0 1 * fri"})
    fires = schedule.fires(utc("2026-02-28T00:00"), utc("2026-03-31T00:00"), utc("2026-02-28T00:00"), 10)
    assert [fire.day for fire in fires] == [1, 6, 13, 20, 27]  # the 1st is a Sunday
    weekdays_only = parse_schedule({"cron": "0 0 * * 7"})
    sundays = weekdays_only.fires(utc("2026-03-01T00:00"), utc("2026-03-16T00:00"), utc("2026-03-01T00:00"), 10)
    assert [fire.day for fire in sundays] == [8, 15]


@pytest.mark.parametrize(
    ("expression", "minutes"),
    [
        ("5/15 * * * *", [5, 20, 35, 50]),  # a start with a step runs to the end of the field
        ("10-10 * * * *", [10]),  # an equal range is that one value, not the whole cycle
        ("0-30/10,45 * * * *", [0, 10, 20, 30, 45]),
    ],
)
def test_cron_minute_lists(expression: str, minutes: list[int]) -> None:
    after = utc("2026-04-30T23:59")
    fires = parse_schedule({"cron": expression}).fires(after, after + timedelta(hours=1), after, 100)
    assert [fire.minute for fire in fires if fire.hour == 0] == minutes


def test_due_at_adds_a_deterministic_jitter() -> None:
    fire = utc("2026-05-01T02:00")
    assert parse_schedule({"daily": "02:00"}).due_at(fire, key="a") == fire
    schedule = parse_schedule({"daily": "02:00", "jitter": "30s"})
    dues = {schedule.due_at(fire, key=f"job-{n}") for n in range(50)}
    assert len(dues) == 50
    assert all(fire <= due < fire + timedelta(seconds=30) for due in dues)


def test_every_example_in_the_docs_parses() -> None:
    page = (Path(__file__).parents[1] / "docs" / "schedules.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", page, flags=re.DOTALL)
    assert len(blocks) >= 10
    for block in blocks:
        parse_schedule(tomllib.loads(block)["schedule"])


# ---- misfires ----------------------------------------------------------------------------------


def test_misfire_policies() -> None:
    scheduled_at, now = utc("2026-05-01T00:00"), utc("2026-05-04T01:00")
    table = {"daily": "02:00", "timezone": "Europe/Berlin"}
    all_missed = [utc("2026-05-01T00:00") + timedelta(days=n) for n in range(1, 4)]
    assert misfired(parse_schedule({**table, "misfire": "run-all"}), None, scheduled_at, now) == all_missed
    assert misfired(parse_schedule(table), None, scheduled_at, now) == all_missed[-1:]
    assert misfired(parse_schedule({**table, "misfire": "skip"}), None, scheduled_at, now) == []
    assert misfired(parse_schedule(table), all_missed[-1], scheduled_at, now) == []
    assert misfired(parse_schedule(table), None, scheduled_at, all_missed[0]) == all_missed[:1]  # at now


def test_run_all_is_capped_and_resumes_from_the_last_fire() -> None:
    schedule = parse_schedule({"every": "1m", "misfire": "run-all"})
    scheduled_at, now = utc("2026-05-01T00:00"), utc("2026-05-03T00:00")
    first = misfired(schedule, None, scheduled_at, now)
    assert len(first) == RUN_ALL_LIMIT
    assert first[0] == scheduled_at + MINUTE
    assert misfired(schedule, first[-1], scheduled_at, now)[0] == first[-1] + MINUTE


def test_run_once_after_a_long_outage_is_cheap() -> None:
    schedule = parse_schedule({"cron": "* * * * *"})
    scheduled_at = utc("2026-01-01T00:00")
    began = wall_clock.perf_counter()
    assert misfired(schedule, None, scheduled_at, utc("2027-01-01T00:00:30")) == [utc("2027-01-01T00:00")]
    assert wall_clock.perf_counter() - began < 0.5


def test_next_fire_does_not_walk_minutes() -> None:
    """A hot-path guard: rare fires a year or more away cost no more than near ones."""
    schedules = [parse_schedule({"cron": f"{n % 60} 3 29 2 *", "timezone": "Europe/Berlin"}) for n in range(2000)]
    after = utc("2028-03-01T00:00")
    began = wall_clock.perf_counter()
    assert all(s.next_fire(after, after) is not None for s in schedules)
    assert wall_clock.perf_counter() - began < 2.0


def test_next_fire_needs_an_aware_time() -> None:
    schedule, naive = parse_schedule({"daily": "02:00"}), datetime.fromisoformat("2026-01-01T00:00")
    with pytest.raises(ValueError, match="aware"):
        schedule.next_fire(naive, utc("2026-01-01T00:00"))


# ---- parse errors: one line, naming the field --------------------------------------------------


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ({}, "schedule: exactly one of at, every, hourly, daily, weekly, monthly, cron"),
        ({"daily": "02:00", "hourly": ":05"}, "schedule: exactly one of"),
        ({"daily": "02:00", "timzone": "UTC"}, "schedule: unknown key 'timzone'"),
        ({"at": "tomorrow"}, "schedule.at:"),
        ({"at": 5}, "schedule.at:"),
        ({"every": "0.5s"}, "schedule.every:"),
        ({"every": "soon"}, "schedule.every:"),
        ({"every": -5}, "schedule.every:"),
        ({"hourly": "5"}, "schedule.hourly:"),
        ({"hourly": ":60"}, "schedule.hourly:"),
        ({"daily": "24:00"}, "schedule.daily:"),
        ({"daily": "2am"}, "schedule.daily:"),
        ({"daily": 2}, "schedule.daily:"),
        ({"weekly": "mon"}, "schedule.weekly:"),
        (
            {"weekly": {"days": ["mon"], "at": "02:00", "every": 2}},
            "schedule.weekly: unknown key 'every'",
        ),
        ({"weekly": {"days": [], "at": "02:00"}}, "schedule.weekly.days:"),
        ({"weekly": {"days": ["mon", "funday"], "at": "02:00"}}, "schedule.weekly.days:"),
        ({"weekly": {"days": "mon", "at": "02:00"}}, "schedule.weekly.days:"),
        ({"weekly": {"days": ["mon"]}}, "schedule.weekly.at:"),
        ({"monthly": {"day": 0, "at": "02:00"}}, "schedule.monthly.day:"),
        ({"monthly": {"day": 32, "at": "02:00"}}, "schedule.monthly.day:"),
        ({"monthly": {"day": "first", "at": "02:00"}}, "schedule.monthly.day:"),
        ({"monthly": {"day": True, "at": "02:00"}}, "schedule.monthly.day:"),
        ({"monthly": {"day": 1, "at": "2:0"}}, "schedule.monthly.at:"),
        ({"cron": "0 2 * *"}, "schedule.cron:"),
        ({"cron": "0 0 2 * * *"}, "schedule.cron:"),
        ({"cron": "0 24 * * *"}, "schedule.cron: bad hour field '24'"),
        ({"cron": "0 2 L * *"}, "schedule.cron:"),
        ({"cron": "0 2 15W * *"}, "schedule.cron:"),
        ({"cron": "0 2 * * 1#2"}, "schedule.cron:"),
        ({"cron": "H 2 * * *"}, "schedule.cron:"),
        ({"cron": "0 2 30 2 *"}, "schedule.cron:"),
        ({"cron": "0 2 * * fun"}, "schedule.cron: bad weekday field 'fun'"),
        ({"cron": "0 2 * * sat-sun"}, "schedule.cron: bad weekday field"),  # ranges go upwards
        ({"cron": "0 2 * * monday"}, "schedule.cron: bad weekday field"),
        ({"cron": "0 2 * 0 *"}, "schedule.cron: bad month field"),
        ({"cron": "0 2 *-3 * *"}, "schedule.cron: bad day field"),
        ({"cron": "@daily"}, "schedule.cron: expected 5 fields"),
        ({"cron": "0 2 31 4,6,9,11 *"}, "schedule.cron: day 31 never comes"),
        ({"cron": "*/0 * * * *"}, "schedule.cron:"),
        ({"cron": 5}, "schedule.cron:"),
        ({"daily": "02:00", "timezone": "Mars/Olympus"}, "schedule.timezone:"),
        ({"daily": "02:00", "timezone": "Europe"}, "schedule.timezone:"),
        ({"daily": "02:00", "timezone": "../etc"}, "schedule.timezone:"),
        ({"daily": "02:00", "timezone": 1}, "schedule.timezone:"),
        ({"daily": "02:00", "start": "yesterday"}, "schedule.start:"),
        ({"daily": "02:00", "end": 2026}, "schedule.end:"),
        (
            {"daily": "02:00", "start": "2026-02-01", "end": "2026-01-01"},
            "schedule.end: must be after",
        ),
        ({"daily": "02:00", "start": "2026-02-01", "end": "2026-02-01T00:00:00"}, "schedule.end:"),
        ({"daily": "02:00", "misfire": "sometimes"}, "schedule.misfire:"),
        ({"daily": "02:00", "overlap": "never"}, "schedule.overlap:"),
        ({"daily": "02:00", "overlap": ["skip"]}, "schedule.overlap:"),
        ({"daily": "02:00", "jitter": "lots"}, "schedule.jitter:"),
        ({"daily": "02:00", "jitter": "0s"}, "schedule.jitter:"),
    ],
)
def test_parse_errors_name_the_field(table: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidJob) as raised:
        parse_schedule(table)
    message = str(raised.value)
    assert message.startswith(field)
    assert "\n" not in message
