"""Faults a real server process must survive or end cleanly: task bodies that exit, a full disk, a read-only
store."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import actorbatch
from actorbatch.domain.jobfile import parse_job
from tests.processes import ROOT, start_server, stop

pytestmark = pytest.mark.slow


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "actorbatch", "--db", url, *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_bodies_that_exit_or_return_too_much_fail_their_attempt_and_free_the_thread(
        client: actorbatch.Client, db_url: str, tmp_path: Path) -> None:
    bodies = {"exit": "exits", "interrupt": "interrupts", "huge": "huge", "object": "unencodable"}
    tasks = [{"name": name, "run": f"tests.bodies:{body}"} for name, body in bodies.items()]
    after = dict.fromkeys(bodies, "ended")  # runs only once every slot was given back
    tasks.append({"name": "last", "run": "tests.bodies:marker", "params": {"dir": str(tmp_path)}, "after": after})
    client.add_job(parse_job({"name": "hostile", "tasks": tasks}))
    server = start_server(db_url, "s1", threads=2)
    try:
        detail = client.wait(client.run_job("hostile"), timeout=60)
    finally:
        code = stop(server)
    statuses = {t["name"]: (t["status"], t["attempts"], t["exit_status"]) for t in detail["tasks"]}
    assert statuses == {
        "exit": ("failed", 1, "SystemExit: 3"),
        "interrupt": ("failed", 1, "KeyboardInterrupt"),
        "huge": ("failed", 1, "result too large: 5.0 MiB encoded > 1 MiB"),
        "object": ("failed", 1, "result of type object cannot be stored (must be msgpack-able)"),
        "last": ("succeeded", 1, None),
    }
    assert code == 0  # SIGTERM drained: no thread was left counted as busy


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB file system of its own, unmounted afterwards; skipped where mounting is not allowed."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True,
                             text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_stops_the_server_with_one_line_and_exit_1(tmpfs: Path) -> None:
    url = f"sqlite:///{tmpfs / 'actorbatch.db'}"
    actorbatch.init(url)
    with actorbatch.connect(url, user="tester") as client:
        client.add_job(parse_job({"name": "chatty", "tasks": [
            {"name": "t", "run": "tests.bodies:chatty", "params": {"lines": 200_000}}]}))
        run_id = client.run_job("chatty")
    log = tmpfs.parent / "server.log"
    server = start_server(url, "s1", log=log)
    try:
        code = server.wait(timeout=60)
    finally:
        stop(server)
    lines = log.read_text().splitlines()
    assert code == 1
    assert "Traceback" not in log.read_text()
    assert lines[-1] == f"error: server s1 stopped: store {url}: database or disk is full"
    shown = cli(url, "run", "show", str(run_id), "--json")  # acknowledged before the disk filled: still there
    assert shown.returncode == 0, shown.stderr


def test_read_commands_work_on_a_read_only_store_and_writes_are_refused_in_one_line(tmpfs: Path) -> None:
    url = f"sqlite:///{tmpfs / 'actorbatch.db'}"
    actorbatch.init(url)
    with actorbatch.connect(url, user="tester") as client:
        client.add_job(parse_job({"name": "nightly", "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]}))
        run_id = client.run_job("nightly")
        client.runs()  # the read models know the job and this run ...
        client.run_job("nightly")  # ... but not this one: they are behind the log
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    behind = f"warning: the read models may be behind the log: store {url}: attempt to write a readonly database\n"
    for command in (["job", "list"], ["run", "list"], ["run", "show", str(run_id)], ["status"], ["server", "list"],
                    ["audit", "log"]):
        result = cli(url, *command)
        assert (result.returncode, result.stderr) == (0, behind), command
    assert "nightly" in cli(url, "job", "list").stdout
    assert str(run_id) in cli(url, "run", "list").stdout
    refused = cli(url, "job", "run", "nightly")
    assert refused.returncode == 1
    assert refused.stderr == f"error: store {url}: attempt to write a readonly database\n"
    started = subprocess.run([sys.executable, "-m", "actorbatch", "--db", url, "server", "start", "--name", "s1"],
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                             timeout=60, check=False)
    assert started.returncode == 1
    assert started.stderr.strip().splitlines() == [f"error: store {url}: attempt to write a readonly database"]
