"""`actorbatch job next | schedule | unschedule | reschedule` and `job add --replace` of a scheduled job, through
typer's CliRunner; a real server process where runs must happen."""

import json
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from typer.testing import CliRunner, Result

import actorbatch
from actorbatch.cli.app import app
from actorbatch.domain.events import job_id
from actorbatch.domain.runs import RunCreated
from tests.processes import start_server, stop, wait_for

runner = CliRunner()

BERLIN = """
name = "berlin"
[schedule]
daily = "02:30"
timezone = "Europe/Berlin"
[[tasks]]
name = "t"
run = "actorbatch.examples:noop"
"""
HOURLY = """
name = "hourly"
[schedule]
hourly = ":05"
timezone = "Europe/Berlin"
[[tasks]]
name = "t"
run = "actorbatch.examples:noop"
"""
NEW_YORK = """
name = "ny"
[schedule]
cron = "0 9 * * mon-fri"
timezone = "America/New_York"
[[tasks]]
name = "t"
run = "actorbatch.examples:noop"
"""
ON_DEMAND = """
name = "manual"
[[tasks]]
name = "t"
run = "actorbatch.examples:noop"
"""


def every(seconds: int, name: str = "tick") -> str:
    return (f'name = "{name}"\n[schedule]\nevery = "{seconds}s"\n'
            '[[tasks]]\nname = "t"\nrun = "actorbatch.examples:noop"\n')


def cli(url: str, *args: str) -> Result:
    return runner.invoke(app, ["--db", url, *args])


def ok(url: str, *args: str) -> Result:
    result = cli(url, *args)
    assert result.exit_code == 0, (args, result.exit_code, result.stdout, result.stderr, result.exception)
    return result


def js(url: str, *args: str) -> Any:
    return json.loads(ok(url, *args, "--json").stdout)


def fails(url: str, *args: str, code: int = 1) -> str:
    result = cli(url, *args)
    assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
    if code == 1:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def add(url: str, tmp_path: Path, text: str, *options: str) -> None:
    path = tmp_path / f"job-{abs(hash(text))}.toml"
    path.write_text(text, encoding="utf-8")
    ok(url, "job", "add", str(path), *options)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def job_changes(url: str, name: str) -> list[Any]:
    with actorbatch.connect(url) as client:
        return client.store.events(job_id(name))


# ---- job next ----------------------------------------------------------------------------------

def test_job_next_lists_a_berlin_daily_job_across_the_spring_forward_night(db_url: str, tmp_path: Path) -> None:
    add(db_url, tmp_path, BERLIN)
    fires = js(db_url, "job", "next", "berlin", "--count", "3", "--from", "2026-03-28T00:00:00")
    assert fires == [
        {"utc": "2026-03-28T01:30:00Z", "local": "2026-03-28T02:30:00+01:00"},
        {"utc": "2026-03-29T01:00:00Z", "local": "2026-03-29T03:00:00+02:00"},  # 02:30 does not exist: the jump
        {"utc": "2026-03-30T00:30:00Z", "local": "2026-03-30T02:30:00+02:00"},
    ]
    # --from with an offset is taken as written; a fire exactly at --from is listed
    assert js(db_url, "job", "next", "berlin", "--count", "1", "--from", "2026-03-28T01:30:00Z") == fires[:1]


def test_job_next_across_the_fall_back_night_fires_once_at_the_first_occurrence(db_url: str,
                                                                                 tmp_path: Path) -> None:
    add(db_url, tmp_path, BERLIN)
    add(db_url, tmp_path, HOURLY)
    assert js(db_url, "job", "next", "berlin", "--count", "2", "--from", "2026-10-24T12:00:00") == [
        {"utc": "2026-10-25T00:30:00Z", "local": "2026-10-25T02:30:00+02:00"},
        {"utc": "2026-10-26T01:30:00Z", "local": "2026-10-26T02:30:00+01:00"},
    ]
    assert [f["local"] for f in js(db_url, "job", "next", "hourly", "--count", "4", "--from",
                                   "2026-03-29T00:30:00")] == [
        "2026-03-29T01:05:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:05:00+02:00",
        "2026-03-29T04:05:00+02:00"]
    assert [f["local"] for f in js(db_url, "job", "next", "hourly", "--count", "3", "--from",
                                   "2026-10-25T01:30:00")] == [
        "2026-10-25T02:05:00+02:00", "2026-10-25T03:05:00+01:00", "2026-10-25T04:05:00+01:00"]  # no 02:05 CET


def test_job_next_defaults_to_five_fire_times_from_now_with_the_zones_offset(db_url: str, tmp_path: Path) -> None:
    add(db_url, tmp_path, NEW_YORK)
    before = datetime.now(UTC)
    fires = js(db_url, "job", "next", "ny")
    assert len(fires) == 5
    zone = ZoneInfo("America/New_York")
    instants = [when(f["utc"]) for f in fires]
    assert instants == sorted(instants) and instants[0] >= before
    for fire, instant in zip(fires, instants, strict=True):
        assert fire["utc"].endswith("Z")
        local = datetime.fromisoformat(fire["local"])
        assert local == instant and local.utcoffset() == instant.astimezone(zone).utcoffset()
        assert (local.hour, local.minute, local.weekday() < 5) == (9, 0, True)
    table = ok(db_url, "job", "next", "ny", "--count", "2").stdout
    assert "utc" in table and "local" in table and fires[0]["local"] in table


def test_job_next_errors(db_url: str, tmp_path: Path) -> None:
    add(db_url, tmp_path, ON_DEMAND)
    add(db_url, tmp_path, BERLIN)
    assert "no job named 'nope'" in fails(db_url, "job", "next", "nope")
    assert "has no [schedule]" in fails(db_url, "job", "next", "manual")
    assert "--from: expected ISO 8601" in fails(db_url, "job", "next", "berlin", "--from", "next tuesday", code=2)
    fails(db_url, "job", "next", "berlin", "--count", "0", code=2)
    once = 'name = "once"\n[schedule]\nat = "2020-01-01T00:00:00Z"\n[[tasks]]\nname = "t"\nrun = "m:f"\n'
    add(db_url, tmp_path, once)
    assert js(db_url, "job", "next", "once") == []  # a run-later time in the past: nothing left
    assert "no more fire times" in ok(db_url, "job", "next", "once").stdout


def test_job_next_of_an_every_job_counts_from_when_it_was_scheduled(db_url: str, tmp_path: Path) -> None:
    add(db_url, tmp_path, every(10))
    scheduled = job_changes(db_url, "tick")[-1].timestamp
    fires = [when(f["utc"]) for f in js(db_url, "job", "next", "tick", "--count", "3")]
    assert fires == [scheduled + timedelta(seconds=10 * k) for k in (1, 2, 3)]


def test_job_next_from_before_the_schedule_began_lists_only_real_fire_times(db_url: str, tmp_path: Path) -> None:
    add(db_url, tmp_path, every(10))
    scheduled = job_changes(db_url, "tick")[-1].timestamp
    fires = js(db_url, "job", "next", "tick", "--count", "2", "--from", "2020-01-01T00:00:00Z")
    assert [when(f["utc"]) for f in fires] == [scheduled + timedelta(seconds=10), scheduled + timedelta(seconds=20)]


# ---- schedule / unschedule / reschedule --------------------------------------------------------

def listed(url: str, name: str) -> dict[str, Any]:
    return next(j for j in js(url, "job", "list") if j["name"] == name)


def test_schedule_unschedule_and_reschedule(db_url: str, tmp_path: Path) -> None:
    add(db_url, tmp_path, every(60))
    add(db_url, tmp_path, ON_DEMAND)
    first = job_changes(db_url, "tick")[-1].timestamp
    assert listed(db_url, "tick")["scheduled"] is True
    assert when(listed(db_url, "tick")["next_fire"]) == first + timedelta(seconds=60)

    assert ok(db_url, "job", "unschedule", "tick").stdout.strip() == "unscheduled job tick"
    assert listed(db_url, "tick") | {"tasks": 1} == {"name": "tick", "group": "default", "scheduled": False,
                                                      "next_fire": None, "tasks": 1}
    assert ok(db_url, "job", "unschedule", "tick").stdout.strip() == "job tick is not scheduled (nothing to do)"
    assert listed(db_url, "tick")["scheduled"] is False

    time.sleep(0.01)
    assert ok(db_url, "job", "schedule", "tick").stdout.strip() == "scheduled job tick"
    resumed = job_changes(db_url, "tick")[-1].timestamp
    assert resumed > first
    assert when(listed(db_url, "tick")["next_fire"]) == resumed + timedelta(seconds=60)  # counted from `schedule`
    again = job_changes(db_url, "tick")
    assert "is already scheduled (nothing to do" in ok(db_url, "job", "schedule", "tick").stdout
    assert len(job_changes(db_url, "tick")) == len(again)  # nothing written

    time.sleep(0.01)
    assert ok(db_url, "job", "reschedule", "tick").stdout.strip() == "rescheduled job tick"
    restarted = job_changes(db_url, "tick")[-1].timestamp
    assert restarted > resumed
    assert when(js(db_url, "job", "next", "tick", "--count", "1")[0]["utc"]) == restarted + timedelta(seconds=60)

    assert "has no [schedule]" in fails(db_url, "job", "schedule", "manual")
    assert "no job named" in fails(db_url, "job", "unschedule", "nope")
    show = js(db_url, "job", "show", "tick")
    assert show["skipped_fires"] == 0 and show["last_skip"] is None and show["scheduled"] is True


# ---- job add --replace of a scheduled job, with a server running -------------------------------

def test_job_add_replace_changes_future_fire_times_and_keeps_the_history(db_url: str, tmp_path: Path) -> None:
    add(db_url, tmp_path, every(1))
    added = job_changes(db_url, "tick")[-1].timestamp
    server = start_server(db_url, "cli-server", threads=2)
    client = actorbatch.connect(db_url)

    def fire_times() -> list[datetime]:
        return sorted(e.fire_time for _, e in client.store.read(0, 10**6)
                      if isinstance(e, RunCreated) and e.fire_time is not None)

    try:
        wait_for(lambda: len(fire_times()) >= 3, 20, "three runs of the every-1s job")
        latest = fire_times()[-1]
        wait_for(lambda: fire_times()[-1] > latest, 5, "a fresh fire")  # replace right after a fire
        old = js(db_url, "run", "list", "--job", "tick", "--limit", "1000")
        assert "already exists" in fails(db_url, "job", "add", str(next(tmp_path.glob("job-*.toml"))))
        add(db_url, tmp_path, every(2), "--replace")
        replaced = job_changes(db_url, "tick")[-1].timestamp
        upcoming = [when(f["utc"]) for f in js(db_url, "job", "next", "tick", "--count", "3")]
        assert upcoming[0] > replaced and all((t - replaced) % timedelta(seconds=2) == timedelta(0)
                                               for t in upcoming)
        assert [b - a for a, b in pairwise(upcoming)] == [timedelta(seconds=2)] * 2
        wait_for(lambda: len([t for t in fire_times() if t > replaced]) >= 2, 10, "two fires of the new rule")
    finally:
        assert stop(server) == 0
        client.close()
    times = fire_times_of(db_url)
    before = [t for t in times if t <= replaced]
    after = [t for t in times if t > replaced]
    first = (before[0] - added) // timedelta(seconds=1)  # the server started a moment after `job add`
    assert before == [added + timedelta(seconds=k) for k in range(first, first + len(before))]
    assert after == [replaced + timedelta(seconds=2 * k) for k in range(1, len(after) + 1)]
    now_listed = {r["id"] for r in js(db_url, "run", "list", "--job", "tick", "--limit", "1000")}
    assert {r["id"] for r in old} <= now_listed  # the old runs stay
    assert js(db_url, "job", "show", "tick")["definition"]["schedule"]["every"] == 2.0


def fire_times_of(url: str) -> list[datetime]:
    with actorbatch.connect(url) as client:
        return sorted(e.fire_time for _, e in client.store.read(0, 10**6)
                      if isinstance(e, RunCreated) and e.fire_time is not None)
