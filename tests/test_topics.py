"""Stored events are named by stable topics, so moving an event class never orphans a recorded log."""

import inspect
from datetime import UTC, datetime

import actorbatch.domain.jobs
import actorbatch.domain.runs
import actorbatch.domain.servers
import actorbatch.domain.users
from actorbatch.domain.events import Event, server_id
from actorbatch.domain.servers import DrainRequested
from actorbatch.store.eventstore import EventStore
from actorbatch.store.topics import EVENTS, TOPICS, register


def test_every_event_class_of_the_domain_has_one_stable_topic() -> None:
    concrete = {cls for module in (actorbatch.domain.jobs, actorbatch.domain.runs, actorbatch.domain.servers,
                                   actorbatch.domain.users)
                for _, cls in inspect.getmembers(module, inspect.isclass)
                if issubclass(cls, Event) and hasattr(cls, "ACTION")}
    assert concrete <= set(EVENTS.values())
    assert all(cls.__module__.startswith("actorbatch.") for cls in concrete)
    assert len(TOPICS) == len(EVENTS)


class Moved(DrainRequested):
    """An event class living somewhere else than where its events were first written."""


def test_an_event_is_written_and_read_under_its_stable_topic_not_its_module_path(db_url: str) -> None:
    register("actorbatch.old.place:DrainRequested", Moved)
    store = EventStore(db_url)
    event = Moved(originator_id=server_id("x"), originator_version=1, timestamp=datetime(2026, 12, 1, tzinfo=UTC),
                  server="x", user="u")
    store.append(event)
    [stored] = store.read_raw(0)
    assert stored.topic == "actorbatch.old.place:DrainRequested"
    assert store.read(0) == [(stored.id, event)]
    store.close()
