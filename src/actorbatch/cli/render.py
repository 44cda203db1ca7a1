"""How listings look on a terminal: rich tables (JSON is `emit`'s)."""

import json
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from actorbatch.cli.emit import emit_json_line
from actorbatch.domain.durations import show_duration
from actorbatch.projections.rows import iso

if TYPE_CHECKING:
    from actorbatch.projections.queries import LogLine

console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
STATUS_STYLE = {"succeeded": "green", "failed": "red", "running": "cyan", "cancelled": "yellow",
                "skipped": "dim", "scheduled": "blue", "waiting": "dim", "ready": "blue"}


def short_time(value: str | None) -> str:
    """`2026-11-22T20:46:19.914439Z` -> `20:46:19` today (UTC), `2026-11-22 20:46:19` any other day: the screen
    shows seconds, JSON keeps it all."""
    if not value:
        return "-"
    return value[11:19] if value[:10] == _today() else value[:19].replace("T", " ")


def _today() -> str:
    from actorbatch.clock import SystemClock

    return SystemClock().now().strftime("%Y-%m-%d")


def log_line(line: "LogLine") -> dict[str, Any]:
    """A run log line as JSON."""
    return line.to_json()


def log_lines(lines: "Sequence[LogLine]", as_json: bool) -> None:
    """Run log lines as they come: `time task#attempt line`, or one JSON object per line."""
    for line in lines:
        if as_json:
            emit_json_line(log_line(line))
            continue
        at = iso(line.at)
        when = (at[11:23] if at[:10] == _today() else at[:23].replace("T", " ")) if at else "-"
        sys.stdout.write(f"{when} {line.task}#{line.attempt} {line.line}\n")
    sys.stdout.flush()


def status(value: str) -> str:
    style = STATUS_STYLE.get(value)
    return f"[{style}]{value}[/{style}]" if style else value


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> None:
    console.print(grid(title, columns, rows, empty))


def grid(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], empty: str,
         caption: str | None = None) -> RenderableType:
    """A table of `rows` (or the `empty` line), with a caption under it when given."""
    if not rows:
        return Text(empty, style="dim")
    result = Table(title=title, title_justify="left", header_style="bold", caption=caption,
                   caption_justify="left")
    for column in columns:
        result.add_column(column, overflow="fold", no_wrap=column in ("run", "job", "status"))
    for row in rows:
        result.add_row(*("-" if cell is None else str(cell) for cell in row))
    return result


def verdict(result: Mapping[str, Any]) -> None:
    """What `audit verify` found: the first finding of each check, each quarantined aggregate, or that all is
    well, and what the checks did not cover."""
    for finding in result["findings"]:
        print(f"error: {finding['check']}: {finding['text']}", file=sys.stderr)
    for problem in result["problems"]:
        prefix = "note" if problem["rested"] is not None else "error"
        print(f"{prefix}: {problem['line']}", file=sys.stderr)
    unsealed = result["head"].split(":")[0]
    if int(unsealed) > result["sealed_until"]:
        print(f"note: the events after position {result['sealed_until']} are not sealed yet: only the versions, a "
              "head and signatures cover them", file=sys.stderr)
    if result["signed"] and not result["signatures_checked"]:
        print(f"note: {result['signed']} signed events not checked: set ACTORBATCH_SIGNING_KEY", file=sys.stderr)
    if result["ok"]:
        signed = f", {result['signed']} signed and checked" if result["signatures_checked"] else ""
        print(f"log verified: {result['events']} events{signed}, head {result['head']}")


def jobs_table(jobs: Sequence[Mapping[str, Any]], title: str | None = None) -> None:
    console.print(jobs_grid(jobs, title))


def jobs_grid(jobs: Sequence[Mapping[str, Any]], title: str | None = None, caption: str | None = None
              ) -> RenderableType:
    return grid(title, ["job", "group", "priority", "tasks", "scheduled", "next fire"],
                [(j["name"], j["group"], j["priority"], j["tasks"], "yes" if j["scheduled"] else "no",
                  short_time(j["next_fire"])) for j in jobs], "no jobs", caption)


def runs_table(runs: Sequence[Mapping[str, Any]], title: str | None = None) -> None:
    console.print(runs_grid(runs, title))


def runs_grid(runs: Sequence[Mapping[str, Any]], title: str | None = None, caption: str | None = None
              ) -> RenderableType:
    return grid(title, ["run", "job", "status", "due", "start", "end", "duration"],
                [(r["id"], r["job"], status(r["status"]), short_time(r["due_at"]), short_time(r["started_at"]),
                  short_time(r["ended_at"]), show_duration(r["duration_s"])) for r in runs], "no runs", caption)


def tasks_table(run: Mapping[str, Any]) -> None:
    table(f"run {run['id']}  job {run['job']}  {run['status']}",
          ["task", "status", "attempts", "server", "start", "end", "exit status", "result"],
          [(t["name"], status(t["status"]), t["attempts"], t["server"], short_time(t["started_at"]),
            short_time(t["ended_at"]), t["exit_status"], _result(t)) for t in run["tasks"]], "no tasks")


def _result(task: Mapping[str, Any]) -> str | None:
    """A task's result, cut to fit a table cell (`run show --json` has all of it)."""
    if task["status"] != "succeeded" or task.get("result") is None:
        return None
    return compact(task["result"])


def compact(value: Any, width: int = 60) -> str:
    """A value as JSON on one line, cut to `width` characters."""
    text = json.dumps(value, default=str)
    return text if len(text) <= width else text[:width - 3] + "..."


def run_detail(run: Mapping[str, Any]) -> None:
    """`run show`: who ran it with which params, where it came from or went, then its tasks."""
    params = json.dumps(run["params"], default=str) if run["params"] else "none"
    console.print(f"user {run['user']}  params {params}  due {short_time(run['due_at'])}", markup=False)
    if run.get("retry_of"):
        console.print(f"retry of run {run['retry_of']} (tasks with no attempts kept their outcome)", markup=False)
    for retry in run.get("retried_by", ()):
        console.print(f"retried as run {retry}", markup=False)
    tasks_table(run)
    notifications_table(run.get("notifications", ()))


def notifications_table(notifications: Sequence[Mapping[str, Any]]) -> None:
    if notifications:
        table("Notifications", ["channel", "recipient", "status", "attempts", "error"],
              [(n["channel"], n["recipient"], status(n["status"]), n["attempts"], n["error"]) for n in notifications],
              "")


def messages_table(messages: Sequence[Mapping[str, Any]]) -> None:
    table(None, ["", "at", "job", "status", "message"],
          [("" if m["read"] else "new", short_time(m["at"]), m["job"], status(m["status"]), escape(m["text"]))
           for m in messages], "no messages")


def servers_table(servers: Sequence[Mapping[str, Any]], title: str | None = None) -> None:
    console.print(servers_grid(servers, title))


def servers_grid(servers: Sequence[Mapping[str, Any]], title: str | None = None, caption: str | None = None
                 ) -> RenderableType:
    return grid(title, ["server", "groups", "threads", "running", "last seen", "alive"],
                [(s["name"], ",".join(s["groups"]), s["threads"], s["running"], short_time(s["last_seen"]),
                  "yes" if s["alive"] else "no") for s in servers], "no servers", caption)


def _more(shown: int, total: int, where: str) -> str | None:
    return f"{shown} of {total:,} shown; all: {where}" if total > shown else None


def status_screen(screen: Mapping[str, Any]) -> RenderableType:
    """The status screen as one renderable: a line of counts, then at most a few rows of each kind, each table
    saying how many it leaves out and where to see them all."""
    n = screen["counts"]
    header = Text.from_markup(
        f"[bold]actorbatch status[/bold] at {short_time(screen['at'])} UTC: {n['jobs']:,} jobs "
        f"({n['scheduled_jobs']:,} scheduled), {n['active_runs']:,} active runs ({n['started_runs']:,} started, "
        f"{n['queued_runs']:,} queued, {n['scheduled_runs']:,} due later), {n['running_tasks']:,} running tasks, "
        f"{n['live_servers']:,} of {n['servers']:,} servers alive")
    parts: list[RenderableType] = [header]
    parts += [Text.from_markup("[red]problem:[/red] " + escape(p["line"])) for p in screen["problems"]]
    parts.append(jobs_grid(screen["jobs"], "Jobs (next to fire first)",
                           _more(len(screen["jobs"]), n["jobs"], "actorbatch job list")))
    parts.append(runs_grid(screen["runs"], "Active runs (started first, then the earliest due)",
                           _more(len(screen["runs"]), n["active_runs"], "actorbatch run list --status running")))
    parts.append(grid("Running tasks", ["run", "job", "task", "attempt", "server", "since"],
                      [(t["run_id"], t["job"], t["task"], t["attempt"], t["server"], short_time(t["started_at"]))
                       for t in screen["running_tasks"]], "no running tasks",
                      _more(len(screen["running_tasks"]), n["running_tasks"], "actorbatch run list")))
    parts.append(servers_grid(screen["servers"], "Servers (live first)",
                              _more(len(screen["servers"]), n["servers"], "actorbatch server list")))
    return Group(*parts)
