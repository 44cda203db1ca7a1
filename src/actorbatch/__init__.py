"""actorbatch: an event-sourced batch-job framework. Jobs of dependent tasks run now, later or on a schedule,
on one or many batch servers that compete for work through leases."""

from actorbatch.actors.server import BatchServer, ServerConfig
from actorbatch.api import Client, Job, Server, connect, init, load_job_file
from actorbatch.domain.jobs import JobDefinition, TaskSpec
from actorbatch.errors import ActorbatchError, Conflict, InvalidJob, NotFound
from actorbatch.runners.context import TaskContext

__all__ = ["ActorbatchError", "BatchServer", "Client", "Conflict", "InvalidJob", "Job", "JobDefinition", "NotFound",
           "Server", "ServerConfig", "TaskContext", "TaskSpec", "connect", "init", "load_job_file"]
