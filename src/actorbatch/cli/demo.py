"""`actorbatch demo`: the AX 2009 walkthrough and a month-end job, run on an embedded server, then the screens."""

from importlib.resources import files

from actorbatch import api
from actorbatch.actors.server import BatchServer, ServerConfig
from actorbatch.cli import render

JOB_FILES = ("ax2009-walkthrough.toml", "month-end-report.toml")


def run_demo(url: str, user: str | None) -> None:
    api.init(url)
    client = api.connect(url, user)
    try:
        jobs = [job for name in JOB_FILES for job in api.load_job_file(str(files("actorbatch.examples") / name))]
        client.add_jobs(jobs, replace=True)
        render.console.print(f"[bold]Registered[/bold] {', '.join(j.name for j in jobs)} in {url}")
        runs = [client.run_job("ax2009-walkthrough"),
                client.run_job("ax2009-walkthrough", params={"fail": []}),
                client.run_job("month-end-report")]
        render.console.print("Started an embedded batch server with 2 threads; waiting for "
                             f"{len(runs)} runs (the walkthrough twice: TASK2 failing, then succeeding) ...")
        with BatchServer(url, ServerConfig(name="demo-server", threads=2, lease_timeout_s=10), client.clock):
            details = [client.wait(run_id, timeout=60) for run_id in runs]
        render.console.print()
        render.console.print(render.status_screen(client.status()))
        render.runs_table(client.runs(limit=10), "Process monitor (newest first)")
        for detail in details[:2]:
            render.tasks_table(detail)
        render.console.print("Try: actorbatch run show <run id>, actorbatch run logs <run id>, actorbatch status")
    finally:
        client.close()

