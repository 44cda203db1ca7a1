"""The supervisor's round (`Node.check`), which `server start` and the simulator both run: it asks the lease manager
and the notifier without waiting, judges by the answers at its next round, and never takes an answer given before
a drain for one given after it."""

import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pykka
import pytest

from actorbatch.actors.config import ServerConfig
from actorbatch.actors.messages import Busy, Drain
from actorbatch.actors.node import Node, Plant


class Stub(pykka.ThreadingActor):
    """Answers Busy with what `state` holds now; counts the questions and the drains it was told."""

    def __init__(self, state: dict[str, Any], answer: str) -> None:
        super().__init__()
        self.state, self.answer = state, answer

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Drain):
            self.state["drained"] += 1
        elif isinstance(message, Busy):
            self.state["asked"] += 1
            self.state["gate"].wait(30)
            return (self.state["busy"], False, 0) if self.answer == "manager" else self.state["sending"]
        return None


@pytest.fixture
def node() -> Iterator[tuple[Node, dict[str, Any]]]:
    gate = threading.Event()
    gate.set()
    state: dict[str, Any] = {"busy": 0, "sending": 0, "asked": 0, "drained": 0, "gate": gate}
    n = Node(ServerConfig(name="n"), cast(Plant, SimpleNamespace(store=SimpleNamespace(failure=None))))
    n.manager, n.notifier = Stub.start(state, "manager"), Stub.start(state, "notifier")
    n.refs = [n.manager, n.notifier]
    try:
        yield n, state
    finally:
        gate.set()
        for ref in n.refs:
            ref.stop()


def answered(n: Node) -> None:
    for future in n._asked:  # the test waits for the round's questions, as the next round would
        future.get(timeout=30)


def test_an_answer_given_before_a_drain_never_says_drained(node: tuple[Node, dict[str, Any]]) -> None:
    n, state = node
    assert n.check() is None
    answered(n)  # idle, as of before the drain
    state["busy"] = 1  # a claim the lease manager made after answering, before it heard the drain
    n.drain()
    assert n.check() is None  # the idle answer predates the drain
    answered(n)
    assert n.check() is None  # asked after the drain: one attempt still runs
    answered(n)
    state["busy"] = 0  # it ended
    assert n.check() is None  # the answers in say it runs
    answered(n)
    assert n.check() == "drained"
    assert state["drained"] == 2  # the lease manager's and the notifier's


def test_a_question_is_not_asked_again_before_its_answer_is_in(node: tuple[Node, dict[str, Any]]) -> None:
    n, state = node
    state["gate"].clear()  # the lease manager is busy with a long step
    assert n.check() is None
    assert n.check() is None
    assert n.check() is None
    state["gate"].set()
    answered(n)
    assert state["asked"] == 1


def test_a_dead_actor_fails_the_round(node: tuple[Node, dict[str, Any]]) -> None:
    n, _ = node
    n.notifier.stop()
    assert n.check() == "failed"
