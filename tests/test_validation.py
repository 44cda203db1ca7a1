"""The validation gateway: a value from a job file, a command-line option, a `--param` or the Python API is either
refused with one line naming the field, writing nothing, or it is one every reader and all time arithmetic can
handle. One test per bad value found by trying to break the system, and the extreme values that must still work."""

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from simulations.scenario import load_scenario
from simulations.simulator import Result, Simulation
from simulations.workload import HOSTILE_NAME
from typer.testing import CliRunner
from typer.testing import Result as CliResult

import actorbatch
from actorbatch.cli.app import app
from actorbatch.clock import SystemClock
from actorbatch.domain.jobfile import parse_job, validate_definition
from actorbatch.domain.jobs import JobDefinition, TaskSpec
from actorbatch.domain.limits import (
    LATEST,
    MAX_DURATION_S,
    MAX_NAME_CHARS,
    MAX_PARAMS_DEPTH,
    MAX_TASKS,
    check_name,
)
from actorbatch.domain.recurrence import parse_schedule
from actorbatch.domain.runs import Run
from actorbatch.errors import InvalidJob
from actorbatch.node import commands
from actorbatch.projections.documents import iso_seconds
from actorbatch.store.transcoder import MsgpackTranscoder
from tests.conftest import T0
from tests.test_job_files import EXAMPLES, assert_rejected, job, task, write

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
NOOP = 'name = "j"\n[[tasks]]\nname = "a"\nrun = "actorbatch.examples:noop"\n'


def cli(url: str, *args: str) -> CliResult:
    return runner.invoke(app, ["--db", url, *args])


def head(url: str) -> int:
    with actorbatch.connect(url) as client:
        return client.store.head()


def refused_on_the_command_line(url: str, *args: str, naming: str) -> None:
    """Exit 2 (a usage error), one line naming the option, no traceback, nothing written."""
    before = head(url)
    result = cli(url, *args)
    assert result.exit_code == 2, (args, result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {naming}"), result.stderr
    assert head(url) == before


def readers_work(client: actorbatch.Client, rebuild: bool = True) -> None:
    """Every listing, the audit trail and a rebuild: what one unreadable value used to break for good."""
    for row in client.jobs():
        if row["scheduled"]:
            client.next_fires(row["name"], 1000)
    for row in client.runs(limit=20):
        client.run(row["id"])
        client.explain(row["id"])
    client.status()
    client.servers()
    client.audit()
    assert client.verify()["ok"]
    if rebuild:
        client.rebuild_projections()
        client.jobs()


@pytest.fixture
def url(db_url: str, tmp_path: Path) -> str:
    assert cli(db_url, "job", "add", str(write(tmp_path, "j", NOOP))).exit_code == 0
    return db_url


# ---- run later: --at and at= ----

@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00", "1969-12-31T23:59:59Z",
                                "9000-01-01T00:00:01Z", "0001-01-01T00:00:00"])
def test_a_run_later_time_outside_the_limits_is_refused(url: str, at: str) -> None:
    refused_on_the_command_line(url, "job", "run", "j", "--at", at, naming="--at: must lie between 1970-01-01")
    with actorbatch.connect(url) as client:
        readers_work(client)


@pytest.mark.parametrize("at", ["tomorrow", "2026-13-01T00:00:00", ""])
def test_a_run_later_time_that_is_no_time_is_a_usage_error(url: str, at: str) -> None:
    refused_on_the_command_line(url, "job", "run", "j", "--at", at, naming="--at: expected ISO 8601")


def test_run_later_times_at_the_limits_are_accepted_and_readable(url: str) -> None:
    for at in ("1970-01-01T00:00:00Z", "9000-01-01T00:00:00Z", "8999-12-31T18:00:00-05:00"):
        assert cli(url, "job", "run", "j", "--at", at).exit_code == 0
    for command in (["job", "list"], ["run", "list"], ["status"], ["server", "list"], ["audit", "log"],
                    ["audit", "verify"], ["projections", "rebuild"]):
        assert cli(url, *command).exit_code == 0, command
    with actorbatch.connect(url) as client:
        readers_work(client)
        assert {r["due_at"] for r in client.runs()} >= {"9000-01-01T00:00:00.000000Z", "1970-01-01T00:00:00.000000Z"}


@pytest.mark.parametrize("at", [datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), datetime(2026, 12, 1),
                                datetime(9999, 12, 31, tzinfo=UTC), "2026-12-01T00:00:00Z"])
def test_run_job_checks_its_time_before_writing(url: str, at: Any) -> None:
    with actorbatch.connect(url) as client:
        before = client.store.head()
        with pytest.raises(InvalidJob, match=r"^at: "):
            client.run_job("j", at=at)
        assert client.store.head() == before


# ---- params ----

def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def looped() -> dict[str, Any]:
    table: dict[str, Any] = {}
    table["self"] = table
    return table


@pytest.mark.parametrize(("params", "message"), [
    ({"n": 2**64}, "params.n: integers must lie in -2**63..2**64-1"),
    ({"n": -(2**63) - 1}, "params.n: integers must lie in"),
    ({"deep": nested(10_000)}, "nested deeper than 32 levels"),
    (looped(), "nested deeper than 32 levels"),
    ({"x": float("nan")}, "params.x: nan is not a finite number"),
    ({"x": float("-inf")}, "params.x: -inf is not a finite number"),
    ({"x": {1, 2}}, "params.x: a set cannot be a parameter"),
    ({"x": b"bytes"}, "params.x: a bytes cannot be a parameter"),
    ({1: "x"}, "keys are strings, got 1"),
    ({"x": "\x00"}, "params.x: a NUL character cannot be stored"),
    ({"x": "\ud800"}, "params.x: not valid Unicode text"),
    ({"x": "y" * 70_000}, "params.x: at most 65536 characters"),
    ({f"k{i}": "v" * 1000 for i in range(100)}, "params too big"),
    ("region=EU", "params: params must be a table"),
])
def test_run_params_are_checked_with_a_specific_message(url: str, params: Any, message: str) -> None:
    with actorbatch.connect(url) as client:
        before = client.store.head()
        with pytest.raises(InvalidJob) as raised:
            client.run_job("j", params=params)
        assert message in str(raised.value) and "\n" not in str(raised.value)
        assert client.store.head() == before


def test_a_refused_params_path_stays_on_one_line(url: str) -> None:
    with actorbatch.connect(url) as client, pytest.raises(InvalidJob) as raised:
        client.run_job("j", params={"line\nbreak": {"n": 2**64}})
    assert str(raised.value) == "params['line\\nbreak'].n: integers must lie in -2**63..2**64-1; write a bigger one " \
                                "as a string"


def test_params_at_the_limits_are_accepted_and_readable(url: str) -> None:
    with actorbatch.connect(url) as client:
        run_id = client.run_job("j", params={"deep": nested(MAX_PARAMS_DEPTH - 1), "big": 2**64 - 1,
                                             "small": -(2**63), "when": datetime(1, 1, 1, tzinfo=UTC),
                                             "none": None, "text": "x" * 60_000})
        assert client.run(run_id)["params"]["big"] == 2**64 - 1
        readers_work(client)


@pytest.mark.parametrize(("param", "message"), [
    ("noequals", "--param: expected K=V"),
    ("=3", "--param: expected K=V"),
    ("n=18446744073709551616", "--param.n: integers must lie in"),
    ("x=NaN", "--param.x: nan is not a finite number"),
    ("x=" + "[" * 5000 + "]" * 5000, "--param: x: nested too deeply"),
    ("x=" + "[" * 40 + "]" * 40, "--param.x"),
])
def test_a_bad_param_on_the_command_line_is_a_usage_error(url: str, param: str, message: str) -> None:
    refused_on_the_command_line(url, "job", "run", "j", "--param", param, naming=message)


# ---- job definitions from Python: the same checks as job files ----

def test_a_job_definition_built_in_python_is_validated_before_anything_is_stored(url: str) -> None:
    bad = JobDefinition(name="bad name!", tasks=(TaskSpec("t", after=(("zzz", "weird"),)),), priority="urgent")
    with actorbatch.connect(url) as client:
        before = client.store.head()
        with pytest.raises(InvalidJob) as raised:
            client.add_job(bad)
        assert str(raised.value).startswith("job name: expected a name") and "\n" not in str(raised.value)
        assert client.store.head() == before
        readers_work(client)


def ok_task(**fields: Any) -> TaskSpec:
    return TaskSpec(**{"name": "t", "run": "m:f", **fields})


@pytest.mark.parametrize(("definition", "message"), [
    (JobDefinition("abc\n", (ok_task(),)), "job name: expected a name"),
    (JobDefinition("j", (ok_task(after=(("zzz", "succeeded"),)),)), "task 't': depends on unknown task 'zzz'"),
    (JobDefinition("j", (ok_task(), ok_task(name="u", after=(("t", "weird"),)))), "condition on 't'"),
    (JobDefinition("j", (ok_task(),), priority="urgent"), "priority: expected one of"),
    (JobDefinition("j", (ok_task(), ok_task(name="u", after=(("t", "ended"), ("t", "failed"))))), "'t' twice"),
    (JobDefinition("j", (ok_task(after=("t",)),)), "after must hold (parent, condition) pairs"),
    (JobDefinition("j", (ok_task(after="t"),)), "after must be a table"),
    (JobDefinition("j", (ok_task(run=None),)), "needs exactly one body"),
    (JobDefinition("j", (ok_task(run="m:f\n"),)), "run must look like"),
    (JobDefinition("j", (ok_task(run=None, command=("echo", 3)),)), "command must be a non-empty list"),
    (JobDefinition("j", (ok_task(retry_delay_s=float("nan")),)), "retry_delay: expected a duration"),
    (JobDefinition("j", (ok_task(retry_delay_s=3_000_000 * 86400),)), "retry_delay: at most 366d"),
    (JobDefinition("j", (ok_task(timeout_s=1e15),)), "timeout: at most 366d"),
    (JobDefinition("j", (ok_task(timeout_s=0),)), "timeout: duration must be positive"),
    (JobDefinition("j", (ok_task(retries=-1),)), "retries: expected a whole number from 0 to 1000"),
    (JobDefinition("j", (ok_task(lost_retries=True),)), "lost_retries: expected a whole number"),
    (JobDefinition("j", (ok_task(params={"n": 2**64}),)), "params.n: integers must lie in"),
    (JobDefinition("j", (ok_task(params={"deep": nested(100)}),)), "nested deeper than 32 levels"),
    (JobDefinition("j", (ok_task(when="some"),)), "when: expected one of all, any"),
    (JobDefinition("j", (ok_task(ignore_failure="yes"),)), "ignore_failure: expected true or false"),
    (JobDefinition("j", (ok_task(), ok_task())), "task 't' is defined twice"),
    (JobDefinition("j", ()), "needs at least one [[tasks]] table"),
    (JobDefinition("j", ("t",)), "each [[tasks]] entry must be a table"),  # type: ignore[arg-type]
    (JobDefinition("j", (ok_task(),), description="\x00"), "description: a NUL character"),
    (JobDefinition("j", (ok_task(),), group="a/b"), "group: expected a name"),
    (JobDefinition("j", (ok_task(),), schedule={"every": "3000000d"}), "schedule.every: at most 3650d"),
    (JobDefinition("j", (ok_task(),), schedule={"daily": "02:00", "jitter": 1e12}), "schedule.jitter: at most"),
    (JobDefinition("j", (ok_task(),), schedule="daily"), "schedule must be a table"),  # type: ignore[arg-type]
    ({"name": "j"}, "expected a JobDefinition"),
])
def test_each_bad_python_definition_is_refused_with_one_line(url: str, definition: Any, message: str) -> None:
    with actorbatch.connect(url) as client:
        before = client.store.head()
        with pytest.raises(InvalidJob) as raised:
            client.add_jobs([JobDefinition("fine", (ok_task(),)), definition])  # all of them or none
        assert message in str(raised.value) and "\n" not in str(raised.value), str(raised.value)
        assert client.store.head() == before


def test_two_definitions_of_one_name_in_one_call_are_refused(url: str) -> None:
    with actorbatch.connect(url) as client, pytest.raises(InvalidJob, match="'twin' is defined twice in one call"):
        client.add_jobs([JobDefinition("twin", (ok_task(),)), JobDefinition("twin", (ok_task(),))])


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_a_parsed_definition_passes_the_gateway_unchanged(example: str) -> None:
    for definition in actorbatch.load_job_file(EXAMPLES / example):
        assert validate_definition(definition) == definition


def test_a_python_schedule_is_stored_in_its_canonical_form(url: str) -> None:
    with actorbatch.connect(url) as client:
        client.add_job(JobDefinition("nightly", (ok_task(),), schedule={"daily": "02:00", "timezone": "Europe/Berlin"}))
        stored = client.job("nightly")["definition"]["schedule"]
        assert stored == parse_schedule({"daily": "02:00", "timezone": "Europe/Berlin"}).to_dict()
        readers_work(client)


# ---- job files ----

@pytest.mark.parametrize(("content", "expected"), [
    (task('retry_delay = "3000000d"'), ("retry_delay: at most 366d", "'3000000d'")),
    (task('timeout = "3000000d"'), ("timeout: at most 366d",)),
    (task("timeout = 1e15"), ("timeout: at most 366d", "1000000000000000.0")),
    (task("timeout = 100000000000000000000000000000000000000000000000000000"), ("timeout: at most 366d",)),
    (job('[schedule]\nevery = "3000000d"'), ("schedule.every: at most 3650d",)),
    (job('[schedule]\ndaily = "02:00"\njitter = "3000000d"'), ("schedule.jitter: at most 366d",)),
    (job('[schedule]\ndaily = "02:00"\nstart = 0001-01-01T00:00:00'), ("schedule.start: must lie between",)),
    (job('[schedule]\ndaily = "02:00"\nend = 9999-12-31T00:00:00-05:00'), ("schedule.end: must lie between",)),
    (job('[schedule]\nat = 0001-01-01T00:00:00+01:00'), ("schedule.at: must lie between",)),
    (job('[schedule]\ncron = "0 0 ' + "1" * 5000 + ' * *"'), ("schedule.cron: bad day field", "characters)")),
    (job(name='name = "abc\\n"\n'), ("job name", "'abc\\n'")),
    (task('params = { deep = ' + "[" * 40 + "1" + "]" * 40 + " }"), ("params.deep", "nested deeper than 32")),
    (task('params = { deep = ' + "[" * 5000 + "1" + "]" * 5000 + " }"), ("not valid TOML", "nested too deeply")),
    (task('params = { x = nan }'), ("params.x", "nan is not a finite number")),
    (task('params = { x = "' + "y" * 70_000 + '" }'), ("params.x", "at most 65536 characters")),
    (task('command = ["echo"]\n'), ("needs exactly one body",)),
])
def test_a_job_file_value_that_readers_could_not_handle_is_refused(url: str, tmp_path: Path, content: str,
                                                                   expected: tuple[str, ...]) -> None:
    path = write(tmp_path, "bad", content)
    assert_rejected(url, path, (str(path), *expected))


def test_at_most_max_tasks_per_job() -> None:
    tasks = [{"name": f"t{i}", "run": "m:f"} for i in range(MAX_TASKS + 1)]
    with pytest.raises(InvalidJob, match="at most 100,000 tasks, got 100,001"):
        parse_job({"name": "wide", "tasks": tasks})


def test_a_retry_delay_of_zero_retries_at_once() -> None:
    definition = parse_job({"name": "j", "tasks": [{"name": "t", "run": "m:f", "retries": 1, "retry_delay": "0s"}]})
    run = Run()
    run.apply(Run.create(UUID(int=1), definition, 1, {}, "tester", T0, T0))
    claim = run.claim("t", "s1", T0, 30)
    run.apply(claim)
    run.apply(run.finish("t", claim.attempt, T0, exit_status="boom"))
    assert run.claimable(T0) == ["t"]  # the retry is due at the very moment of the failure


def test_the_longest_timeout_is_one_a_timer_can_honour() -> None:
    assert MAX_DURATION_S * 10 < threading.TIMEOUT_MAX  # a retry waits at most 10 x retry_delay


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest) -> str:
    """An empty store of each kind: what one accepts, the other must hold and read back too."""
    return str(request.getfixturevalue("db_url" if request.param == "sqlite" else "pg_url"))


def test_extreme_but_valid_values_are_accepted_and_every_reader_still_works(any_store: str) -> None:
    long_name = "x" * MAX_NAME_CHARS
    definition = parse_job({
        "name": long_name, "group": "g" * MAX_NAME_CHARS, "description": "d" * 60_000,
        "schedule": {"every": "3650d", "start": "8999-12-31T00:00:00Z", "jitter": "366d", "misfire": "run-all"},
        "tasks": [{"name": "t" * MAX_NAME_CHARS, "run": "m:f", "retry_delay": "366d", "timeout": "366d",
                   "retries": 1000, "lost_retries": 1000, "params": {"deep": nested(MAX_PARAMS_DEPTH - 1)}},
                  {"name": "zero", "command": ["true"], "retry_delay": "0s"}],
    })
    with actorbatch.connect(any_store) as client:
        client.add_job(definition)
        fires = client.next_fires(long_name, 1000)
        assert [f["utc"] for f in fires] == ["8999-12-31T00:00:00Z"]  # no fire time lies past the last one
        client.run_job(long_name, at=LATEST, params={"big": 2**64 - 1, "small": -(2**63), "text": "é" * 60_000})
        readers_work(client)


def test_every_schedule_ends_by_the_last_representable_fire_time() -> None:
    schedule = parse_schedule({"cron": "0 0 29 2 *"})
    assert schedule.next_fire(LATEST - timedelta(days=1), T0) is None
    assert schedule.next_fire(datetime.max.replace(tzinfo=UTC), T0) is None
    assert iso_seconds(schedule.next_fire(datetime(8995, 1, 1, tzinfo=UTC), T0)) == "8996-02-29T00:00:00Z"


# ---- servers ----

@pytest.mark.parametrize(("args", "naming"), [
    (["--lease-timeout", "nan"], "--lease-timeout: expected a number from 0.5s to 86400s, got nan"),
    (["--lease-timeout", "inf"], "--lease-timeout"),
    (["--lease-timeout", "1e12"], "--lease-timeout"),
    (["--lease-timeout", "0.000001"], "--lease-timeout"),
    (["--threads", "0"], "--threads: expected a whole number from 1 to 1000, got 0"),
    (["--threads", "100000"], "--threads"),
    (["--timezone", "Mars/Olympus"], "--timezone: unknown time zone 'Mars/Olympus'"),
    (["--timezone", "America"], "--timezone"),
    (["--timezone", "a" * 5000], "--timezone"),
    (["--window", "mon-fri 08:00-18:00=99999"], "--window: threads"),
    (["--window", "mon-fri 08:00-18:00=" + "9" * 5000], "--window: expected e.g."),
    (["--window", "someday 08:00-18:00=2"], "--window"),
    (["--name", "a b"], "--name: expected a name"),
    (["--name", "abc\n"], "--name"),
    (["--groups", ","], "--groups: name at least one batch group"),
    (["--groups", "a/b"], "--groups: expected a name"),
    (["--projector", "fork"], "--projector"),
    (["--load-bias", "nan"], "--load-bias: expected a number from 0 to 100, got nan"),
    (["--load-bias", "-1"], "--load-bias"),
])
def test_a_bad_server_option_is_refused_before_anything_is_written(url: str, args: list[str], naming: str) -> None:
    refused_on_the_command_line(url, "server", "start", *args, naming=naming)
    with actorbatch.connect(url) as client:
        assert client.servers() == []


@pytest.mark.parametrize("options", [{"lease_timeout_s": float("nan")}, {"lease_timeout_s": 1e-6},
                                     {"threads": True}, {"groups": ["default"]}, {"poll_s": 0}, {"tick_s": -1},
                                     {"load_bias": float("nan")}, {"load_bias": float("inf")}, {"load_bias": -1},
                                     {"load_bias": 101}, {"load_bias": "1"}])
def test_server_config_from_python_is_checked_too(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidJob):
        actorbatch.ServerConfig(name="s", **options)


@pytest.mark.parametrize(("args", "naming"), [
    (["run", "list", "--since", "0001-01-01T00:00:00+01:00"], "--since: must lie between"),
    (["audit", "log", "--until", "9999-12-31T23:59:59-05:00"], "--until: must lie between"),
    (["audit", "log", "--since", "yesterday"], "--since: expected ISO 8601"),
    (["run", "wait", "abc", "--timeout", "nan"], "--timeout"),
    (["projections", "follow", "--interval", "nan"], "--interval"),
    (["--user", "a\x00b", "status"], "--user: a NUL character"),
    (["--user", "line\nbreak", "job", "run", "j"], "--user: expected a user name of printable characters"),
    (["--user", "u" * 300, "status"], "--user: at most 256 characters"),
])
def test_other_bad_option_values_are_usage_errors(url: str, args: list[str], naming: str) -> None:
    refused_on_the_command_line(url, *args, naming=naming)


# ---- names, users, the encoder, job validate ----

@pytest.mark.parametrize("user", ["", " ", "a\nb", "\x00", "u" * 257])
def test_the_acting_user_is_checked_when_connecting(db_url: str, user: str) -> None:
    with pytest.raises(InvalidJob, match=r"^user: "):
        actorbatch.Client(db_url, user, SystemClock())


@pytest.mark.parametrize("name", ["abc\n", "", "-x", "a" * (MAX_NAME_CHARS + 1), "a b", "é"])
def test_a_name_is_matched_whole(name: str) -> None:
    with pytest.raises(InvalidJob):
        check_name(name, "name")


def test_the_encoder_names_the_integer_it_cannot_store() -> None:
    with pytest.raises(TypeError, match=r"integer outside -2\*\*63..2\*\*64-1"):
        MsgpackTranscoder().encode({"n": 2**64})


def test_job_validate_checks_a_file_without_a_store(tmp_path: Path) -> None:
    missing_store = f"sqlite:///{tmp_path / 'none.db'}"
    good = cli(missing_store, "job", "validate", str(EXAMPLES / "month-end-report.toml"))
    assert good.exit_code == 0 and good.stdout.startswith("valid job month-end-report")
    bad = cli(missing_store, "job", "validate", str(write(tmp_path, "bad", task('retry_delay = "3000000d"'))))
    assert bad.exit_code == 1 and bad.stderr.count("\n") == 1 and "retry_delay: at most 366d" in bad.stderr
    assert not (tmp_path / "none.db").exists()


# ---- the simulator's hostile user ----

def hostile_simulation(seed: int) -> Result:
    return Simulation(load_scenario(ROOT / "simulations" / "scenarios" / "hostile.toml", seed)).run()


def test_the_simulators_hostile_user_is_refused_or_served_and_every_checker_passes() -> None:
    result = hostile_simulation(1)
    assert result.failure is None, f"{result.failure}\n{result.crash}\nreproduce: {result.config.reproduce()}"
    runs = [r for r in result.views.runs.values() if r.job == HOSTILE_NAME]
    assert {r.status(T0) for r in runs if r.due_at and r.due_at.year > 8000} == {"cancelled"}
    assert any(r.complete and r.status(T0) != "cancelled" for r in runs)  # runs at the limits ran to their end


def test_the_hostile_user_catches_a_gateway_that_lets_a_bad_value_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands, "check_run", lambda params, at: (params, at))  # planted in the product's gateway
    result = hostile_simulation(1)
    assert result.failure is not None and result.failure.checker == "gateway", result.failure
