"""Scenario files: a TOML description of a cluster, a workload and its faults (see `scenarios/*.toml`).

What a scenario states is fixed; what it leaves open (where the random faults fall, each server's clock skew
within the stated bound, the jobs drawn from the mix) comes from the seed, so one scenario and many seeds explore
one situation many ways. Durations are written as in job files ("30s", "15m", "2h") or as seconds.
"""

import random
import tomllib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from actorbatch.domain.durations import parse_duration_s
from simulations.config import Fault, FaultSpec, ServerSpec, SimConfig, Timing, WorkloadSpec

FAULT_KINDS = ("crash", "pause", "fail", "drain", "outage", "endpoint")


class BadScenario(ValueError):
    """The scenario file breaks a rule; the message names the file and the key."""


def load_scenario(path: Path, seed: int) -> SimConfig:
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise BadScenario(f"{path}: {error}") from None
    rng = random.Random(f"scenario:{seed}")
    try:
        timing = _timing(table.get("timing", {}))
        safety_s = _seconds(table["safety"], "safety")
        servers = _servers(table["servers"], rng)
        return SimConfig(
            seed=seed, name=str(table.get("name", path.stem)), start=_start(table["start"]),
            safety_s=safety_s, liveness_s=_seconds(table.get("liveness", "12h"), "liveness"),
            servers=servers, workload=_workload(table["workload"]),
            faults=_faults(table.get("faults", {}), servers, safety_s, timing, rng), timing=timing,
            check_every_s=_seconds(table.get("check_every", "10m"), "check_every"), scenario=str(path))
    except KeyError as error:
        raise BadScenario(f"{path}: missing key {error}") from None
    except (ValueError, TypeError) as error:
        raise BadScenario(f"{path}: {error}") from None


def _seconds(value: object, where: str) -> float:
    return 0.0 if value == 0 else parse_duration_s(value, where)


def _span(value: object, where: str) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"{where}: expected [low, high], got {value!r}")
    return _seconds(value[0], where), _seconds(value[1], where)


def _pair(value: object, where: str) -> tuple[str, str]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"{where}: expected [\"HH:MM\", \"HH:MM\"], got {value!r}")
    return str(value[0]), str(value[1])


def _start(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"start: give a time zone offset, e.g. 2026-11-30T16:00:00Z, got {value!r}")
    return moment


def _timing(table: Mapping[str, Any]) -> Timing:
    default = Timing()
    return Timing(lease_timeout_s=_seconds(table.get("lease_timeout", default.lease_timeout_s), "lease_timeout"),
                  tick_s=_seconds(table.get("tick", default.tick_s), "tick"),
                  poll_s=_span(table["poll"], "poll") if "poll" in table else default.poll_s,
                  start_s=_span(table["start"], "start") if "start" in table else default.start_s,
                  lazy_heartbeats=bool(table.get("lazy_heartbeats", default.lazy_heartbeats)))


def _servers(tables: list[Mapping[str, Any]], rng: random.Random) -> tuple[ServerSpec, ...]:
    servers: list[ServerSpec] = []
    for table in tables:
        prefix, count = str(table.get("name", "s")), int(table.get("count", 1))
        skew_s = _seconds(table.get("skew", 0), "servers.skew")
        for _ in range(count):
            servers.append(ServerSpec(
                name=f"{prefix}{len([s for s in servers if s.name.startswith(prefix)]) + 1}",
                groups=tuple(table.get("groups", ("default",))), threads=int(table.get("threads", 4)),
                windows=tuple(table.get("windows", ())), timezone=str(table.get("timezone", "UTC")),
                skew_s=rng.uniform(-skew_s, skew_s), load_bias=float(table.get("load_bias", 1.0))))
    return tuple(servers)


def _workload(table: Mapping[str, Any]) -> WorkloadSpec:
    default = WorkloadSpec()
    return WorkloadSpec(
        jobs=int(table.get("jobs", default.jobs)),
        shapes=dict(table.get("shapes", default.shapes)),
        groups=tuple(table.get("groups", default.groups)),
        task_s=_span(table["task"], "workload.task") if "task" in table else default.task_s,
        fail_p=float(table.get("fail", default.fail_p)),
        retries=int(table.get("retries", default.retries)),
        retry_delay_s=_span(table["retry_delay"], "workload.retry_delay") if "retry_delay" in table
        else default.retry_delay_s,
        timeout_share=float(table.get("timeout_share", default.timeout_share)),
        priorities=dict(table.get("priorities", default.priorities)),
        scheduled=float(table.get("scheduled", default.scheduled)),
        rules=dict(table.get("rules", default.rules)),
        every=tuple(table.get("every", default.every)),
        fire_window=_pair(table.get("fire_window", default.fire_window), "workload.fire_window"),
        timezones=tuple(table.get("timezones", default.timezones)),
        submissions_per_h=float(table.get("submissions_per_hour", default.submissions_per_h)),
        later_share=float(table.get("later_share", default.later_share)),
        later_s=_span(table["later"], "workload.later") if "later" in table else default.later_s,
        cancels_per_h=float(table.get("cancels_per_hour", default.cancels_per_h)),
        reschedules_per_h=float(table.get("reschedules_per_hour", default.reschedules_per_h)),
        hostile_per_h=float(table.get("hostile_per_hour", default.hostile_per_h)),
        backfills_per_h=float(table.get("backfills_per_hour", default.backfills_per_h)),
        alerts=dict(table.get("alerts", default.alerts)),
        webhooks=float(table.get("webhooks", default.webhooks)),
    )


def _faults(table: Mapping[str, Any], servers: tuple[ServerSpec, ...], safety_s: float, timing: Timing,
            rng: random.Random) -> FaultSpec:
    names = [s.name for s in servers]
    planned = []
    for entry in table.get("planned", []):
        allowed = ("",) if entry["kind"] in ("outage", "endpoint") else tuple(names)  # not a server's
        if entry["kind"] not in FAULT_KINDS or entry.get("server", "") not in allowed:
            raise ValueError(f"faults.planned: kind must be one of {FAULT_KINDS} and server one of {names}, "
                             f"got {entry!r}")
        duration = _seconds(entry["for"], "faults.planned.for") if "for" in entry else None
        planned.append(Fault(entry["kind"], entry.get("server", ""), _seconds(entry["at"], "faults.planned.at"),
                             duration))
    for _ in range(int(table.get("random_crashes", 0))):
        at_s = rng.uniform(0, safety_s)
        planned.append(Fault("crash", rng.choice(names), at_s, min(rng.uniform(1, 300), safety_s - at_s)))
    for _ in range(int(table.get("random_pauses", 0))):
        at_s = rng.uniform(0, safety_s)
        planned.append(Fault("pause", rng.choice(names), at_s,
                             min(rng.uniform(0.3, 4) * timing.lease_timeout_s, safety_s - at_s)))
    for _ in range(int(table.get("random_fails", 0))):
        planned.append(Fault("fail", rng.choice(names), rng.uniform(0, safety_s)))
    return FaultSpec(planned=tuple(sorted(planned, key=lambda f: f.at_s)),
                     write_fail_p=float(table.get("write_fail", 0.0)),
                     ambiguous_p=float(table.get("ambiguous", 0.0)),
                     slow_p=float(table.get("slow", 0.0)), slow_factor=float(table.get("slow_factor", 20.0)),
                     endpoint_fail_p=float(table.get("endpoint_fail", 0.0)))
