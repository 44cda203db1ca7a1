"""The task body that simulated jobs name (`run = "simulations.bodies:simulated"`), for real servers to run.

It sleeps for the attempt's duration and fails when the attempt's profile says so (see `profile.py`), so the load
test's real servers (`load.py`) run the very jobs the simulator runs, with the same fates. It is the one part of
`simulations/` that reads real time: it runs inside a real server, not in the simulator.
"""

import time

from actorbatch.runners.context import TaskContext
from simulations.profile import attempt_outcome

CHECK_S = 0.05  # how often a sleeping body looks for cancellation


def simulated(ctx: TaskContext) -> float:
    """Take the attempt's simulated time (times `sim_scale`, default 1), cooperatively; fail if its profile fails."""
    duration_s, failure = attempt_outcome(ctx.params, ctx.run_id, ctx.task, ctx.attempt)
    duration_s *= float(ctx.params.get("sim_scale", 1.0))
    deadline = time.monotonic() + duration_s
    while (left := deadline - time.monotonic()) > 0 and not ctx.cancelled():
        time.sleep(min(left, CHECK_S))
    if failure is not None:
        raise RuntimeError(failure)
    return duration_s
