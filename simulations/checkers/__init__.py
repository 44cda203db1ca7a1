"""The invariants a simulation checks while it runs, and the failure every one of them raises.

Each checker is named by the invariant it guards; the first one to fail stops the simulation, and the runner prints
the seed and the command that reproduces the failure.
"""

from datetime import datetime


class CheckFailed(BaseException):
    """An invariant does not hold; `checker` names it, `at` is the virtual moment it was found.

    A BaseException, like SystemExit: it ends the simulation where it is raised, and no handler of the system under
    test (an actor's, which pykka would log and survive) may take it for a failure of its own."""

    def __init__(self, checker: str, message: str, at: datetime | None = None) -> None:
        super().__init__(f"{checker}: {message}")
        self.checker, self.message, self.at = checker, message, at
