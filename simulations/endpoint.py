"""The far side of e-mails and webhooks: one simulated endpoint (the SMTP server and every webhook receiver) that
may be down (a planned `endpoint` fault) or refuse a delivery at random (`endpoint_fail_p`) in the safety phase.

A delivery takes a little virtual time. If its server dies meanwhile, the connection is cut and nothing arrives;
if it completes, the endpoint has the message whether or not its server lives to record it, which is the case
that would send twice if a lost delivery were ever sent again. Every arrival is told to the checker.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass

from actorbatch.node.notify import Delivered, Delivery
from simulations.checkers.deliveries import Deliveries
from simulations.eventloop import Loop, us

SEND_S = (0.05, 2.0)  # how long one delivery takes


@dataclass
class Endpoint:
    loop: Loop
    rng: random.Random
    fail_p: float
    checker: Deliveries
    down: bool = False
    faulty: bool = True  # off for the liveness phase

    def deliver(self, delivery: Delivery, alive: Callable[[], bool], report: Callable[[Delivered], None]) -> None:
        """Send `delivery`; `alive()` says whether its server process still runs; `report` tells it the outcome."""
        notification = delivery.notification

        def done() -> None:
            if not alive():
                return  # the process died mid-delivery: the connection was cut
            error = None
            if self.faulty and (self.down or (self.fail_p > 0 and self.rng.random() < self.fail_p)):
                error = "endpoint refused (simulated)"
            else:
                self.checker.received(notification, self.loop.now)
            report(Delivered(notification.id, delivery.attempt, error))

        self.loop.at(self.loop.now_us + us(self.rng.uniform(*SEND_S)), done)
