"""The scheduler actor: the pykka shell around ScheduleCore, which creates the runs of scheduled jobs on time.

Each server runs one; they race, and the deterministic run ids let the store keep exactly one run per fire time.
It sleeps until the next fire time; a step an outage cut short is taken again RETRY_S later.
"""

from datetime import datetime
from typing import Any

import pykka

from actorbatch.actors.messages import CaughtUp, Observed, Tick
from actorbatch.actors.outages import Retry, rides_out_outages
from actorbatch.actors.ports import NodeStore
from actorbatch.actors.problems import ProblemLog
from actorbatch.actors.timer import Timer
from actorbatch.behaviours.scheduling import ScheduleBehaviour
from actorbatch.clock import Clock
from actorbatch.node.schedule import RETRY_S, ScheduleCore


class Scheduler(pykka.ThreadingActor):
    def __init__(self, behaviour: ScheduleBehaviour, store: NodeStore, clock: Clock, timer: Timer,
                 problems: ProblemLog) -> None:
        super().__init__()
        self.store, self.clock, self.timer = store, clock, timer
        self.core = ScheduleCore(behaviour, store, self, problems.report)
        self.retry = Retry(timer, self.actor_ref, RETRY_S)

    @rides_out_outages
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, CaughtUp):
            self.core.caught_up = True
        elif isinstance(message, Observed):
            self.core.observed(message.events, self.clock.now())
        if self.actor_inbox.empty():
            self.retry.step(self.core.tick, self.clock.now())
        return None

    # ---- the core's wake-ups ----

    def wake_at(self, when: datetime) -> None:
        if when <= self.clock.now():
            self.actor_ref.tell(Tick())
        else:
            self.timer.at(when, self.actor_ref, Tick())

    def again(self) -> None:
        self.actor_ref.tell(Tick())
