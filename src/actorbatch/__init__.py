"""actorbatch: an event-sourced batch-job framework. Jobs of dependent tasks run now, later or on a schedule,
on one or many batch servers that compete for work through leases."""

from actorbatch.actors.server import BatchServer, ServerConfig
from actorbatch.api import Client, Job, connect, init, load_job_file
from actorbatch.domain.jobs import JobDefinition, TaskSpec
from actorbatch.errors import ActorbatchError, Conflict, InvalidJob, NotFound
from actorbatch.runners.context import TaskContext


def Server(client: Client, name: str = "embedded", threads: int = 4, **options: object) -> BatchServer:  # noqa: N802
    """A full batch server in this process, on the client's store: `with actorbatch.Server(ab): ...`."""
    return BatchServer(client.url, ServerConfig(name=name, threads=threads, **options),  # type: ignore[arg-type]
                       clock=client.clock)


__all__ = ["ActorbatchError", "BatchServer", "Client", "Conflict", "InvalidJob", "Job", "JobDefinition", "NotFound",
           "Server", "ServerConfig", "TaskContext", "TaskSpec", "connect", "init", "load_job_file"]
