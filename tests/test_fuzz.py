"""Trying to break it: hostile job tables, job files, Python definitions, run params, run-later times and server
options, drawn by hypothesis. Every input is either refused with one line and no write, or accepted, and then every
listing, `audit verify`, `projections rebuild` and, at the end, a fresh server still work.

Deterministic (derandomized, no example database) and bounded, so that it runs the same in CI every time."""

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import actorbatch
from actorbatch.cli.app import app
from actorbatch.domain.events import server_id
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.jobs import JobDefinition, TaskSpec
from actorbatch.domain.servers import Server, parse_window
from actorbatch.errors import InvalidJob
from tests.test_validation import nested, readers_work

FUZZ = settings(max_examples=40, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
runner = CliRunner()
NAMES = ("f1", "f2", "f3")  # a few job names, replaced again and again: the store stays small, readers stay fast

# ---- hostile values ----

EDGE_NUMBERS = st.sampled_from([0, -0.0, -1, 0.5, 1, 1e-9, 1e15, 1e12, 2**63 - 1, 2**63, 2**64 - 1, 2**64,
                                -(2**63) - 1, 10**400, math.nan, math.inf, -math.inf, 31_622_400, 315_360_000])
EDGE_TEXT = st.sampled_from(["", " ", "abc\n", "a b", "-x", "\x00", "\ud800", "x" * 129, "é", "0s", "0", "1ms",
                             "366d", "367d", "3650d", "3000000d", "1e15", "nan", "inf", "-5s", "1h30m", "m:f", "m:f\n",
                             "02:00", ":05", "0 2 * * mon-fri", "0 0 31 2 *", "Europe/Berlin", "Mars/Olympus",
                             "America", "1970-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9000-01-01T00:00:00Z",
                             "9999-12-31T23:00:00-05:00", "succeeded", "ended", "weird", "urgent", "run-all"])
TIMES = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                     timezones=st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]))
IN_RANGE = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(8999, 12, 30), timezones=st.just(UTC))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), EDGE_NUMBERS, st.floats(), st.text(max_size=12),
                    EDGE_TEXT, TIMES, st.datetimes())
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                      max_leaves=8)
DEEP = st.integers(min_value=25, max_value=40).map(nested)


def hostile(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly (three times in four) a valid value, else an edge case or anything at all."""
    bad = st.one_of(EDGE_NUMBERS, EDGE_TEXT, VALUES)
    return st.integers(0, 3).flatmap(lambda n: bad if n == 3 else good)


TASK_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "params": hostile(st.dictionaries(st.text(max_size=5), VALUES, max_size=3) | DEEP.map(lambda d: {"p": d})),
    "retries": hostile(st.integers(0, 1000)),
    "retry_delay": hostile(st.sampled_from(["0s", "10s", "366d", 0, 0.001])),
    "timeout": hostile(st.sampled_from(["1s", "10m", "366d", 0.5])),
    "lost_retries": hostile(st.integers(0, 1000)),
    "ignore_failure": hostile(st.booleans()),
    "when": hostile(st.sampled_from(["all", "any"])),
    "after": hostile(st.dictionaries(st.sampled_from(["a", "zzz"]), st.sampled_from(["ended", "weird"]), max_size=1)),
    "run": hostile(st.just("actorbatch.examples:noop")),
    "command": hostile(st.lists(st.text(max_size=8), min_size=1, max_size=3)),
    "name": hostile(st.sampled_from(["b", "t" * 128])),
    "depends_on": VALUES,
}
RULES: dict[str, st.SearchStrategy[Any]] = {
    "every": hostile(st.sampled_from(["1s", "15m", "3650d", 1.0])),
    "daily": hostile(st.just("02:00")),
    "hourly": hostile(st.just(":05")),
    "cron": hostile(st.sampled_from(["*/5 * * * *", "0 0 29 2 *"])),
    "at": hostile(IN_RANGE),
    "weekly": hostile(st.just({"days": ["mon"], "at": "02:00"})),
    "monthly": hostile(st.just({"day": "last", "at": "02:00"})),
}
SCHEDULE_SETTINGS: dict[str, st.SearchStrategy[Any]] = {
    "timezone": hostile(st.sampled_from(["UTC", "Europe/Berlin", "Pacific/Kiritimati"])),
    "start": hostile(IN_RANGE),
    "end": hostile(IN_RANGE),
    "jitter": hostile(st.sampled_from(["1s", "366d"])),
    "misfire": hostile(st.sampled_from(["run-once", "run-all", "skip"])),
    "overlap": hostile(st.sampled_from(["skip", "queue", "allow"])),
    "every": RULES["every"],  # a second rule, now and then
    "wobble": VALUES,
}
SCHEDULES = st.tuples(st.sampled_from(sorted(RULES)).flatmap(lambda rule: st.fixed_dictionaries({rule: RULES[rule]})),
                      st.integers(0, 3).flatmap(lambda most: overrides(SCHEDULE_SETTINGS, most))
                      ).map(lambda pair: {**pair[1], **pair[0]})
JOB_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "description": hostile(st.text(max_size=20)),
    "group": hostile(st.sampled_from(["default", "g" * 128])),
    "priority": hostile(st.sampled_from(["low", "critical"])),
    "alerts": hostile(st.sampled_from(["always", "never"])),
    "retry": VALUES,
}


def overrides(fields: dict[str, st.SearchStrategy[Any]], most: int) -> st.SearchStrategy[dict[str, Any]]:
    """A few of `fields`, each with a value from its strategy."""
    keys = st.lists(st.sampled_from(sorted(fields)), max_size=most, unique=True)
    return keys.flatmap(lambda chosen: st.fixed_dictionaries({key: fields[key] for key in chosen}))


@st.composite
def job_tables(draw: st.DrawFn) -> dict[str, Any]:
    """A job file's table: a valid one-or-two-task job, with some keys given hostile values."""
    first = {"name": "a", "run": "actorbatch.examples:noop", **draw(overrides(TASK_FIELDS, 2))}
    if "command" in first:
        del first["run"]
    tasks = [first]
    if draw(st.booleans()):
        tasks.append({"name": "b", "command": ["true"], "after": {"a": "ended"}, **draw(overrides(TASK_FIELDS, 1))})
    table: dict[str, Any] = {"name": draw(hostile(st.sampled_from(NAMES))), "tasks": tasks,
                             **draw(overrides(JOB_FIELDS, 2))}
    if draw(st.booleans()):
        table["schedule"] = draw(SCHEDULES)
    return table


# ---- the store and the two outcomes ----

@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[actorbatch.Client]:
    """One store for the whole module: what the fuzzing leaves in it, the fresh server at the end must handle."""
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'actorbatch.db'}"
    actorbatch.init(url)
    with actorbatch.connect(url, user="fuzzer") as client:
        yield client


def refused_or_readable(client: actorbatch.Client, attempt: Callable[[], object]) -> bool:
    """Either a one-line InvalidJob and nothing written, or accepted and every reader works. True if accepted."""
    before = client.store.head()
    try:
        attempt()
    except InvalidJob as error:
        message = str(error)
    else:
        event("accepted")  # `pytest --hypothesis-show-statistics` shows the mix
        readers_work(client, rebuild=False)
        return True
    event("refused")
    assert message and "\n" not in message, message
    assert client.store.head() == before
    return False


def cli_refused_or_readable(client: actorbatch.Client, args: list[str], refused_code: int) -> bool:
    """The same through the command line: exit 0, or `refused_code` with one line and nothing written."""
    before = client.store.head()
    result = runner.invoke(app, ["--db", client.url, *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    event(f"exit {result.exit_code}")
    if result.exit_code == 0:
        readers_work(client, rebuild=False)
        return True
    assert result.exit_code == refused_code, (args, result.exit_code, result.stderr)
    lines = result.stderr.splitlines()
    typer_usage = refused_code == 2 and "Invalid value for" in result.stderr  # a value typer itself cannot parse
    assert typer_usage or (len(lines) == 1 and lines[0].startswith("error: ")), (args, result.stderr)
    assert "Traceback" not in result.stderr
    assert client.store.head() == before
    return False


# ---- the fuzzing ----

@FUZZ
@given(table=job_tables())
def test_job_tables(store: actorbatch.Client, table: dict[str, Any]) -> None:
    refused_or_readable(store, lambda: store.add_jobs([parse_job(table)], replace=True))


def toml_literal(value: Any) -> str:
    """A value as TOML writes it (what TOML cannot say, such as a NUL or a huge integer, becomes a TOML error)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_literal, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_literal(v)}" for k, v in value.items()) + "}"
    return '"null"'


@FUZZ
@given(pair=st.sampled_from(sorted(set(TASK_FIELDS) - {"name"})).flatmap(
    lambda key: st.tuples(st.just(key), TASK_FIELDS[key])))
def test_job_files(store: actorbatch.Client, tmp_path_factory: pytest.TempPathFactory, pair: tuple[str, Any]) -> None:
    key, value = pair
    path: Path = tmp_path_factory.mktemp("file") / "job.toml"
    lines = 'name = "f1"\n[[tasks]]\nname = "a"\nrun = "actorbatch.examples:noop"\n'
    if key in ("run", "command"):
        lines = lines.replace('run = "actorbatch.examples:noop"\n', "")
    path.write_text(f"{lines}{key} = {toml_literal(value)}\n", encoding="utf-8")
    cli_refused_or_readable(store, ["job", "add", "--replace", str(path)], refused_code=1)


PYTHON_TASK_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": hostile(st.just("t")), "run": hostile(st.just("m:f")), "after": hostile(st.just(())),
    "retry_delay_s": hostile(st.just(0.0)), "timeout_s": hostile(st.just(31_622_400.0)),
    "params": hostile(st.dictionaries(st.text(max_size=5), VALUES, max_size=3)), "retries": hostile(st.just(1000)),
}
PYTHON_JOB_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": hostile(st.sampled_from(NAMES)), "priority": hostile(st.just("low")),
    "description": hostile(st.text(max_size=20)), "schedule": SCHEDULES,
}


@FUZZ
@given(task=overrides(PYTHON_TASK_FIELDS, 2), job=overrides(PYTHON_JOB_FIELDS, 2))
def test_python_definitions(store: actorbatch.Client, task: dict[str, Any], job: dict[str, Any]) -> None:
    definition = JobDefinition(**{"name": "f1", "tasks": (TaskSpec(**{"name": "t", "run": "m:f", **task}),), **job})
    refused_or_readable(store, lambda: store.add_jobs([definition], replace=True))


@pytest.fixture(scope="module")
def runnable(store: actorbatch.Client) -> str:
    store.add_jobs([parse_job({"name": "target", "tasks": [{"name": "a", "run": "actorbatch.examples:noop"}]})],
                   replace=True)
    return "target"


@FUZZ
@given(params=st.one_of(st.dictionaries(st.text(max_size=6), VALUES, max_size=4), VALUES, DEEP.map(lambda d: {"d": d})),
       at=st.none() | IN_RANGE | hostile(TIMES))
def test_run_params_and_times(store: actorbatch.Client, runnable: str, params: Any, at: Any) -> None:
    refused_or_readable(store, lambda: store.run_job(runnable, params=params, at=at))


def param_text(pair: tuple[str, Any]) -> str:
    return f"{pair[0]}={json.dumps(pair[1], default=str)}"


@FUZZ
@given(at=st.none() | hostile(IN_RANGE.map(datetime.isoformat)) | TIMES.map(datetime.isoformat)
       | st.datetimes().map(datetime.isoformat) | st.text(max_size=25),
       params=st.lists(st.one_of(st.text(max_size=15), EDGE_TEXT,
                                 st.tuples(st.text(max_size=4), VALUES).map(param_text)),
                       max_size=3))
def test_job_run_options(store: actorbatch.Client, runnable: str, at: str | None, params: list[str]) -> None:
    args = ["job", "run", runnable, *(["--at", str(at)] if at is not None else [])]
    for param in params:
        args += ["--param", param]
    cli_refused_or_readable(store, args, refused_code=2)


SERVER_OPTIONS = {  # what `server start` receives: text
    "--lease-timeout": hostile(st.floats(0.5, 86400)).map(str),
    "--load-bias": hostile(st.floats(0, 100)).map(str),
    "--metrics-port": hostile(st.integers(0, 65535)).map(str),
    "--threads": hostile(st.integers(1, 1000)).map(str),
    "--timezone": hostile(st.sampled_from(["UTC", "Europe/Berlin"])).map(str),
    "--window": hostile(st.just("mon-fri 08:00-18:00=2")).map(str),
    "--groups": hostile(st.just("default,reports")).map(str),
    "--name": hostile(st.just("fuzzed")).map(str),
}


@FUZZ
@given(options=overrides(SERVER_OPTIONS, 3))
def test_server_options(store: actorbatch.Client, options: dict[str, str]) -> None:
    """What ServerConfig refuses, `server start` refuses (exit 2, nothing written); what it accepts, a server records
    as it would on starting, and every reader copes with."""
    try:
        config = server_config(options)
    except InvalidJob:  # only then the command runs: an accepted one would start a server in the foreground
        event("refused")
        cli_refused_or_readable(store, ["server", "start", *(arg for pair in options.items() for arg in pair)],
                                refused_code=2)
        return
    event("accepted")
    record = store.store.load(Server, server_id(config.name)) or Server()
    now = store.clock.now()
    started = record.start(config.name, config.groups, config.threads, config.lease_timeout_s, "host", 1, now)
    record.apply(started)
    store.store.append(started, record.heartbeat(0, now))
    readers_work(store, rebuild=False)


def server_config(options: dict[str, str]) -> actorbatch.ServerConfig:
    """The ServerConfig `server start` builds from these option values (typer's int and float parsing included)."""
    try:
        lease_timeout_s = float(options.get("--lease-timeout", "30"))
        load_bias = float(options.get("--load-bias", "1"))
        threads = int(options.get("--threads", "4"))
        metrics_port = int(options["--metrics-port"]) if "--metrics-port" in options else None
    except ValueError:
        raise InvalidJob("not a number") from None
    groups = options.get("--groups", "default")
    return actorbatch.ServerConfig(
        name=options.get("--name") or "fuzzed", groups=tuple(g.strip() for g in groups.split(",") if g.strip()),
        threads=threads, windows=(parse_window(options["--window"]),) if "--window" in options else (),
        timezone=options.get("--timezone", "UTC"), lease_timeout_s=lease_timeout_s, load_bias=load_bias,
        metrics_port=metrics_port)


def test_after_the_fuzzing_the_log_rebuilds_and_a_fresh_server_runs_work(store: actorbatch.Client,
                                                                         runnable: str) -> None:
    readers_work(store)
    run_id = store.run_job(runnable)
    with actorbatch.Server(store, name="after-fuzz", threads=2, projector="off", lease_timeout_s=5):
        assert store.wait(run_id, timeout=60)["status"] == "succeeded"
    readers_work(store)
