"""Swarm testing: every knob of a simulation drawn from its seed, so that many seeds cover many kinds of cluster.

One seed gives the number of servers and their threads, groups, windows and clock skews; the job mix and its
schedules; how fast servers hear each other; and the faults: crashes and restarts, servers lost for good, pauses
longer than the lease timeout, failing and ambiguous writes, slow tasks. Knobs are drawn independently, so most
seeds leave some faults out altogether, which finds the bugs that a uniform mix of everything would drown.
"""

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from simulations.config import Fault, FaultSpec, ServerSpec, SimConfig, Timing, WorkloadSpec
from simulations.workload import offered_load

EPOCH = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
GROUPS = ("default", "reports", "finance")
DAYS = ("mon-fri", "sat,sun", "mon-sun", "tue,thu")
SCHEDULE_KINDS = ("every", "hourly", "cron", "daily")
UTILISATION = 0.4


def swarm(seed: int) -> SimConfig:
    """A small cluster and workload (seconds of wall time), every choice drawn from `seed`."""
    rng = random.Random(f"swarm:{seed}")
    lease_timeout_s = rng.choice((5.0, 10.0, 30.0, 60.0))
    timing = Timing(lease_timeout_s=lease_timeout_s, tick_s=rng.choice((0.25, 1.0, 2.0)),
                    poll_s=rng.choice(((0.001, 0.01), (0.01, 0.2), (0.1, 1.0))),
                    views_lag=rng.choice(((0, 0), (0, 20), (0, 1000))))
    groups = GROUPS[:rng.randint(1, len(GROUPS))]
    servers = _servers(rng, groups, lease_timeout_s)
    safety_s = rng.uniform(1200, 5400)
    return _drains(rng, _alerts(rng, SimConfig(
        seed=seed, name="swarm", start=EPOCH + timedelta(hours=rng.randrange(0, 24 * 7)),
        safety_s=safety_s, liveness_s=12 * 3600.0, servers=servers, workload=_workload(rng, groups, servers),
        faults=_faults(rng, servers, safety_s, lease_timeout_s), timing=timing, check_every_s=300.0)))


def _servers(rng: random.Random, groups: tuple[str, ...], lease_timeout_s: float) -> tuple[ServerSpec, ...]:
    count = rng.randint(1, 5)
    skew_s = rng.choice((0.0, lease_timeout_s / 20, lease_timeout_s / 5))
    servers = []
    for i in range(count):
        served = tuple(g for g in groups if rng.random() < 0.6) or (groups[i % len(groups)],)
        threads = rng.randint(1, 8)
        windows: tuple[str, ...] = ()
        if rng.random() < 0.3:
            start = rng.randrange(0, 23)
            windows = (f"{rng.choice(DAYS)} {start:02d}:00-{rng.randrange(start + 1, 25) % 24:02d}:00="
                       f"{rng.randint(1, threads)}",)
        servers.append(ServerSpec(f"s{i + 1}", served, threads, windows, rng.choice(("UTC", "Europe/Berlin")),
                                  rng.uniform(-skew_s, skew_s)))
    for i, group in enumerate(groups):  # every group has a server, so every run can complete
        if not any(group in s.groups for s in servers):
            spec = servers[i % count]
            servers[i % count] = ServerSpec(spec.name, (*spec.groups, group), spec.threads, spec.windows,
                                            spec.timezone, spec.skew_s)
    return tuple(servers)


def _workload(rng: random.Random, groups: tuple[str, ...], servers: tuple[ServerSpec, ...]) -> WorkloadSpec:
    """A mix whose tasks are shortened until it offers the cluster at most UTILISATION of its threads (with all
    servers up, at their smallest window), or liveness would be a question of capacity, not of correctness."""
    shortest_s = rng.choice((0.2, 2.0, 10.0))
    scheduled = rng.choice((0.0, 0.3, 0.7))
    spec = WorkloadSpec(
        jobs=rng.randint(3, 40),
        shapes={shape: rng.choice((0.0, 1.0, 3.0)) or 0.1 for shape in ("single", "chain", "fan", "ax")},
        groups=groups,
        task_s=(shortest_s, shortest_s * rng.choice((5, 30, 100))),
        fail_p=rng.choice((0.0, 0.05, 0.3)),
        retries=rng.randint(0, 3),
        retry_delay_s=(1.0, rng.choice((5.0, 60.0))),
        timeout_share=rng.choice((0.0, 0.1, 0.5)),
        scheduled=scheduled,
        rules={kind: rng.random() for kind in SCHEDULE_KINDS} | {"every": 1.0},  # so that schedules fire
        every=("30s", "1m", "2m", "5m", "10m"),
        timezones=("UTC", "Europe/Berlin", "America/New_York"),
        submissions_per_h=rng.choice((20.0, 200.0) if scheduled < 0.5 else (0.0, 20.0, 200.0)),
        later_share=rng.choice((0.0, 0.3)),
        cancels_per_h=rng.choice((0.0, 2.0, 10.0)),
        reschedules_per_h=rng.choice((0.0, 2.0, 10.0)),
    )
    threads = min(sum(min([s.threads, *(int(w.rsplit("=", 1)[1]) for w in s.windows)]) for s in servers
                      if group in s.groups) for group in groups)
    scale = min(1.0, UTILISATION * threads * 3600 / offered_load(spec))
    return replace(spec, task_s=(spec.task_s[0] * scale, spec.task_s[1] * scale))


def _faults(rng: random.Random, servers: tuple[ServerSpec, ...], safety_s: float,
            lease_timeout_s: float) -> FaultSpec:
    planned: list[Fault] = []
    for _ in range(rng.choice((0, 1, 3))):
        at_s = rng.uniform(0, safety_s)
        planned.append(Fault("crash", rng.choice(servers).name, at_s, rng.uniform(1, min(300, safety_s - at_s))))
    for _ in range(rng.choice((0, 1, 3))):
        at_s = rng.uniform(0, safety_s)
        planned.append(Fault("pause", rng.choice(servers).name, at_s,
                             min(rng.uniform(0.3, 4) * lease_timeout_s, safety_s - at_s)))
    for _ in range(rng.choice((0, 1, 2))):
        planned.append(Fault("fail", rng.choice(servers).name, rng.uniform(0, safety_s)))
    lost = _losable(rng, servers)
    if lost is not None:
        planned.append(Fault("crash", lost, rng.uniform(0, safety_s), None))
    write_fail_p, ambiguous_p = rng.choice((0.0, 0.0, 1e-4, 1e-3, 5e-3)), rng.choice((0.0, 1e-3))
    slow_p = rng.choice((0.0, 0.01, 0.05))
    for _ in range(rng.choice((0, 0, 1))):  # the store away for a while: drawn last, older draws stay as they were
        at_s = rng.uniform(0, safety_s)
        planned.append(Fault("outage", "", at_s, min(rng.uniform(1, 2 * lease_timeout_s), safety_s - at_s)))
    return FaultSpec(planned=tuple(sorted(planned, key=lambda f: f.at_s)), write_fail_p=write_fail_p,
                     ambiguous_p=ambiguous_p, slow_p=slow_p)


def _alerts(rng: random.Random, config: SimConfig) -> SimConfig:
    """Alerts policies, webhooks and a flaky SMTP server and webhook receivers (down for a while, sometimes):
    drawn after everything else, so that every other knob of a seed is what it was before alerts existed."""
    workload = replace(config.workload, webhooks=rng.choice((0.0, 0.5)),
                       alerts={"always": rng.choice((0.0, 1.0)), "on-error": 1.0, "never": rng.choice((0.0, 1.0))})
    planned = list(config.faults.planned)
    for _ in range(rng.choice((0, 1))):
        at_s = rng.uniform(0, config.safety_s)
        planned.append(Fault("endpoint", "", at_s, min(rng.uniform(10, 900), config.safety_s - at_s)))
    faults = replace(config.faults, planned=tuple(sorted(planned, key=lambda f: f.at_s)),
                     endpoint_fail_p=rng.choice((0.0, 0.1, 0.5)))
    return replace(config, workload=workload, faults=faults)


def _drains(rng: random.Random, config: SimConfig) -> SimConfig:
    """Operators draining servers (a rolling restart): drawn last, so every other knob of a seed stays as it was."""
    planned = [*config.faults.planned, *(Fault("drain", rng.choice(config.servers).name,
                                               rng.uniform(0, config.safety_s)) for _ in range(rng.choice((0, 1, 2))))]
    return replace(config, faults=replace(config.faults, planned=tuple(sorted(planned, key=lambda f: f.at_s))))


def _losable(rng: random.Random, servers: tuple[ServerSpec, ...]) -> str | None:
    """A server whose groups the others also serve, to lose for good (sometimes), or None."""
    if rng.random() < 0.7:
        return None
    for spec in servers:
        others = {g for s in servers if s is not spec for g in s.groups}
        if set(spec.groups) <= others:
            return spec.name
    return None
