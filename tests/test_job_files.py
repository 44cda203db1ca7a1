"""`actorbatch job add FILE`: every bad job file exits 1 with a one-line message and leaves the store unchanged;
good files (one job, several `[[job]]` tables, `--replace`) are added whole."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import actorbatch
from actorbatch.cli.app import app

EXAMPLES = Path(__file__).parent.parent / "src" / "actorbatch" / "examples"
JOBS = Path(__file__).parent / "jobs"

OK_TASK = '[[tasks]]\nname = "a"\nrun = "actorbatch.examples:noop"\n'


def job(body: str = "", tasks: str = OK_TASK, name: str = 'name = "j"\n') -> str:
    """A job file: a name line, extra top-level keys, then the [[tasks]] tables."""
    return name + body + "\n" + tasks


def two_tasks(a_extra: str = "", b_extra: str = "") -> str:
    return job(tasks=f'[[tasks]]\nname = "a"\nrun = "m:f"\n{a_extra}\n[[tasks]]\nname = "b"\nrun = "m:f"\n{b_extra}\n')


def task(extra: str) -> str:
    """A one-task job whose task carries `extra` lines."""
    return job(tasks=f'[[tasks]]\nname = "a"\nrun = "actorbatch.examples:noop"\n{extra}\n')


# id -> (file content, distinctive substrings of the error line). Bytes are written as they are.
BAD: dict[str, tuple[str | bytes, tuple[str, ...]]] = {
    "malformed-toml": ('name = "j\n' + OK_TASK, ("not valid TOML",)),
    "malformed-toml-no-equals": ("name\n" + OK_TASK, ("not valid TOML", "line 1")),
    "duplicate-toml-key": ('name = "j"\nname = "k"\n' + OK_TASK, ("not valid TOML",)),
    "not-utf8": (b'name = "caf\xe9"\n' + OK_TASK.encode(), ("not UTF-8",)),
    "empty-file": ("", ("job name", "None")),
    "missing-name": (job(name=""), ("job name", "None")),
    "name-not-a-string": (job(name="name = 7\n"), ("job name", "7")),
    "name-with-space": (job(name='name = "my job"\n'), ("job name", "'my job'")),
    "name-with-slash": (job(name='name = "a/b"\n'), ("job name", "'a/b'")),
    "name-empty": (job(name='name = ""\n'), ("job name", "''")),
    "name-starts-with-dash": (job(name='name = "-x"\n'), ("job name", "'-x'")),
    "name-too-long": (job(name=f'name = "{"x" * 129}"\n'), ("job name",)),
    "no-tasks": (job(tasks=""), ("needs at least one [[tasks]] table",)),
    "tasks-empty-array": (job(tasks="tasks = []\n"), ("needs at least one [[tasks]] table",)),
    "tasks-a-table-not-an-array": (job(tasks='[tasks]\nname = "a"\nrun = "m:f"\n'),
                                   ("needs at least one [[tasks]] table",)),
    "tasks-entry-not-a-table": (job(tasks="tasks = [1]\n"), ("each [[tasks]] entry must be a table",)),
    "task-without-name": (job(tasks='[[tasks]]\nrun = "m:f"\n'), ("task name", "None")),
    "task-bad-name": (job(tasks='[[tasks]]\nname = "a b"\nrun = "m:f"\n'), ("task name", "'a b'")),
    "task-without-body": (job(tasks='[[tasks]]\nname = "a"\n'), ("task 'a'", "needs exactly one body")),
    "task-with-run-and-command": (task('command = ["true"]'), ("task 'a'", "needs exactly one body")),
    "run-without-colon": (job(tasks='[[tasks]]\nname = "a"\nrun = "myapp.batch.update"\n'),
                          ("task 'a'", "run must look like", "'myapp.batch.update'")),
    "run-empty-function": (job(tasks='[[tasks]]\nname = "a"\nrun = "myapp:"\n'), ("run must look like",)),
    "run-with-spaces": (job(tasks='[[tasks]]\nname = "a"\nrun = "my app:f"\n'), ("run must look like",)),
    "run-not-a-string": (job(tasks='[[tasks]]\nname = "a"\nrun = 3\n'), ("run must look like", "3")),
    "command-a-string": (job(tasks='[[tasks]]\nname = "a"\ncommand = "ls -l"\n'),
                         ("task 'a'", "command must be a non-empty list of strings")),
    "command-empty": (job(tasks='[[tasks]]\nname = "a"\ncommand = []\n'),
                      ("command must be a non-empty list of strings",)),
    "command-with-a-number": (job(tasks='[[tasks]]\nname = "a"\ncommand = ["sleep", 3]\n'),
                              ("command must be a non-empty list of strings",)),
    "unknown-parent": (task('after = { nope = "succeeded" }'), ("task 'a'", "depends on unknown task 'nope'")),
    "self-dependency": (task('after = { a = "succeeded" }'), ("task 'a'", "depends on itself")),
    "cycle-of-two": (two_tasks('after = { b = "succeeded" }', 'after = { a = "ended" }'),
                     ("dependency cycle", "a -> b -> a")),
    "cycle-of-three": (job(tasks='[[tasks]]\nname = "a"\nrun = "m:f"\nafter = { c = "ended" }\n'
                                 '[[tasks]]\nname = "b"\nrun = "m:f"\nafter = { a = "ended" }\n'
                                 '[[tasks]]\nname = "c"\nrun = "m:f"\nafter = { b = "failed" }\n'),
                       ("dependency cycle", "a -> c -> b -> a")),
    "duplicate-task-names": (job(tasks=OK_TASK + OK_TASK), ("task 'a' is defined twice",)),
    "condition-done": (two_tasks(b_extra='after = { a = "done" }'),
                       ("task 'b'", "condition on 'a'", "succeeded, failed, ended", "'done'")),
    "condition-not-a-string": (two_tasks(b_extra="after = { a = true }"), ("condition on 'a'", "True")),
    "after-not-a-table": (two_tasks(b_extra='after = ["a"]'), ("task 'b'", "after must be a table")),
    "when-both": (two_tasks(b_extra='after = { a = "ended" }\nwhen = "both"'),
                  ("task 'b'", "when", "all, any", "'both'")),
    "priority-urgent": (job('priority = "urgent"'), ("priority", "low, normal, high, critical", "'urgent'")),
    "priority-a-number": (job("priority = 3"), ("priority", "3")),
    "alerts-sometimes": (job('alerts = "sometimes"'), ("alerts", "always, on-error, never", "'sometimes'")),
    "alerts-a-bool": (job("alerts = true"), ("alerts", "True")),
    "group-bad-name": (job('group = "a b"'), ("group", "'a b'")),
    "description-not-a-string": (job("description = 1"), ("description", "expected a string")),
    "retries-negative": (task("retries = -1"), ("retries", "whole number", "-1")),
    "retries-float": (task("retries = 1.5"), ("retries", "whole number", "1.5")),
    "retries-string": (task('retries = "2"'), ("retries", "whole number", "'2'")),
    "retries-bool": (task("retries = true"), ("retries", "whole number", "True")),
    "retries-huge": (task("retries = 1000000"), ("retries", "whole number", "1000000")),
    "lost-retries-negative": (task("lost_retries = -3"), ("lost_retries", "-3")),
    "retry-delay-words": (task('retry_delay = "soon"'), ("retry_delay", "duration", "'soon'")),
    "retry-delay-negative": (task('retry_delay = "-5s"'), ("retry_delay", "'-5s'")),
    "retry-delay-negative-number": (task("retry_delay = -1"), ("retry_delay", "zero or positive")),
    "retry-delay-bad-unit": (task('retry_delay = "30y"'), ("retry_delay", "'30y'")),
    "retry-delay-nan": (task("retry_delay = nan"), ("retry_delay", "nan")),
    "timeout-inf": (task("timeout = inf"), ("timeout", "inf")),
    "timeout-words": (task('timeout = "forever"'), ("timeout", "duration", "'forever'")),
    "timeout-zero": (task('timeout = "0s"'), ("timeout", "positive")),
    "timeout-bool": (task("timeout = true"), ("timeout", "duration")),
    "ignore-failure-string": (task('ignore_failure = "yes"'), ("ignore_failure", "true or false")),
    "unknown-job-key": (job('retry = 3'), ("job 'j'", "unknown key 'retry'")),
    "unknown-task-key": (task('depends_on = ["x"]'), ("task 'a'", "unknown key 'depends_on'")),
    "params-a-string": (task('params = "region=EU"'), ("task 'a'", "params must be a table")),
    "params-a-list": (task('params = ["EU"]'), ("params must be a table",)),
    "params-with-a-toml-date": (task("params = { day = 2026-12-01 }"), ("params.day", "date")),
    "params-with-a-toml-time": (task("params = { at = 02:00:00 }"), ("params.at", "time")),
    "params-with-a-nested-time": (task("params = { list = [{ at = 02:00:00 }] }"), ("params.list[0].at", "time")),
    "schedule-not-a-table": (job('schedule = "daily"'), ("schedule must be a table",)),
    "job-array-mixed-with-top-level-keys": ('description = "x"\n[[job]]\nname = "j"\n' + OK_TASK.replace(
        "[[tasks]]", "[[job.tasks]]"), ("[[job]]", "nothing else at the top level")),
    "job-key-a-string": ('job = "j"\n', ("[[job]]",)),
    "job-array-entry-not-a-table": ('job = ["j"]\n', ("each [[job]] entry must be a table",)),
    "job-array-empty": ("job = []\n", ("[[job]]",)),
    "duplicate-job-names": ('[[job]]\nname = "j"\n[[job.tasks]]\nname = "a"\nrun = "m:f"\n'
                            '[[job]]\nname = "j"\n[[job.tasks]]\nname = "b"\nrun = "m:f"\n',
                            ("job 'j' is defined twice",)),
    "one-valid-one-invalid-job": ('[[job]]\nname = "good"\n[[job.tasks]]\nname = "a"\nrun = "m:f"\n'
                                  '[[job]]\nname = "bad"\n[[job.tasks]]\nname = "a"\nrun = "m:f"\n'
                                  'after = { a = "succeeded" }\n', ("job 'bad'", "depends on itself")),
    "invalid-job-first-valid-second": ('[[job]]\nname = "bad"\npriority = "top"\n[[job.tasks]]\nname = "a"\n'
                                       'run = "m:f"\n[[job]]\nname = "good"\n[[job.tasks]]\nname = "a"\n'
                                       'run = "m:f"\n', ("job 'bad'", "priority", "'top'")),
}

# Cases also run through a real `python -m actorbatch` process (slower: one interpreter each).
SUBPROCESS_CASES = ("malformed-toml", "not-utf8", "cycle-of-three", "one-valid-one-invalid-job", "unknown-task-key")

runner = CliRunner()


@pytest.fixture
def url(db_url: str) -> str:
    """An initialised store that already holds one job, so "unchanged" means more than "still empty"."""
    result = cli(db_url, "job", "add", str(EXAMPLES / "month-end-report.toml"))
    assert result.exit_code == 0, result.output
    return db_url


def cli(url: str, *args: str) -> Result:
    return runner.invoke(app, ["--db", url, *args])


def snapshot(url: str) -> tuple[int, list[tuple[Any, ...]]]:
    """The store's head and every notification as stored, bytes included."""
    with actorbatch.connect(url) as client:
        notes = client.store.read_raw(0, limit=100_000)
        return client.store.head(), [(n.id, n.originator_id, n.originator_version, n.topic, bytes(n.state))
                                     for n in notes]


def write(directory: Path, name: str, content: str | bytes) -> Path:
    path = directory / f"{name}.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def assert_one_error_line(stderr: str, expected: tuple[str, ...]) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in stderr
    for fragment in expected:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


def assert_rejected(url: str, path: Path, expected: tuple[str, ...], *extra: str) -> None:
    before = snapshot(url)
    result = cli(url, "job", "add", str(path), *extra)
    assert result.exit_code == 1, (result.exit_code, result.output, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout == ""
    assert_one_error_line(result.stderr, expected)
    assert snapshot(url) == before


@pytest.mark.parametrize("replace", [False, True], ids=["add", "replace"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_job_file_exits_1_with_one_line_and_writes_nothing(url: str, tmp_path: Path, case: str,
                                                               replace: bool) -> None:
    content, expected = BAD[case]
    path = write(tmp_path, case, content)
    assert_rejected(url, path, (str(path), *expected), *(["--replace"] if replace else []))


def test_every_bad_file_in_tests_jobs_is_rejected(url: str) -> None:
    """The checked-in bad files: the first line of each says `# expect: <substring>`."""
    files = sorted(JOBS.glob("*.toml"))
    assert len(files) >= 3
    for path in files:
        expected = path.read_text(encoding="utf-8").splitlines()[0].removeprefix("# expect:").strip()
        assert_rejected(url, path, (path.name, expected))


def test_missing_file(url: str, tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert_rejected(url, missing, (str(missing), "cannot read", "No such file"))


def test_a_directory_is_not_a_job_file(url: str, tmp_path: Path) -> None:
    assert_rejected(url, tmp_path, (str(tmp_path), "cannot read"))


def test_adding_an_existing_job_needs_replace(url: str) -> None:
    assert_rejected(url, EXAMPLES / "month-end-report.toml", ("'month-end-report' already exists", "--replace"))


def test_a_job_file_with_one_new_and_one_existing_job_adds_neither_without_replace(url: str, tmp_path: Path) -> None:
    path = write(tmp_path, "two", '[[job]]\nname = "brand-new"\n[[job.tasks]]\nname = "a"\nrun = "m:f"\n'
                                  '[[job]]\nname = "month-end-report"\n[[job.tasks]]\nname = "a"\nrun = "m:f"\n')
    assert_rejected(url, path, ("'month-end-report' already exists",))
    assert cli(url, "job", "show", "brand-new").exit_code == 1


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_bad_job_file_in_a_real_process(url: str, tmp_path: Path, case: str) -> None:
    content, expected = BAD[case]
    path = write(tmp_path, case, content)
    before = snapshot(url)
    proc = subprocess.run([sys.executable, "-m", "actorbatch", "--db", url, "job", "add", str(path)],
                          check=False, capture_output=True, text=True, timeout=30, env={**os.environ, "COLUMNS": "80"})
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert_one_error_line(proc.stderr, (str(path), *expected))
    assert snapshot(url) == before


def test_missing_file_and_existing_job_in_a_real_process(url: str, tmp_path: Path) -> None:
    before = snapshot(url)
    for path, expected in ((tmp_path / "nope.toml", "cannot read"),
                           (EXAMPLES / "month-end-report.toml", "already exists")):
        proc = subprocess.run([sys.executable, "-m", "actorbatch", "--db", url, "job", "add", str(path)],
                              check=False, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        assert_one_error_line(proc.stderr, (expected,))
    assert snapshot(url) == before


# ---- good files ----

@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_the_example_files_add_fine(db_url: str, example: str) -> None:
    result = cli(db_url, "job", "add", str(EXAMPLES / example))
    assert result.exit_code == 0, result.output
    name = example.removesuffix(".toml")
    assert f"added job {name}" in result.stdout
    shown = cli(db_url, "job", "show", name, "--json")
    assert shown.exit_code == 0
    assert [j["name"] for j in _json(cli(db_url, "job", "list", "--json"))] == [name]


def test_a_job_array_file_adds_every_job_in_one_append(db_url: str, tmp_path: Path) -> None:
    path = write(tmp_path, "pair", '[[job]]\nname = "first"\n[[job.tasks]]\nname = "a"\nrun = "m:f"\n'
                                   '[[job]]\nname = "second"\npriority = "high"\n[[job.tasks]]\nname = "x"\n'
                                   'command = ["true"]\n[[job.tasks]]\nname = "y"\nrun = "m:f"\n'
                                   'after = { x = "ended" }\n')
    head = snapshot(db_url)[0]
    result = cli(db_url, "job", "add", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["added job first (1 tasks)", "added job second (2 tasks)"]
    jobs = {j["name"]: j for j in _json(cli(db_url, "job", "list", "--json"))}
    assert set(jobs) == {"first", "second"} and jobs["second"]["tasks"] == 2
    assert snapshot(db_url)[0] == head + 2


def test_replace_is_required_to_change_a_job_and_works_with_it(db_url: str, tmp_path: Path) -> None:
    path = write(tmp_path, "j", job(tasks=OK_TASK))
    assert cli(db_url, "job", "add", str(path)).exit_code == 0
    changed = write(tmp_path, "j2", job('priority = "critical"',
                                        tasks=OK_TASK + '[[tasks]]\nname = "b"\nrun = "m:f"\n'))
    before = snapshot(db_url)
    refused = cli(db_url, "job", "add", str(changed))
    assert refused.exit_code == 1
    assert_one_error_line(refused.stderr, ("job 'j' already exists", "--replace"))
    assert snapshot(db_url) == before
    assert _json(cli(db_url, "job", "list", "--json"))[0]["tasks"] == 1

    replaced = cli(db_url, "job", "add", str(changed), "--replace")
    assert replaced.exit_code == 0, replaced.output
    assert "replaced job j (2 tasks)" in replaced.stdout
    shown = _json(cli(db_url, "job", "show", "j", "--json"))
    assert shown["tasks"] == 2 and shown["definition"]["priority"] == "critical"


def test_a_removed_job_can_be_added_again_without_replace(db_url: str, tmp_path: Path) -> None:
    path = write(tmp_path, "j", job())
    assert cli(db_url, "job", "add", str(path)).exit_code == 0
    assert cli(db_url, "job", "remove", "j").exit_code == 0
    again = cli(db_url, "job", "add", str(path))
    assert again.exit_code == 0, again.output
    assert [j["name"] for j in _json(cli(db_url, "job", "list", "--json"))] == ["j"]


def test_a_long_chain_of_tasks_is_a_valid_job(db_url: str, tmp_path: Path) -> None:
    tasks = "".join(f'[[tasks]]\nname = "t{i}"\nrun = "m:f"\n' + (f'after = {{ t{i - 1} = "succeeded" }}\n' if i
                                                                   else "") for i in range(300))
    result = cli(db_url, "job", "add", str(write(tmp_path, "chain", job(tasks=tasks))))
    assert result.exit_code == 0, result.stderr


def test_a_very_long_chain_listed_child_first_is_a_valid_job(db_url: str, tmp_path: Path) -> None:
    tasks = "".join(f'[[tasks]]\nname = "t{i}"\nrun = "m:f"\n' + (f'after = {{ t{i - 1} = "succeeded" }}\n' if i
                                                                   else "") for i in reversed(range(1500)))
    result = cli(db_url, "job", "add", str(write(tmp_path, "chain", job(tasks=tasks))))
    assert result.exit_code == 0, result.stderr


def test_job_add_on_a_missing_store_does_not_create_it(tmp_path: Path) -> None:
    db = tmp_path / "none.db"
    result = cli(f"sqlite:///{db}", "job", "add", str(EXAMPLES / "month-end-report.toml"))
    assert result.exit_code == 1
    assert_one_error_line(result.stderr, ("actorbatch init",))
    assert not db.exists()


def _json(result: Result) -> Any:
    import json

    assert result.exit_code == 0, (result.output, result.stderr)
    return json.loads(result.stdout)
