"""Real server processes on one store: sharing work, kill -9 and recovery, draining on SIGTERM."""

import os
import time
from pathlib import Path

import pytest

import actorbatch
from actorbatch.domain.jobfile import parse_job
from tests.processes import kill9, start_server, stop, wait_for

pytestmark = pytest.mark.slow


def wide_job(name: str, width: int, folder: Path, seconds: float) -> actorbatch.JobDefinition:
    return parse_job({"name": name, "tasks": [
        {"name": f"t{i:02d}", "run": "tests.bodies:marker", "params": {"dir": str(folder), "seconds": seconds}}
        for i in range(width)]})


def markers(folder: Path, suffix: str) -> dict[str, tuple[float, int]]:
    result = {}
    for path in folder.glob(f"*{suffix}"):
        at, pid = path.read_text().split()
        result[path.name.removesuffix(suffix)] = (float(at), int(pid))
    return result


def test_two_servers_share_a_wide_job_and_each_task_succeeds_exactly_once(client: actorbatch.Client,
                                                                           db_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "markers"
    folder.mkdir()
    client.add_job(wide_job("wide", 40, folder, 0.05))
    servers = [start_server(db_url, f"s{i}", threads=3) for i in (1, 2)]
    try:
        wait_for(lambda: sum(s["alive"] for s in client.servers()) == 2, 30, "both servers to be up")
        run_id = client.run_job("wide")
        detail = client.wait(run_id, timeout=60)
    finally:
        codes = [stop(p) for p in servers]
    assert codes == [0, 0]
    assert detail["status"] == "succeeded"
    assert all(t["attempts"] == 1 and t["status"] == "succeeded" for t in detail["tasks"])
    started = markers(folder, ".start")
    assert sorted(started) == sorted(f"t{i:02d}.1" for i in range(40))  # every task ran once, attempt 1
    assert len({pid for _, pid in started.values()}) == 2  # both servers took part
    assert {t["server"] for t in detail["tasks"]} == {"s1", "s2"}


def test_kill_9_mid_task_retries_on_the_other_server_without_overlap(client: actorbatch.Client, db_url: str,
                                                                     tmp_path: Path) -> None:
    folder = tmp_path / "markers"
    folder.mkdir()
    lease_timeout_s = 2.0
    client.add_job(wide_job("slow", 4, folder, 1.5))
    victim = start_server(db_url, "victim", threads=4, lease_timeout_s=lease_timeout_s)
    survivor = None
    try:
        run_id = client.run_job("slow")
        wait_for(lambda: len(markers(folder, ".start")) == 4, 30, "the victim to start all four tasks")
        survivor = start_server(db_url, "survivor", threads=4, lease_timeout_s=lease_timeout_s)
        kill9(victim)
        killed_at = time.time()
        detail = client.wait(run_id, timeout=60)
    finally:
        if victim.poll() is None:
            kill9(victim)
        if survivor is not None:
            assert stop(survivor) == 0
    assert detail["status"] == "succeeded"
    started, ended = markers(folder, ".start"), markers(folder, ".end")
    for task in detail["tasks"]:
        first, second = started[f"{task['name']}.1"], started[f"{task['name']}.2"]
        assert f"{task['name']}.1" not in ended  # the killed attempt never finished
        assert first[1] == victim.pid and second[1] == survivor.pid
        assert second[0] > killed_at  # no overlap: the retry started after the first attempt died
        assert second[0] - killed_at < lease_timeout_s + 1.5  # recovered within the lease timeout (+ slack)
        assert task["attempts"] == 2 and task["server"] == "survivor"
        assert task["status"] == "succeeded"
        history = client.run(run_id)["tasks"][0]["history"]
        assert history[0]["outcome"] == "lost: server victim stopped responding"


def test_kill_9_also_ends_the_shell_commands_the_server_started(client: actorbatch.Client, db_url: str,
                                                                tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    script = f"sleep 60 & echo $$ $! > {pidfile}.partial; mv {pidfile}.partial {pidfile}; wait"
    client.add_job(parse_job({"name": "shell", "tasks": [{"name": "sleeper", "command": ["sh", "-c", script]}]}))
    server = start_server(db_url, "parent")
    try:
        client.run_job("shell")
        wait_for(pidfile.exists, 30, "the command to start")
        pids = [int(p) for p in pidfile.read_text().split()]  # the command, and a process it started
        for pid in pids:
            os.kill(pid, 0)  # alive while their server is
        kill9(server)
        wait_for(lambda: not any(_alive(p) for p in pids), 5, "the orphaned command and its child to die")
    finally:
        if server.poll() is None:
            kill9(server)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie that no one reaped yet counts as dead.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_sigterm_drains_running_tasks_and_exits_0(client: actorbatch.Client, db_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "markers"
    folder.mkdir()
    client.add_job(wide_job("drain", 2, folder, 1.0))
    server = start_server(db_url, "drainer")
    try:
        run_id = client.run_job("drain")
        wait_for(lambda: len(markers(folder, ".start")) == 2, 30, "both tasks to start")
    finally:
        assert stop(server) == 0
    assert len(markers(folder, ".end")) == 2  # the running tasks finished before exit
    assert client.run(run_id)["status"] == "succeeded"
    assert [s["alive"] for s in client.servers()] == [False]


def test_a_second_server_under_the_same_name_stops_the_first(client: actorbatch.Client, db_url: str,
                                                             tmp_path: Path) -> None:
    first = start_server(db_url, "twin", lease_timeout_s=0.6)
    try:
        wait_for(lambda: any(s["alive"] for s in client.servers()), 30, "the first server to start")
        second = start_server(db_url, "twin", lease_timeout_s=0.6)
        try:
            assert first.wait(timeout=30) == 1  # its next heartbeat conflicted: it stopped itself
            assert second.poll() is None
        finally:
            assert stop(second) == 0
    finally:
        if first.poll() is None:
            kill9(first)


def test_server_drain_stops_a_server_from_another_process(client: actorbatch.Client, db_url: str,
                                                          tmp_path: Path) -> None:
    folder = tmp_path / "markers"
    folder.mkdir()
    client.add_job(wide_job("drained", 1, folder, 1.0))
    server = start_server(db_url, "drainee")
    try:
        run_id = client.run_job("drained")
        wait_for(lambda: len(markers(folder, ".start")) == 1, 30, "the task to start")
        client.drain("drainee")
        assert server.wait(timeout=30) == 0
        assert len(markers(folder, ".end")) == 1  # the running task finished first
        assert client.run(run_id)["status"] == "succeeded"
        assert [e["action"] for e in client.audit()][-1] == "server.drain_requested"
    finally:
        if server.poll() is None:
            kill9(server)
    with pytest.raises(actorbatch.NotFound):
        client.drain("drainee")  # no longer alive
    restarted = start_server(db_url, "drainee")
    try:  # the old request is not for the new process
        wait_for(lambda: any(s["alive"] for s in client.servers()), 30, "the restart")
        time.sleep(0.5)
        assert restarted.poll() is None
    finally:
        assert stop(restarted) == 0
