"""What-if replay: the workload of a recorded log, simulated again under other settings.

    python -m simulations.whatif --db sqlite:///actorbatch.db --servers 4 --threads 8
    python -m simulations.whatif --db URL --window "mon-fri 08:00-18:00=2" --misfire run-all --report

The users' events are appended again when they happened; scheduled runs are created again by the simulated
schedulers (with the same ids, so each run finds its recorded attempts); every attempt takes the time and has the
outcome it had (a task the recording never ran takes its job's typical time and succeeds). Periods when no
recorded server was up are outages of the replayed cluster too, so the misfire policy has something to do. The
recording, its replay as recorded (which shows how far to trust the simulation) and the what-if are compared.
"""

import argparse
import itertools
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from uuid import UUID

from actorbatch.behaviours.leasing import Attempt
from actorbatch.clock import monotonic_s
from actorbatch.domain.events import Event
from actorbatch.domain.jobs import JobAdded, JobReplaced
from actorbatch.domain.recurrence import MISFIRE_POLICIES
from actorbatch.domain.servers import parse_window
from simulations.config import Fault, FaultSpec, ServerSpec, SimConfig, Timing, WorkloadSpec
from simulations.metrics import Capacity, Metrics, measure
from simulations.recording import Recording, read_recording
from simulations.report import result_metrics, write_report
from simulations.simulator import Result, Simulation
from simulations.workload import Workload

LIVENESS_S = 48 * 3600.0
UNKNOWN_S = 1.0  # how long a task takes that nobody ever ran


class RecordedBodies:
    """Each attempt takes the time and has the outcome of the recording's next attempt of that task."""

    def __init__(self, recording: Recording) -> None:
        self.attempts: dict[tuple[UUID, str], list[tuple[float, str | None]]] = {}
        durations: dict[tuple[str, str], list[float]] = {}
        for run in recording.views.runs.values():
            for name, task in run.tasks.items():
                for entry in task.history:
                    outcome = entry["outcome"]
                    if entry["ended_at"] is None or outcome is None or outcome.startswith(("lost:", "cancelled")):
                        continue  # its server died, or it was cut short: nothing to learn about the task
                    duration_s = (entry["ended_at"] - entry["started_at"]).total_seconds()
                    self.attempts.setdefault((run.id, name), []).append(
                        (duration_s, None if outcome == "succeeded" else outcome))
                    durations.setdefault((run.job, name), []).append(duration_s)
        self.typical_s = {key: statistics.median(values) for key, values in durations.items()}
        self._used: dict[tuple[UUID, str], int] = {}

    def outcome(self, attempt: Attempt) -> tuple[float, str | None]:
        key = (attempt.run_id, attempt.task)
        recorded = self.attempts.get(key, [])
        n = self._used.get(key, 0)
        self._used[key] = n + 1
        if n < len(recorded):
            return recorded[n]
        return self.typical_s.get((attempt.job, attempt.task), UNKNOWN_S), None


def recorded_servers(recording: Recording) -> tuple[ServerSpec, ...]:
    return tuple(ServerSpec(name, tuple(s.groups), s.threads) for name, s in sorted(recording.servers.items()))


def replay(recording: Recording, servers: Sequence[ServerSpec], misfire: str | None, keep_downtime: bool,
           lease_timeout_s: float | None, seed: int) -> Result:
    """Simulate the recording's workload on `servers`; `keep_downtime` replays each recorded server's own gaps,
    else only the moments when no server at all was up."""
    start = recording.start
    planned: list[Fault] = []
    gaps = ({name: _gaps(spans, start, recording.end) for name, spans in recording.up.items()} if keep_downtime
            else {s.name: recording.outages() for s in servers})
    for name, spans in gaps.items():
        planned.extend(Fault("crash", name, (a - start).total_seconds(), (b - a).total_seconds())
                       for a, b in spans if b > a)
    timeout_s = lease_timeout_s or max((s.lease_timeout_s for s in recording.servers.values()), default=30.0)
    config = SimConfig(seed=seed, name="whatif", start=start, safety_s=(recording.end - start).total_seconds() + 1,
                       liveness_s=LIVENESS_S, servers=tuple(servers), workload=WorkloadSpec(jobs=0),
                       faults=FaultSpec(planned=tuple(sorted(planned, key=lambda f: f.at_s))),
                       timing=Timing(lease_timeout_s=timeout_s), check_every_s=3600.0)
    events = tuple(_with_misfire(e, misfire) for e in recording.user_events())
    workload = Workload((), (), (), (), events, tuple((c.timestamp, c.originator_id)
                                                      for c in recording.cancellations()))
    return Simulation(config, workload, RecordedBodies(recording)).run()


def _gaps(spans: Sequence[tuple[datetime, datetime]], start: datetime,
          end: datetime) -> list[tuple[datetime, datetime]]:
    """When a server was down between its first start and the end (before it first started, it is starting)."""
    ordered = sorted(spans)
    return [(a[1], b[0]) for a, b in itertools.pairwise(ordered)] + (
        [(ordered[-1][1], end)] if ordered and ordered[-1][1] < end else [])


def _with_misfire(event: Event, misfire: str | None) -> Event:
    if misfire is None or not isinstance(event, JobAdded | JobReplaced) or event.definition["schedule"] is None:
        return event
    definition = {**event.definition, "schedule": {**event.definition["schedule"], "misfire": misfire}}
    return replace(event, definition=definition)


def recording_metrics(recording: Recording) -> Metrics:
    """The recording's own figures; a server's capacity is its --threads (the log does not keep its windows)."""
    capacities = {name: _always(s.threads) for name, s in recording.servers.items()}
    return measure(recording.events, recording.start, recording.end, capacities, recording.up)


def _always(threads: int) -> Capacity:
    return lambda _: threads


def compare(columns: dict[str, Metrics]) -> str:
    """A table: one row per figure, one column per run of the workload."""
    rows: list[tuple[str, Callable[[Metrics], str]]] = [("runs", lambda m: f"{m.counts['runs']:,}"),
            ("tasks ended per hour", lambda m: f"{m.throughput_per_h:,.0f}"),
            ("deepest queue (tasks)", lambda m: f"{max(m.queue.values, default=0):,.0f}"),
            *((f"run start lateness {p}", _quantile("run_start_late_s", p)) for p in ("p50", "p90", "p99", "max")),
            *((f"task wait {p}", _quantile("task_wait_s", p)) for p in ("p50", "p99")),
            ("due to complete p99", _quantile("run_duration_s", "p99")),
            ("mean utilisation", lambda m: f"{statistics.fmean(m.utilisation.values() or [0]):.0%}")]
    width = max(len(name) for name in columns) + 2
    lines = [f"{'':28}" + "".join(f"{name:>{width}}" for name in columns)]
    lines += [f"{label:28}" + "".join(f"{cell(m):>{width}}" for m in columns.values()) for label, cell in rows]
    return "\n".join(lines)


def _quantile(figure: str, p: str) -> Callable[[Metrics], str]:
    """A cell: one percentile of one of the distributions of Metrics, in seconds."""

    def cell(metrics: Metrics) -> str:
        value = getattr(metrics, figure).get(p)
        return "-" if value is None else f"{value:,.1f} s"

    return cell


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulations.whatif", description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="the recorded store, e.g. sqlite:///actorbatch.db")
    parser.add_argument("--servers", type=int, help="this many servers instead of the recorded ones")
    parser.add_argument("--threads", type=int, help="threads per server (default: the recorded servers' most)")
    parser.add_argument("--groups", help="comma-separated groups of every server (default: all recorded ones)")
    parser.add_argument("--window", action="append", default=[], help="e.g. 'mon-fri 08:00-18:00=2'")
    parser.add_argument("--timezone", default="UTC", help="zone of the windows")
    parser.add_argument("--misfire", choices=MISFIRE_POLICIES, help="another misfire policy for every schedule")
    parser.add_argument("--lease-timeout", type=float, help="seconds (default: the recorded one)")
    parser.add_argument("--seed", type=int, default=0, help="for the few random choices a replay makes")
    parser.add_argument("--report", action="store_true", help="also write the what-if's report")
    args = parser.parse_args(argv)
    for window in args.window:
        parse_window(window)  # a bad spec fails here, with the CLI's message
    recording = read_recording(args.db)
    recorded = recorded_servers(recording)
    groups = tuple(args.groups.split(",")) if args.groups else tuple(sorted({g for s in recorded for g in s.groups}))
    threads = args.threads or max((s.threads for s in recorded), default=4)
    count = args.servers or len(recorded)
    servers = tuple(ServerSpec(f"whatif{i + 1}", groups, threads, tuple(args.window), args.timezone)
                    for i in range(count))
    print(f"recording: {len(recording.events):,} events from {recording.start:%Y-%m-%d %H:%M} to "
          f"{recording.end:%Y-%m-%d %H:%M} UTC, {len(recorded)} servers, {len(recording.outages())} outages")
    started = monotonic_s()
    as_recorded = replay(recording, recorded, None, True, args.lease_timeout, args.seed)
    what_if = replay(recording, servers, args.misfire, False, args.lease_timeout, args.seed)
    print(f"simulated twice in {monotonic_s() - started:.1f} s")
    for label, result in (("as recorded", as_recorded), ("what-if", what_if)):
        if result.failure is not None:
            print(f"{label}: a check FAILED: {result.failure}", file=sys.stderr)
    print(compare({"recorded": recording_metrics(recording), "replayed": result_metrics(as_recorded),
                   "what-if": result_metrics(what_if)}))
    print(f"what-if: {count} servers x {threads} threads, groups {','.join(groups)}"
          + (f", windows {'; '.join(args.window)}" if args.window else "")
          + (f", misfire {args.misfire}" if args.misfire else ""))
    if args.report:
        print(f"report: {write_report(what_if, 0.0, Path('simulations') / 'reports' / 'whatif')}")
    return 0 if as_recorded.failure is None and what_if.failure is None else 1


if __name__ == "__main__":
    sys.exit(main())
