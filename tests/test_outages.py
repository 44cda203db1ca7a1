"""PostgreSQL stopped under running servers, then started again: every run completes, none twice, the servers
keep their process (or exit 1 and are restarted, as a process manager would), and SIGTERM stays bounded."""

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

import actorbatch
from actorbatch.domain.jobfile import parse_job
from actorbatch.errors import StoreUnavailable
from tests.processes import start_server, stop, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
LEASE_S = 3.0
T = TypeVar("T")


def cluster(action: str) -> None:
    version = os.listdir("/etc/postgresql")[0]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action], check=True,
                   capture_output=True, timeout=120)


@contextmanager
def postgres_down() -> Iterator[None]:
    """PostgreSQL stopped for the body of the block, and always started again."""
    if not os.path.isdir("/etc/postgresql"):
        pytest.skip("no local PostgreSQL cluster to stop")
    cluster("stop")
    try:
        yield
    finally:
        cluster("start")


def mixed_job(folder: Path, short: int, long: int, long_s: float) -> actorbatch.JobDefinition:
    tasks = [{"name": f"s{i:02d}", "run": "tests.bodies:marker", "params": {"dir": str(folder), "seconds": 0.05}}
             for i in range(short)]
    tasks += [{"name": f"l{i}", "run": "tests.bodies:marker", "params": {"dir": str(folder), "seconds": long_s}}
              for i in range(long)]
    return parse_job({"name": "mixed", "tasks": tasks})


class Servers:
    """Two server processes; one that exits is restarted, as `Restart=on-failure` would."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url, self.folder, self.restarts = url, folder, 0
        self.procs = {name: self._start(name) for name in ("s1", "s2")}

    def _start(self, name: str) -> subprocess.Popen[bytes]:
        return start_server(self.url, name, threads=3, lease_timeout_s=LEASE_S,
                            log=self.folder / f"{name}.{self.restarts}.log")

    def tend(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                self.restarts += 1
                self.procs[name] = self._start(name)

    def stop(self) -> list[int]:
        return [stop(p, timeout_s=60) for p in self.procs.values()]

    def logs(self) -> str:
        return "".join(p.read_text() for p in sorted(self.folder.glob("s*.log")))


def drill(url: str, tmp_path: Path, outage_s: float, short: int, long: int) -> None:
    """Two runs of short tasks and long ones (which span the outage) on two servers; PostgreSQL is stopped
    once some tasks have ended."""
    folders = [tmp_path / f"run{i}" for i in range(2)]
    for folder in folders:
        folder.mkdir()
    with actorbatch.connect(url, user="tester") as client:
        client.add_job(mixed_job(tmp_path, short, long, long_s=outage_s + 5))
        client.add_job(parse_job({"name": "probe", "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]}))
        servers = Servers(url, tmp_path)
        try:
            wait_for(lambda: len(client.servers()) == 2, 30, "both servers to register")
            runs = [client.run_job("mixed", params={"dir": str(folder)}) for folder in folders]
            wait_for(lambda: len(list(tmp_path.glob("run*/*.end"))) >= 5, 30, "some tasks to finish")
            with postgres_down():
                down_until = time.monotonic() + outage_s
                while time.monotonic() < down_until:
                    servers.tend()
                    time.sleep(0.2)
            back_at = time.monotonic()
            wait_run(client, servers, patiently(lambda: client.run_job("probe")))
            recovered_s = time.monotonic() - back_at
            details = [wait_run(client, servers, run_id) for run_id in runs]
            retried = [(t["name"], t["attempts"]) for d in details for t in d["tasks"] if t["attempts"] != 1]
            print(f"\n{outage_s:g} s outage: a new run completed {recovered_s:.1f} s after PostgreSQL started, "
                  f"every run {time.monotonic() - back_at:.1f} s after (long tasks end about 5 s after it); "
                  f"{servers.restarts} server restarts; tasks with more than one attempt: {retried}")
        finally:
            codes = servers.stop()
        assert codes == [0, 0], servers.logs()
        assert [d["status"] for d in details] == ["succeeded", "succeeded"]
        assert len(client.runs(job="mixed")) == 2  # no run duplicated
        for folder, detail in zip(folders, details, strict=True):
            for task in detail["tasks"]:
                assert_attempts_in_turn(folder, str(task["name"]), int(task["attempts"]))
        log = servers.logs()
        assert "Traceback" not in log, log
        assert_one_line_per_change_of_state(log)


def assert_one_line_per_change_of_state(log: str) -> None:
    """Each connection of each server (the store's, the listen connection) says it went away and came back in
    turn: a flap while PostgreSQL shuts down is two lines, an outage never more."""
    server, states = "", {}
    for line in log.splitlines():
        if line.startswith("server ") and " started: " in line:
            server = line.split()[1]
        elif "actorbatch.store: store " in line and ("unreachable" in line or "reachable again" in line):
            key = (server, "(listen connection)" in line)
            state = "down" if "unreachable" in line else "up"
            assert states.get(key, "up") != state, f"{key}: said {state} twice in a row\n{log}"
            states[key] = state
    assert states, log


def assert_attempts_in_turn(folder: Path, task: str, attempts: int) -> None:
    """Attempts 1..n of a task each ran (a marker per attempt, none twice), and never two at once."""
    starts = sorted(int(p.name.split(".")[1]) for p in folder.glob(f"{task}.*.start"))
    assert starts == list(range(1, attempts + 1)), (task, starts)
    for attempt in range(1, attempts):
        ended = folder / f"{task}.{attempt}.end"
        if ended.exists():
            assert stamp(folder / f"{task}.{attempt + 1}.start") >= stamp(ended), (task, attempt)


def stamp(path: Path) -> float:
    return float(path.read_text().split()[0])


def patiently(call: Callable[[], T]) -> T:
    """This client's connections died with the database: a call fails once per broken connection, then works."""
    for _ in range(20):
        try:
            return call()
        except StoreUnavailable:
            time.sleep(0.2)
    return call()


def wait_run(client: actorbatch.Client, servers: Servers, run_id: object) -> dict[str, object]:
    deadline = time.monotonic() + 120
    while True:
        servers.tend()
        detail = patiently(lambda: client.run(str(run_id)))
        if detail["status"] not in ("scheduled", "running") or time.monotonic() > deadline:
            return detail
        time.sleep(0.1)


@pytest.mark.timeout(300)
def test_a_60_s_outage_mid_run_loses_and_duplicates_nothing(pg_url: str, tmp_path: Path) -> None:
    drill(pg_url, tmp_path, outage_s=60, short=40, long=2)


def test_a_10_s_outage_mid_run_loses_and_duplicates_nothing(pg_url: str, tmp_path: Path) -> None:
    drill(pg_url, tmp_path, outage_s=10, short=20, long=1)


def test_sigterm_during_an_outage_exits_within_its_bound(pg_url: str, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server = start_server(pg_url, "s1", lease_timeout_s=LEASE_S, log=log)
    try:
        with actorbatch.connect(pg_url, user="tester") as client:
            wait_for(lambda: len(client.servers()) == 1, 30, "the server to register")
        with postgres_down():
            time.sleep(3)
            started = time.monotonic()
            code = stop(server, timeout_s=60)  # a hang guard, well above the bound
            print(f"\nSIGTERM during an outage: exit {code} after {time.monotonic() - started:.1f} s")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert code == 1
    assert log.read_text().splitlines()[-1].startswith("error: server s1 stopped with the store unreachable")
