"""actorbatch: an event-sourced batch-job framework. Jobs of dependent tasks run now, later or on a schedule,
on one or many batch servers that compete for work through leases.

The public names are loaded on first use, so a program that needs only part of the package (the command line
printing its help, say) does not pay for the rest.
"""

from importlib import import_module
from typing import TYPE_CHECKING

from actorbatch.errors import ActorbatchError, Conflict, InvalidJob, NotFound, PermissionDenied

if TYPE_CHECKING:
    from actorbatch.actors.server import BatchServer, ServerConfig
    from actorbatch.api import Client, Job, connect, init, load_job_file
    from actorbatch.domain.jobs import JobDefinition, TaskSpec
    from actorbatch.embedded import Server
    from actorbatch.runners.context import TaskContext

_LAZY = {"BatchServer": "actorbatch.actors.server", "ServerConfig": "actorbatch.actors.server",
         "Client": "actorbatch.api", "Job": "actorbatch.api", "Server": "actorbatch.embedded",
         "connect": "actorbatch.api", "init": "actorbatch.api", "load_job_file": "actorbatch.api",
         "JobDefinition": "actorbatch.domain.jobs", "TaskSpec": "actorbatch.domain.jobs",
         "TaskContext": "actorbatch.runners.context"}


if not TYPE_CHECKING:  # mypy sees the imports above; a typo'd name stays an error for it

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'actorbatch' has no attribute {name!r}")
        value = getattr(import_module(module), name)
        globals()[name] = value  # once loaded, a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_LAZY})


__all__ = ["ActorbatchError", "BatchServer", "Client", "Conflict", "InvalidJob", "Job", "JobDefinition", "NotFound",
           "PermissionDenied", "Server", "ServerConfig", "TaskContext", "TaskSpec", "connect", "init", "load_job_file"]
