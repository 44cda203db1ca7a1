"""Real-process load test: the simulator's job mix on real `actorbatch server start` processes, measured the same way.

    python -m simulations.load [--db URL] [--servers 3] [--threads 4] [--lease-timeout 5] [--minutes 2] [--kill]

It starts N servers on SQLite (a fresh file in a temporary folder) or PostgreSQL (the URL's database is
initialised, so give it an empty one), adds jobs made by the simulator's workload generator, whose tasks
(`simulations.bodies:simulated`) sleep and fail as their profiles say, submits runs through the Python API for the
given time, then stops the schedules and waits for every run to complete. With --kill it kill -9s one server
halfway and restarts it. It then reads the log back and prints the report's figures beside those of the same
workload replayed in the simulator, and checks the real log with the simulator's transition and fencing checks.
Unlike the rest of simulations/, this reads real time: it measures real processes.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import actorbatch
from simulations.checkers.transitions import illegal
from simulations.config import WorkloadSpec
from simulations.projection import Projection
from simulations.recording import Recording, read_recording
from simulations.report import REPORTS, result_metrics
from simulations.whatif import compare, recorded_servers, recording_metrics, replay
from simulations.workload import generate

ROOT = Path(__file__).resolve().parent.parent  # on the servers' PYTHONPATH, so they can import simulations.bodies
MIX = WorkloadSpec(jobs=30, task_s=(0.05, 1.0), fail_p=0.1, retries=2, retry_delay_s=(0.5, 2.0),
                   timeout_share=0.0, scheduled=0.3, rules={"every": 1.0}, every=("10s", "30s", "1m"),
                   submissions_per_h=1800.0, later_share=0.2, later_s=(1.0, 20.0))
DRAIN_TIMEOUT_S = 600.0


class Cluster:
    """The server processes, each in its own process group (kill -9 takes its task bodies down with it)."""

    def __init__(self, url: str, threads: int, lease_timeout_s: float, projector: str | None, out: Path) -> None:
        self.url, self.threads, self.lease_timeout_s, self.out = url, threads, lease_timeout_s, out
        self.options = ["--projector", projector] if projector else []
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, "-m", "actorbatch", "--db", self.url, "server", "start", "--name", name,
                   "--threads", str(self.threads), "--lease-timeout", str(self.lease_timeout_s), *self.options]
        with self.out.open("ab") as out:
            self.procs[name] = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                                start_new_session=True)

    def kill(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait()

    def stop(self) -> None:
        """SIGTERM: each server drains and exits."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def run_load(url: str, mix: WorkloadSpec, servers: int, threads: int, lease_timeout_s: float,
             projector: str | None, minutes: float, kill: bool, seed: int, out: Path) -> None:
    workload = generate(mix, random.Random(seed), minutes * 60)
    actorbatch.init(url)
    cluster = Cluster(url, threads, lease_timeout_s, projector, out)
    with actorbatch.connect(url, user="load") as ab:
        ab.add_jobs(list(workload.jobs))
        for i in range(servers):
            cluster.start(f"load{i + 1}")
        try:
            started, killed = time.monotonic(), not kill
            for submission in workload.submissions:
                time.sleep(max(0.0, started + submission.at_s - time.monotonic()))
                at = ab.clock.now() + timedelta(seconds=submission.due_in_s)
                ab.run_job(submission.job, at=at if submission.due_in_s else None)
                if not killed and time.monotonic() - started > minutes * 30:
                    cluster.kill("load1")
                    cluster.start("load1")
                    killed = True
            time.sleep(max(0.0, started + minutes * 60 - time.monotonic()))
            for job in workload.jobs:
                if job.schedule is not None:
                    ab.unschedule(job.name)
            _wait_for_runs(ab)
        finally:
            cluster.stop()


def _wait_for_runs(ab: actorbatch.Client) -> None:
    started = time.monotonic()
    while time.monotonic() < started + DRAIN_TIMEOUT_S:
        runs = ab.runs(limit=10**7)
        open_runs = sum(r["status"] not in ("succeeded", "failed", "cancelled") for r in runs)
        if not open_runs:
            return
        print(f"  {time.monotonic() - started:4.0f} s after the load: {open_runs} of {len(runs)} runs open",
              flush=True)
        time.sleep(5)
    raise actorbatch.ActorbatchError(f"runs still open {DRAIN_TIMEOUT_S:g}s after the load stopped")


def server_errors(out: Path) -> list[str]:
    """What the servers (and their read-model processes) reported as errors."""
    return [line for line in out.read_text(errors="replace").splitlines() if line.startswith("error")]


def check_log(recording: Recording) -> list[str]:
    """The simulator's transition and fencing checks, on a real log."""
    views, problems = Projection(), []
    for event in recording.events:
        problem = illegal(views, event)
        if problem is not None:
            problems.append(f"{problem[0]}: {problem[1]}")
        views.apply(event)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulations.load", description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="postgresql://... (initialised; give an empty database); default: SQLite in "
                        "a temporary folder")
    parser.add_argument("--servers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--lease-timeout", type=float, default=5.0)
    parser.add_argument("--minutes", type=float, default=2.0, help="how long to submit work")
    parser.add_argument("--jobs", type=int, default=MIX.jobs)
    parser.add_argument("--rate", type=float, default=MIX.submissions_per_h, help="on-demand runs per hour")
    parser.add_argument("--projector", choices=("thread", "process", "off"),
                        help="the servers' --projector (default: theirs)")
    parser.add_argument("--kill", action="store_true", help="kill -9 one server halfway, and restart it")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="actorbatch-load-"))
    url = args.db or f"sqlite:///{work / 'load.db'}"
    mix = replace(MIX, jobs=args.jobs, submissions_per_h=args.rate)
    print(f"store {url}; server output in {work / 'servers.out'}", flush=True)
    started = time.monotonic()
    run_load(url, mix, args.servers, args.threads, args.lease_timeout, args.projector, args.minutes, args.kill,
             args.seed, work / "servers.out")
    print(f"load done in {time.monotonic() - started:.0f} s", flush=True)
    recording = read_recording(url)
    problems = check_log(recording)
    simulated = replay(recording, recorded_servers(recording), None, True, None, args.seed)
    real, sim = recording_metrics(recording), result_metrics(simulated)
    print(compare({"real": real, "simulated": sim}))
    out = REPORTS / f"load-{args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "load.json").write_text(json.dumps({"url": url, "real": real.to_json(), "simulated": sim.to_json(),
                                               "problems": problems}, indent=1, default=str) + "\n")
    print(f"figures: {out / 'load.json'}")
    for problem in problems[:20]:
        print(f"CHECK FAILED on the real log: {problem}", file=sys.stderr)
    errors = server_errors(work / "servers.out")
    for error in errors:
        print(f"a server process reported: {error}", file=sys.stderr)
    return 1 if problems or errors or simulated.failure is not None else 0


if __name__ == "__main__":
    sys.exit(main())
