"""The report of one simulation: report.json (every figure), summary.md (the few that matter) and overview.png,
in simulations/reports/<name>-<seed>/ (not committed)."""

import json
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from actorbatch.domain.servers import capacity, parse_window, zone
from simulations.config import ServerSpec, SimConfig
from simulations.metrics import Capacity, Metrics, measure
from simulations.plots import Mark, overview
from simulations.simulator import Result, up_intervals

REPORTS = Path(__file__).resolve().parent / "reports"


def server_capacity(spec: ServerSpec) -> Capacity:
    return partial(capacity, spec.threads, tuple(parse_window(w) for w in spec.windows), zone(spec.timezone))


def result_metrics(result: Result) -> Metrics:
    config = result.config
    end = config.start + timedelta(microseconds=result.ended_us)
    up = {name: [(_at(config, a), _at(config, b)) for a, b in spans]
          for name, spans in up_intervals(result.timeline, result.ended_us).items()}
    return measure((event for event, _ in result.log.entries), config.start, end,
                   {s.name: server_capacity(s) for s in config.servers}, up)


def marks(result: Result) -> list[Mark]:
    return [Mark(_at(result.config, c.at_us), c.server, c.kind, c.for_s) for c in result.timeline if c.kind != "start"]


def _at(config: SimConfig, at_us: int) -> datetime:
    return config.start + timedelta(microseconds=at_us)


def write_report(result: Result, wall_s: float, directory: Path | None = None) -> Path:
    config = result.config
    out = directory or REPORTS / f"{config.name}-{config.seed}"
    out.mkdir(parents=True, exist_ok=True)
    metrics = result_metrics(result)
    document = {"scenario": config.name, "seed": config.seed, "reproduce": config.reproduce(),
                "wall_s": round(wall_s, 2), "simulated_h": round(result.ended_us / 3.6e9, 3),
                "steps": result.steps, "log_digest": result.digest, "checks": _verdict(result),
                "excused_overlaps": result.overlaps, "servers": [vars(s) for s in config.servers],
                "faults": [vars(f) for f in config.faults.planned],
                "timeline": [vars(c) for c in result.timeline], "metrics": metrics.to_json()}
    (out / "report.json").write_text(json.dumps(document, indent=1, default=str) + "\n", encoding="utf-8")
    title = f"{config.name}, seed {config.seed}: {len(config.servers)} servers, {config.workload.jobs:,} jobs"
    overview(metrics, marks(result), out / "overview.png", title)
    (out / "summary.md").write_text(summary(result, metrics, wall_s), encoding="utf-8")
    return out


def _verdict(result: Result) -> str:
    return "all held" if result.failure is None else f"FAILED {result.failure}"


def summary(result: Result, metrics: Metrics, wall_s: float) -> str:
    config, c = result.config, metrics.counts
    lines = [f"# {config.name}, seed {config.seed}", "",
             f"Reproduce: `{config.reproduce()}`. Checks: {_verdict(result)}.", "",
             f"{result.ended_us / 3.6e9:.1f} h simulated in {wall_s:.1f} s of wall time; "
             f"{len(result.log.entries):,} events, log digest `{result.digest[:16]}`.", "",
             "![overview](overview.png)", "",
             "| figure | value |", "|---|---|",
             f"| runs | {c['runs']:,} ({_runs(c)}) |",
             f"| tasks ended per hour | {metrics.throughput_per_h:,.0f} mean, "
             f"{metrics.peak_throughput_per_h:,.0f} peak |",
             f"| run start lateness | {_quantiles(metrics.run_start_late_s)} |",
             f"| task wait for a thread | {_quantiles(metrics.task_wait_s)} |",
             f"| due to complete | {_quantiles(metrics.run_duration_s)} |",
             f"| deepest queue | {max(metrics.queue.values, default=0):,.0f} tasks |",
             f"| retries / lost attempts / ignored late results | {c['retries']:,} / {c['lost_attempts']:,} / "
             f"{c['ignored_results']:,} |",
             f"| second attempts started while a paused holder still ran the first | {result.overlaps} (fenced) |", "",
             "| server | groups | threads | windows | utilisation | faults |", "|---|---|---|---|---|---|"]
    faults = marks(result)
    for spec in config.servers:
        mine = ", ".join(f"{m.kind} {m.at:%H:%M}" for m in faults if m.server == spec.name) or "-"
        lines.append(f"| {spec.name} | {', '.join(spec.groups)} | {spec.threads} | {'; '.join(spec.windows) or '-'} "
                     f"| {metrics.utilisation.get(spec.name, 0):.0%} | {mine} |")
    return "\n".join(lines) + "\n"


def _runs(counts: dict[str, Any]) -> str:
    return ", ".join(f"{counts[k]:,} {k[5:]}" for k in sorted(counts) if k.startswith("runs_"))


def _quantiles(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {_duration(v)}" for k, v in values.items()) or "-"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.1f} s"
