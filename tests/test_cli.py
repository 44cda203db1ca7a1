"""The `actorbatch` command's contract (DESIGN §3) through typer's CliRunner; an embedded batch server executes
the runs. Exit codes: 0 ok, 1 operation failed (one line on stderr), 2 usage error."""

import gc
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import actorbatch
from actorbatch.cli.app import app

runner = CliRunner()

RUN_SHOW_KEYS = {"id", "job", "status", "due_at", "started_at", "ended_at", "tasks"}
RUN_SHOW_EXTRA_KEYS = {"archived", "user", "params", "retry_of", "retried_by",  # added since the design named
                       "notifications"}  # the shape
TASK_KEYS = {"name", "status", "attempts", "server", "started_at", "ended_at", "exit_status"}
TASK_EXTRA_KEYS = {"history", "result"}
RUN_LIST_KEYS = {"id", "job", "status", "due_at", "started_at", "ended_at", "duration_s"}
SERVER_KEYS = {"name", "groups", "threads", "running", "last_seen", "alive"}
JOB_LIST_KEYS = {"name", "group", "scheduled", "next_fire", "tasks"}
TERMINAL = ("succeeded", "failed", "cancelled")

JOBS = {
    "hello": """
        name = "hello"
        [[tasks]]
        name = "greet"
        run = "actorbatch.examples:echo"
        params = { greeting = "hello" }
        [[tasks]]
        name = "shout"
        command = ["sh", "-c", "echo shell-says-hi; echo \\"params $ACTORBATCH_PARAMS\\""]
        after = { greet = "succeeded" }
    """,
    "broken": """
        name = "broken"
        priority = "high"
        [[tasks]]
        name = "boom"
        run = "actorbatch.examples:fail"
        params = { message = "no privilege to post" }
        [[tasks]]
        name = "after-boom"
        run = "actorbatch.examples:noop"
        after = { boom = "succeeded" }
    """,
    "slow": """
        name = "slow"
        [[tasks]]
        name = "nap"
        run = "actorbatch.examples:sleep"
        params = { seconds = 30 }
        [[tasks]]
        name = "shell-nap"
        command = ["sleep", "30"]
    """,
    "brief": """
        name = "brief"
        [[tasks]]
        name = "nap"
        run = "actorbatch.examples:sleep"
        params = { seconds = 0.4 }
        [[tasks]]
        name = "talk"
        run = "actorbatch.examples:echo"
        params = { said = "after the nap" }
        after = { nap = "succeeded" }
    """,
}


# ---- helpers ----

def cli(url: str, *args: str) -> Result:
    return runner.invoke(app, ["--db", url, *args])


def untimed(log: str) -> list[str]:
    """`run logs` lines without the time each starts with."""
    return [line.split(" ", 1)[1] for line in log.splitlines()]


def ok(url: str, *args: str) -> Result:
    result = cli(url, *args)
    assert result.exit_code == 0, (args, result.exit_code, result.stdout, result.stderr, result.exception)
    return result


def js(url: str, *args: str) -> Any:
    """The one JSON document a `--json` command prints."""
    return json.loads(ok(url, *args, "--json").stdout)


def fails(url: str, *args: str, code: int = 1) -> str:
    """Run a command that must fail with `code`; returns its stderr (one line for code 1)."""
    result = cli(url, *args)
    assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if code == 1:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def add_jobs(url: str, tmp_path: Path, *names: str) -> None:
    for name in names:
        path = tmp_path / f"{name}.toml"
        path.write_text("\n".join(line.strip() for line in JOBS[name].splitlines()), encoding="utf-8")
        ok(url, "job", "add", str(path))


def run_job(url: str, name: str, *args: str) -> str:
    submitted = js(url, "job", "run", name, *args)
    assert set(submitted) == {"run_id", "status"}
    return str(submitted["run_id"])


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def server(url: str, name: str = "t") -> actorbatch.BatchServer:
    return actorbatch.BatchServer(url, actorbatch.ServerConfig(name=name, threads=2, lease_timeout_s=5))


def head(url: str) -> int:
    with actorbatch.connect(url) as client:
        return int(client.store.head())


def assert_time(value: Any) -> None:
    assert isinstance(value, str) and value.endswith("Z"), value


def children_running(argv: list[str]) -> list[int]:
    """Pids of this process's descendants whose command line is `argv` (Linux /proc)."""
    processes = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        processes[int(entry.name)] = (fields[0], int(fields[1]), [a.decode() for a in cmdline])

    def descends(pid: int) -> bool:
        while pid in processes and pid != os.getpid():
            pid = processes[pid][1]
        return pid == os.getpid()

    return [pid for pid, (state, ppid, cmdline) in processes.items()
            if state != "Z" and cmdline == argv and descends(ppid)]


@pytest.fixture
def url(db_url: str, tmp_path: Path) -> str:
    add_jobs(db_url, tmp_path, "hello", "broken")
    return db_url


# ---- the store ----

def test_init_creates_the_store_and_is_repeatable(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    url = f"sqlite:///{db}"
    result = ok(url, "init")
    assert db.exists() and "store ready" in result.stdout
    ok(url, "init")  # upgrading an existing store is fine
    assert [j["name"] for j in js(url, "job", "list")] == ["actorbatch-maintenance"]


MISSING_STORE_COMMANDS = [
    ["job", "list"], ["job", "show", "x"], ["job", "remove", "x"], ["job", "run", "x"], ["run", "list"],
    ["run", "show", "abc"], ["run", "logs", "abc", "--follow"], ["run", "cancel", "abc"], ["run", "wait", "abc"],
    ["server", "list"], ["server", "start", "--name", "x"], ["status"], ["projections", "rebuild"],
]


@pytest.mark.parametrize("args", MISSING_STORE_COMMANDS, ids=" ".join)
def test_a_missing_store_gives_a_one_line_init_hint_and_is_not_created(tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "missing.db"
    error = fails(f"sqlite:///{db}", *args)
    assert "run `actorbatch init`" in error
    assert sorted(tmp_path.iterdir()) == []


def test_job_add_on_a_missing_store(tmp_path: Path) -> None:
    path = tmp_path / "hello.toml"
    path.write_text('name = "hello"\n[[tasks]]\nname = "a"\nrun = "m:f"\n', encoding="utf-8")
    assert "run `actorbatch init`" in fails(f"sqlite:///{tmp_path / 'missing.db'}", "job", "add", str(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hello.toml"]


def test_the_db_comes_from_the_environment(tmp_path: Path) -> None:
    db = tmp_path / "env.db"
    result = runner.invoke(app, ["init"], env={"ACTORBATCH_DB": f"sqlite:///{db}"})
    assert result.exit_code == 0 and db.exists()


USAGE_ERRORS = [
    ["frobnicate"], ["job", "frobnicate"], ["job", "add"], ["job", "show"], ["job", "run"], ["run", "show"],
    ["run", "wait"], ["run", "list", "--limit", "0"], ["run", "list", "--limit", "many"],
    ["run", "wait", "abc", "--timeout", "soon"], ["job", "list", "--nope"], ["server", "start", "--threads", "0"],
    ["server", "start", "--lease-timeout", "x"],
]


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=" ".join)
def test_usage_errors_exit_2(db_url: str, args: list[str]) -> None:
    before = head(db_url)
    stderr = fails(db_url, *args, code=2)
    assert "Usage" in stderr or "Error" in stderr or stderr.startswith("error: ")  # typer's, or a value we check
    assert head(db_url) == before


def test_an_unknown_status_filter_is_a_usage_error(db_url: str) -> None:
    fails(db_url, "run", "list", "--status", "bogus", code=2)


def test_an_unknown_status_filter_is_refused(db_url: str) -> None:
    result = cli(db_url, "run", "list", "--status", "bogus")
    assert result.exit_code in (1, 2) and "bogus" in result.stderr


# ---- jobs ----

def test_job_list_show_remove(url: str) -> None:
    jobs = js(url, "job", "list")
    assert [j["name"] for j in jobs] == ["broken", "hello"]
    for job in jobs:
        assert set(job) >= JOB_LIST_KEYS
        assert job["group"] == "default" and job["scheduled"] is False and job["next_fire"] is None
    assert {j["name"]: j["tasks"] for j in jobs} == {"broken": 2, "hello": 2}

    shown = js(url, "job", "show", "broken")
    assert shown["name"] == "broken" and shown["tasks"] == 2
    assert [t["name"] for t in shown["definition"]["tasks"]] == ["boom", "after-boom"]
    table = ok(url, "job", "show", "hello").stdout
    assert "greet" in table and "shout" in table
    assert "hello" in ok(url, "job", "list").stdout

    assert "removed job broken" in ok(url, "job", "remove", "broken").stdout
    assert [j["name"] for j in js(url, "job", "list")] == ["hello"]
    assert "'broken'" in fails(url, "job", "show", "broken")
    assert "'broken'" in fails(url, "job", "run", "broken")
    assert "'broken'" in fails(url, "job", "remove", "broken")
    assert "'nope'" in fails(url, "job", "run", "nope")


def test_job_run_later_is_scheduled(url: str) -> None:
    submitted = js(url, "job", "run", "hello", "--at", "2099-01-01T02:00:00")
    assert submitted["status"] == "scheduled"
    runs = js(url, "run", "list")
    assert len(runs) == 1 and set(runs[0]) == RUN_LIST_KEYS
    assert runs[0] | {"id": None} == {"id": None, "job": "hello", "status": "scheduled",
                                      "due_at": "2099-01-01T02:00:00.000000Z", "started_at": None,
                                      "ended_at": None, "duration_s": None}
    assert runs[0]["id"] == submitted["run_id"]
    assert [r["id"] for r in js(url, "run", "list", "--status", "scheduled")] == [submitted["run_id"]]
    assert js(url, "run", "show", submitted["run_id"])["status"] == "scheduled"
    with_offset = js(url, "job", "run", "hello", "--at", "2099-01-01T02:00:00+02:00")
    assert js(url, "run", "show", with_offset["run_id"])["due_at"] == "2099-01-01T00:00:00.000000Z"
    assert "--at: expected ISO 8601" in fails(url, "job", "run", "hello", "--at", "tomorrow", code=2)


def test_job_run_at_a_past_time_reports_the_runs_real_status(url: str) -> None:
    submitted = js(url, "job", "run", "hello", "--at", "2020-01-01T00:00:00Z")
    assert submitted["status"] == js(url, "run", "show", submitted["run_id"])["status"] == "running"


def test_bad_params_are_one_line_errors(url: str) -> None:
    assert "--param" in fails(url, "job", "run", "hello", "--param", "novalue", code=2)
    assert "--param" in fails(url, "job", "run", "hello", "--param", "=3", code=2)
    assert js(url, "run", "list") == []


# ---- runs on an embedded server ----

def test_runs_execute_and_every_listing_has_the_designed_shape(url: str, tmp_path: Path) -> None:
    with server(url):
        good = run_job(url, "hello", "--param", "who=world", "--param", "n=3", "--param", 'flags={"a": 1}',
                       "--param", "text=not json")
        bad = run_job(url, "broken")
        assert "succeeded" in ok(url, "run", "wait", good, "--timeout", "30").stdout
        waited = cli(url, "run", "wait", bad, "--timeout", "30")
        assert waited.exit_code == 1 and "failed" in waited.stdout
        servers = js(url, "server", "list")
        assert len(servers) == 1 and set(servers[0]) == SERVER_KEYS
        assert servers[0] | {"last_seen": None, "running": None} == {
            "name": "t", "groups": ["default"], "threads": 2, "running": None, "last_seen": None, "alive": True}
        assert isinstance(servers[0]["running"], int) and 0 <= servers[0]["running"] <= 2  # as of its last beat
        assert_time(servers[0]["last_seen"])
        screen = js(url, "status")
        assert {"jobs", "runs", "servers"} <= set(screen)
        assert [s["name"] for s in screen["servers"]] == ["t"]
        assert "t" in ok(url, "status").stdout and "hello" in ok(url, "run", "list").stdout

    shown = js(url, "run", "show", good)
    assert RUN_SHOW_KEYS <= set(shown) <= RUN_SHOW_KEYS | RUN_SHOW_EXTRA_KEYS
    assert shown["id"] == good and shown["job"] == "hello" and shown["status"] == "succeeded"
    for key in ("due_at", "started_at", "ended_at"):
        assert_time(shown[key])
    for task in shown["tasks"]:
        assert TASK_KEYS <= set(task) <= TASK_KEYS | TASK_EXTRA_KEYS
        assert task["status"] == "succeeded" and task["attempts"] == 1 and task["server"] == "t"
        assert task["exit_status"] is None
        assert_time(task["started_at"])
        assert_time(task["ended_at"])
    assert [t["name"] for t in shown["tasks"]] == ["greet", "shout"]

    failed = {t["name"]: t for t in js(url, "run", "show", bad)["tasks"]}
    assert failed["boom"]["status"] == "failed" and "no privilege to post" in failed["boom"]["exit_status"]
    assert failed["after-boom"]["status"] == "skipped" and failed["after-boom"]["attempts"] == 0
    assert "no privilege to post" in ok(url, "run", "show", bad).stdout

    with actorbatch.connect(url) as client:
        params = client.run(good)["params"]
    assert params == {"who": "world", "n": 3, "flags": {"a": 1},
                      "text": "not json"}
    logs = untimed(ok(url, "run", "logs", good).stdout)
    for line in ("greet#1 INFO: greeting = hello", "greet#1 INFO: who = world", "greet#1 INFO: n = 3",
                 "greet#1 INFO: flags = {'a': 1}", "greet#1 INFO: text = not json", "shout#1 shell-says-hi"):
        assert line in logs, logs
    assert any(line.startswith("shout#1 params {") and '"n": 3' in line for line in logs), logs
    assert all(line.startswith("shout#1") for line in untimed(ok(url, "run", "logs", good, "--task", "shout").stdout))
    assert "'nope'" in fails(url, "run", "logs", good, "--task", "nope")

    runs = js(url, "run", "list")
    assert [r["id"] for r in runs] == [bad, good]  # newest due first
    for row in runs:
        assert set(row) == RUN_LIST_KEYS
        for key in ("due_at", "started_at", "ended_at"):
            assert_time(row[key])
        assert isinstance(row["duration_s"], float) and row["duration_s"] >= 0
    assert [r["id"] for r in js(url, "run", "list", "--job", "hello")] == [good]
    assert [r["id"] for r in js(url, "run", "list", "--status", "failed")] == [bad]
    assert [r["id"] for r in js(url, "run", "list", "--status", "succeeded")] == [good]
    assert js(url, "run", "list", "--status", "running") == []
    assert [r["id"] for r in js(url, "run", "list", "--limit", "1")] == [bad]
    assert js(url, "run", "list", "--job", "nope") == []
    assert js(url, "run", "list", "--since", "2099-01-01T00:00:00") == []
    assert len(js(url, "run", "list", "--since", "2020-01-01T00:00:00Z")) == 2

    # a unique prefix works wherever a run id is taken; an unknown id fails with one line
    assert js(url, "run", "show", good[:8])["id"] == good
    assert js(url, "run", "show", good.upper())["id"] == good
    assert ok(url, "run", "wait", good[:8]).exit_code == 0
    assert "shell-says-hi" in ok(url, "run", "logs", good[:8]).stdout
    assert "no run" in fails(url, "run", "show", "ffffffff-0000")
    assert "no run" in fails(url, "run", "wait", "not-a-run")
    assert "already succeeded" in fails(url, "run", "cancel", good)


def test_like_wildcards_are_not_run_id_prefixes(url: str) -> None:
    run_job(url, "hello", "--at", "2099-01-01T00:00:00Z")
    fails(url, "run", "show", "%")


def test_a_shell_task_closes_its_output_pipe(url: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with server(url):
            ok(url, "run", "wait", run_job(url, "hello"), "--timeout", "30")
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning) and "unclosed file <_io."
             in str(w.message)]
    assert leaks == []


def test_run_wait_times_out_with_one_line(url: str, tmp_path: Path) -> None:
    run_id = run_job(url, "hello", "--at", "2099-01-01T00:00:00Z")
    started = time.monotonic()
    assert "still scheduled" in fails(url, "run", "wait", run_id, "--timeout", "0.2")
    assert time.monotonic() - started < 3


def test_cancel_stops_a_python_body_and_a_shell_command(db_url: str, tmp_path: Path) -> None:
    add_jobs(db_url, tmp_path, "slow")
    with server(db_url):
        run_id = run_job(db_url, "slow")

        def both_running() -> bool:
            tasks = js(db_url, "run", "show", run_id)["tasks"]
            return all(t["status"] == "running" for t in tasks) and bool(children_running(["sleep", "30"]))

        wait_until(both_running, what="both tasks to run")
        started = time.monotonic()
        assert "cancelled" in ok(db_url, "run", "cancel", run_id[:8]).stdout
        waited = cli(db_url, "run", "wait", run_id, "--timeout", "10")
        elapsed = time.monotonic() - started
        assert waited.exit_code == 1 and "cancelled" in waited.stdout, (waited.stdout, waited.stderr)
        assert elapsed < 5, f"cancel took {elapsed:.1f}s"
        wait_until(lambda: not children_running(["sleep", "30"]), timeout=5, what="the shell command to stop")
        shown = js(db_url, "run", "show", run_id)
        assert shown["status"] == "cancelled"
        assert {t["name"]: t["status"] for t in shown["tasks"]} == {"nap": "cancelled", "shell-nap": "cancelled"}
        assert "already cancelled" in fails(db_url, "run", "cancel", run_id)
        # the server is free again: new work still runs
        add_jobs(db_url, tmp_path, "hello")
        ok(db_url, "run", "wait", run_job(db_url, "hello"), "--timeout", "10")


def test_cancel_prints_the_full_run_id(url: str) -> None:
    run_id = run_job(url, "hello", "--at", "2099-01-01T00:00:00Z")
    assert run_id in ok(url, "run", "cancel", run_id[:8]).stdout


def test_cancel_a_scheduled_run(url: str) -> None:
    run_id = run_job(url, "hello", "--at", "2099-01-01T00:00:00Z")
    ok(url, "run", "cancel", run_id)
    assert [r["status"] for r in js(url, "run", "list")] == ["cancelled"]
    assert js(url, "run", "list", "--status", "scheduled") == []


def test_logs_follow_returns_once_the_run_ends(db_url: str, tmp_path: Path) -> None:
    add_jobs(db_url, tmp_path, "brief")
    with server(db_url):
        run_id = run_job(db_url, "brief")
        started = time.monotonic()
        followed = ok(db_url, "run", "logs", run_id, "--follow")
        assert time.monotonic() - started < 10
        assert js(db_url, "run", "show", run_id)["status"] == "succeeded"
    assert "talk#1 INFO: said = after the nap" in untimed(followed.stdout)
    # following a run that has already ended returns at once with the same lines
    assert ok(db_url, "run", "logs", run_id, "-f").stdout == followed.stdout


def test_projections_rebuild_gives_identical_listings(url: str, tmp_path: Path) -> None:
    add_jobs(url, tmp_path, "brief")
    with server(url):
        runs = [run_job(url, "hello", "--param", "x=1"), run_job(url, "broken"), run_job(url, "brief")]
        for run_id in runs:
            cli(url, "run", "wait", run_id, "--timeout", "30")
    runs.append(run_job(url, "hello", "--at", "2099-01-01T00:00:00Z"))
    cancelled = run_job(url, "brief", "--at", "2099-02-01T00:00:00Z")
    ok(url, "run", "cancel", cancelled)
    runs.append(cancelled)
    ok(url, "job", "remove", "brief")

    def listings() -> dict[str, Any]:
        return {"jobs": js(url, "job", "list"), "runs": js(url, "run", "list"),
                "shown": [js(url, "run", "show", r) for r in runs],
                "logs": [ok(url, "run", "logs", r).stdout for r in runs],
                "servers": [{k: v for k, v in s.items() if k != "alive"} for s in js(url, "server", "list")]}

    before = listings()
    assert len(before["runs"]) == 5 and [j["name"] for j in before["jobs"]] == ["broken", "hello"]
    result = ok(url, "projections", "rebuild")
    assert f"rebuilt from {head(url)} events" in result.stdout
    assert listings() == before
    ok(url, "projections", "rebuild")
    assert listings() == before


# ---- --debug ----

def test_debug_shows_the_traceback_that_normal_mode_hides(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing.db'}"
    command = [sys.executable, "-m", "actorbatch", "--db", url]
    normal = subprocess.run([*command, "job", "list"], check=False, capture_output=True, text=True, timeout=30)
    assert normal.returncode == 1
    assert normal.stderr.splitlines() == [f"error: no store at {tmp_path / 'missing.db'}: run `actorbatch init` first"]
    debug = subprocess.run([*command, "--debug", "job", "list"], check=False, capture_output=True, text=True,
                           timeout=30)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "NotInitialised" in debug.stderr and "actorbatch init" in debug.stderr
    assert not (tmp_path / "missing.db").exists()


def test_debug_in_process_raises_the_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--db", f"sqlite:///{tmp_path / 'missing.db'}", "--debug", "status"])
    assert result.exit_code == 1 and isinstance(result.exception, actorbatch.ActorbatchError)


@pytest.fixture(autouse=True)
def _no_leftover_children() -> Iterator[None]:
    yield
    assert children_running(["sleep", "30"]) == []
