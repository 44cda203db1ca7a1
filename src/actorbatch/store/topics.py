"""Stable topics: the name written with each stored event, fixed for ever, wherever the event's class lives.

eventsourcing names an event by its module path, so moving a class would orphan every event already recorded.
Here each event class has one topic, frozen the day it was first written (the 0.1 module paths). To move or rename
a class, keep its line's topic; to change an event's fields, raise its `class_version` and give it a
`upcast_vN_vN+1(state)` static method (eventsourcing's mapper applies them when reading older events). A test keeps
every event class listed; the golden logs (tests/golden) prove old logs still read.
"""

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import register_topic

from actorbatch.domain.events import Event
from actorbatch.domain.jobs import JobAdded, JobRemoved, JobReplaced, JobScheduled, JobUnscheduled
from actorbatch.domain.notifications import (
    DeliveryClaimed,
    DeliveryFailed,
    DeliveryLost,
    DeliverySent,
    MessageRead,
    NotificationQueued,
)
from actorbatch.domain.runs import (
    AttemptLost,
    FireSkipped,
    LogWritten,
    ResultIgnored,
    RetryCreated,
    RunCancelled,
    RunCreated,
    RunRetried,
    TaskClaimed,
    TaskDenied,
    TaskFailed,
    TaskSucceeded,
)
from actorbatch.domain.servers import DrainRequested, ServerHeartbeat, ServerStarted, ServerStopped
from actorbatch.domain.users import (
    AccessClosed,
    AccessDenied,
    PrivilegesGranted,
    PrivilegesRevoked,
    ProfileSet,
    TokenIssued,
)
from actorbatch.store import signing
from actorbatch.store.shapes import Shape
from actorbatch.store.transcoder import MsgpackTranscoder

EVENTS: dict[str, type[Event]] = {
    "actorbatch.domain.jobs:JobAdded": JobAdded,
    "actorbatch.domain.jobs:JobReplaced": JobReplaced,
    "actorbatch.domain.jobs:JobRemoved": JobRemoved,
    "actorbatch.domain.jobs:JobScheduled": JobScheduled,
    "actorbatch.domain.jobs:JobUnscheduled": JobUnscheduled,
    "actorbatch.domain.runs:RunCreated": RunCreated,
    "actorbatch.domain.runs:TaskClaimed": TaskClaimed,
    "actorbatch.domain.runs:TaskSucceeded": TaskSucceeded,
    "actorbatch.domain.runs:TaskFailed": TaskFailed,
    "actorbatch.domain.runs:AttemptLost": AttemptLost,
    "actorbatch.domain.runs:ResultIgnored": ResultIgnored,
    "actorbatch.domain.runs:RunCancelled": RunCancelled,
    "actorbatch.domain.runs:TaskDenied": TaskDenied,
    "actorbatch.domain.runs:FireSkipped": FireSkipped,
    "actorbatch.domain.runs:LogWritten": LogWritten,
    "actorbatch.domain.runs:RetryCreated": RetryCreated,
    "actorbatch.domain.runs:RunRetried": RunRetried,
    "actorbatch.domain.servers:ServerStarted": ServerStarted,
    "actorbatch.domain.servers:ServerHeartbeat": ServerHeartbeat,
    "actorbatch.domain.servers:ServerStopped": ServerStopped,
    "actorbatch.domain.servers:DrainRequested": DrainRequested,
    "actorbatch.domain.users:ProfileSet": ProfileSet,
    "actorbatch.domain.users:PrivilegesGranted": PrivilegesGranted,
    "actorbatch.domain.users:PrivilegesRevoked": PrivilegesRevoked,
    "actorbatch.domain.users:TokenIssued": TokenIssued,
    "actorbatch.domain.users:AccessClosed": AccessClosed,
    "actorbatch.domain.users:AccessDenied": AccessDenied,
    "actorbatch.domain.notifications:NotificationQueued": NotificationQueued,
    "actorbatch.domain.notifications:DeliveryClaimed": DeliveryClaimed,
    "actorbatch.domain.notifications:DeliverySent": DeliverySent,
    "actorbatch.domain.notifications:DeliveryFailed": DeliveryFailed,
    "actorbatch.domain.notifications:DeliveryLost": DeliveryLost,
    "actorbatch.domain.notifications:MessageRead": MessageRead,
}
TOPICS: dict[type[Event], str] = {}


def register(topic: str, cls: type[Event]) -> None:
    """Name `cls` `topic` for writing and reading (the mapper resolves a stored topic through this table first)."""
    EVENTS[topic], TOPICS[cls] = cls, topic
    register_topic(topic, cls)


for _topic, _cls in list(EVENTS.items()):
    register(_topic, _cls)


class StableTopicMapper(Mapper[Any]):
    """The event store's mapper: writes each event under its stable topic, never its module path, signed when
    `signing_key` is given (see store.signing); reads signed and unsigned events alike."""

    def __init__(self, *args: Any, signing_key: bytes | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.signing_key = signing_key
        self._kinds: dict[type, tuple[str, int]] = {}  # event class -> (stable topic, class version)

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        originator_id, originator_version, topic, state = self.encode(domain_event)
        return StoredEvent(originator_id=originator_id, originator_version=originator_version, topic=topic,
                           state=state)

    def encode(self, domain_event: Any) -> tuple[Any, int, str, bytes]:
        """(originator id, version, stable topic, stored state) of an event: eventsourcing's `to_stored_event`,
        with the stable topic looked up directly (its module-path topic is never written) and no StoredEvent
        made where the store writes the row itself."""
        topic, originator_id, originator_version, state = self._state(domain_event)
        return self._finish(topic, originator_id, originator_version, self.transcoder.encode(state))

    def encode_many(self, events: Sequence[Any]) -> list[tuple[Any, int, str, bytes]]:
        """`encode` of each event, byte for byte. Events of one class that hold a table as the very same object
        (the one job definition every run of a bulk submit keeps) are packed from one template (see `Shape`): only
        the values that differ from event to event are packed for each."""
        shape = Shape.of(events) if len(events) >= 2 and type(self.transcoder) is MsgpackTranscoder else None
        if shape is None:
            return [self.encode(e) for e in events]
        topic, class_version = self._kind(type(events[0]))
        if class_version > 1:
            return [self.encode(e) for e in events]
        finish, plain = self._finish, not (self.compressor or self.cipher or self.signing_key is not None)
        found = []
        for event in events:
            payload = shape.pack(event)
            if payload is None:
                found.append(self.encode(event))
            else:
                values = vars(event)
                originator_id, originator_version = values["originator_id"], values["originator_version"]
                found.append((originator_id, originator_version, topic, payload) if plain
                             else finish(topic, originator_id, originator_version, payload))
        return found

    def _kind(self, kind: type) -> tuple[str, int]:
        """(stable topic, class version) of an event class."""
        known = self._kinds.get(kind)
        if known is None:
            topic = TOPICS.get(kind)
            if topic is None:
                raise TypeError(f"{kind.__name__} has no stable topic in actorbatch.store.topics")
            known = self._kinds[kind] = (topic, getattr(kind, "class_version", 1))
        return known

    def _state(self, domain_event: Any) -> tuple[str, Any, int, dict[str, Any]]:
        topic, class_version = self._kind(type(domain_event))
        state = dict(vars(domain_event))
        originator_id, originator_version = state.pop("originator_id"), state.pop("originator_version")
        if class_version > 1:
            state["class_version"] = class_version
        return topic, originator_id, originator_version, state

    def _finish(self, topic: str, originator_id: Any, originator_version: int, payload: bytes
                ) -> tuple[Any, int, str, bytes]:
        if self.compressor:
            payload = self.compressor.compress(payload)
        if self.cipher:
            payload = self.cipher.encrypt(payload)
        if self.signing_key is not None:
            payload = signing.sign(self.signing_key, originator_id, originator_version, topic, payload)
        return originator_id, originator_version, topic, payload

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        signature, payload = signing.split(stored_event.state)
        if signature is not None:
            stored_event = StoredEvent(originator_id=stored_event.originator_id,
                                       originator_version=stored_event.originator_version,
                                       topic=stored_event.topic, state=payload)
        return super().to_domain_event(stored_event)
