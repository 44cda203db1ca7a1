"""One picture of a run, for people: work waiting and running against capacity, throughput, each server's load
over time with its faults, and how late runs started. matplotlib draws it off-screen (the Agg backend).

Time runs along the x axes as hours since the start, labelled with the clock time (UTC).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")  # files only, no display: must precede pyplot
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from simulations.metrics import Metrics, Series

FAULT_COLOURS = {"crash": "tab:red", "lost": "black", "fail": "tab:orange", "drained": "tab:green",
                 "pause": "tab:purple"}


@dataclass(frozen=True)
class Mark:
    """Something that happened to a server, drawn on its row: a crash, a loss, a failure, a pause (`for_s`)."""

    at: datetime
    server: str
    kind: str
    for_s: float = 0.0


def overview(metrics: Metrics, marks: Sequence[Mark], path: Path, title: str, dpi: int = 100) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(13, 8))
    fig.suptitle(title, fontsize=13)
    _load(axes[0][0], metrics, marks)
    _throughput(axes[0][1], metrics)
    _servers(axes[1][0], metrics, marks)
    _lateness(axes[1][1], metrics)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def _hours(series: Series) -> list[float]:
    return [(i + 0.5) * series.bucket_s / 3600 for i in range(len(series.values))]


def _since(start: datetime, moment: datetime) -> float:
    return (moment - start).total_seconds() / 3600


def _clock_axis(ax: Axes, start: datetime) -> None:
    ax.xaxis.set_major_formatter(FuncFormatter(lambda h, _: f"{start + timedelta(hours=h):%a %H:%M}"))
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)


def _load(ax: Axes, metrics: Metrics, marks: Sequence[Mark]) -> None:
    hours = _hours(metrics.queue)
    ax.fill_between(hours, metrics.queue.values, step="mid", alpha=0.35, color="tab:red", label="waiting (left)")
    ax.set_ylabel("tasks waiting for a thread")
    right = ax.twinx()
    right.plot(hours, metrics.running.values, color="tab:blue", linewidth=1, label="running (right)")
    right.plot(hours, metrics.capacity.values, color="grey", linestyle="--", linewidth=1,
               label="threads offered (right)")
    right.set_ylim(bottom=0, top=max(metrics.capacity.values, default=1) * 1.15)
    right.set_ylabel("tasks running, threads")
    for mark in marks:
        if mark.kind != "pause":
            ax.axvline(_since(metrics.start, mark.at), color=FAULT_COLOURS.get(mark.kind, "grey"), linewidth=0.8)
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper right")
    ax.set_title("Tasks waiting and running (vertical lines: crashes, losses, failures)", fontsize=10)
    _clock_axis(ax, metrics.start)


def _throughput(ax: Axes, metrics: Metrics) -> None:
    per_h = [v * 3600 / metrics.ended.bucket_s for v in metrics.ended.values]
    ax.bar(_hours(metrics.ended), per_h, width=metrics.ended.bucket_s / 3600, color="tab:green")
    ax.axhline(metrics.throughput_per_h, color="black", linewidth=0.8, linestyle=":",
               label=f"mean {metrics.throughput_per_h:,.0f} tasks/h")
    ax.set_title("Throughput: tasks ended per hour", fontsize=10)
    ax.set_ylabel("tasks / h")
    ax.legend(fontsize=8, loc="upper right")
    _clock_axis(ax, metrics.start)


def _servers(ax: Axes, metrics: Metrics, marks: Sequence[Mark]) -> None:
    names = sorted(metrics.busy, key=lambda n: (len(n), n))
    if not names:
        return
    grid = np.array([metrics.busy[n].values for n in names])
    span_h = metrics.queue.bucket_s * len(metrics.queue.values) / 3600
    image = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=1,
                      extent=(0.0, span_h, len(names) - 0.5, -0.5))
    for mark in marks:
        if mark.server not in names:
            continue
        row, at_h = names.index(mark.server), _since(metrics.start, mark.at)
        colour = FAULT_COLOURS.get(mark.kind, "white")
        if mark.kind == "pause":
            ax.plot([at_h, at_h + mark.for_s / 3600], [row, row], color=colour, linewidth=5)
        else:
            ax.plot([at_h], [row], marker="x", color=colour, markersize=9, markeredgewidth=2.5)
    ax.set_yticks(range(len(names)), [f"{n} {metrics.utilisation.get(n, 0):.0%}" for n in names], fontsize=8)
    ax.set_title("Busy share of each server's threads (x: crash/loss/failure, bar: pause)", fontsize=10)
    ax.figure.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    _clock_axis(ax, metrics.start)


def _lateness(ax: Axes, metrics: Metrics) -> None:
    late = np.sort(np.maximum(np.array(metrics.late_samples_s), 0.01))  # on time shows at 10 ms (a log scale)
    if late.size:
        ax.plot(late, np.arange(1, late.size + 1) / late.size, color="tab:purple", label="runs")
        for (name, value), style in zip(metrics.run_start_late_s.items(), (":", "--", "-.", "-"), strict=False):
            ax.axvline(max(value, 0.01), color="grey", linewidth=0.8, linestyle=style, label=f"{name} {value:,.1f} s")
    ax.set_xscale("log")
    ax.set_xlabel("run started this long after it was due (s)")
    ax.set_ylabel("share of runs")
    ax.set_title("Lateness: share of runs started within x of their due time", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
