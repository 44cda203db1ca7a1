"""A bad event stops one aggregate, never the system: how every reader isolates an event it cannot read or fold.

A stored event that cannot be decoded reaches readers as an `Unreadable` stand-in that names itself; an event that
decodes but whose fold raises is just as bad. Either way the reader quarantines that aggregate: it keeps the state it
had before, skips the aggregate's later events, and reports one `Problem` line. An ordinary command puts it to rest
(a run cancelled, a job removed, a server started again): that event is folded over the last good state, its version
bridging the skipped ones, and the aggregate is read normally from then on. Every reader (read models, lease
manager, scheduler, commands loading an aggregate, the simulator) uses this one mechanism.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from actorbatch.domain.events import Event
from actorbatch.domain.jobs import JobEvent, JobRemoved
from actorbatch.domain.notifications import NotificationEvent
from actorbatch.domain.runs import FireSkipped, LogWritten, RunCancelled, RunEvent
from actorbatch.domain.servers import DrainRequested, ServerEvent, ServerStarted
from actorbatch.errors import ActorbatchError
from actorbatch.frozen import frozen

A = TypeVar("A")
# The events that put a quarantined aggregate to rest, and the commands that record them.
REST: frozenset[type[Event]] = frozenset({RunCancelled, JobRemoved, ServerStarted})
REST_COMMAND = {"run": "run cancel RUN_ID", "job": "job remove NAME", "server": "server start --name NAME"}
_KINDS: tuple[tuple[type[Event], str], ...] = (
    (RunEvent, "run"), (JobEvent, "job"), (ServerEvent, "server"), (FireSkipped, "fire"), (LogWritten, "log"),
    (DrainRequested, "drain"), (NotificationEvent, "notification"))
_UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=UTC)  # an unreadable record's time is inside the bytes it lost
MAX_REASON = 200


def kind_of(event_class: type | None) -> str:
    """What an event is about, for problem lines: `run`, `job`, `server`, ... (`event` if unknown)."""
    kind = _KIND_OF.get(event_class)
    if kind is None:
        kind = _KIND_OF[event_class] = next(
            (kind for base, kind in _KINDS if event_class is not None and issubclass(event_class, base)), "event")
    return kind


_KIND_OF: dict[type | None, str] = {}  # remembered: the simulator asks once per event


@frozen
class Unreadable(Event):
    """Stands in for a stored record that could not be decoded; it names itself, and readers quarantine it."""

    topic: str
    what: str  # the action of the event it should have been, e.g. `task.claimed`, or its topic
    reason: str

    @property
    def action(self) -> str:
        return self.what

    def problem(self, position: int | None = None) -> "Problem":
        return Problem(kind_of(type(self)), self.originator_id, self.originator_version,
                       f"corrupt event ({self.what}): {self.reason}", position)


# Of the same family as the event they replace, so every reader routes them to the right aggregate.
@frozen
class UnreadableRunEvent(Unreadable, RunEvent):
    pass


@frozen
class UnreadableJobEvent(Unreadable, JobEvent):
    pass


@frozen
class UnreadableServerEvent(Unreadable, ServerEvent):
    pass


@frozen
class UnreadableNotificationEvent(Unreadable, NotificationEvent):
    pass


def unreadable(event_class: type | None, aggregate_id: UUID, version: int, topic: str, reason: str) -> Unreadable:
    """The stand-in for a record of `event_class` (None if even its topic is unknown) that failed to decode."""
    what = getattr(event_class, "ACTION", topic)
    family = {RunEvent: UnreadableRunEvent, JobEvent: UnreadableJobEvent, ServerEvent: UnreadableServerEvent,
              NotificationEvent: UnreadableNotificationEvent}
    cls = next((u for base, u in family.items() if event_class is not None and issubclass(event_class, base)),
               Unreadable)
    return cls(originator_id=aggregate_id, originator_version=version, timestamp=_UNKNOWN_TIME, topic=topic,
               what=what, reason=_one_line(reason))


@frozen
class Problem:
    """An aggregate a reader quarantined at `version`, and whether an ordinary command has put it to rest since."""

    kind: str
    aggregate_id: UUID
    version: int
    reason: str
    position: int | None = None  # where the bad event is in the log, when the reader knows
    rested: int | None = None  # the version of the event that put it to rest
    rest: str = ""  # that event's action and user

    @property
    def line(self) -> str:
        """The one line that names the problem wherever it is shown."""
        text = f"{self.kind} {self.aggregate_id} v{self.version} quarantined: {self.reason}"
        if self.rested is not None:
            return f"{text}; put to rest by {self.rest} (v{self.rested})"
        command = REST_COMMAND.get(self.kind)
        return f"{text}; put it to rest with `actorbatch {command}`" if command else text

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "aggregate_id": str(self.aggregate_id), "version": self.version,
                "position": self.position, "reason": self.reason, "rested": self.rested, "line": self.line}


class Quarantined(ActorbatchError):
    """A command needed an aggregate that is quarantined; `last_version` is its last stored event's."""

    def __init__(self, problem: Problem, last_version: int) -> None:
        super().__init__(problem.line)
        self.problem, self.last_version = problem, last_version


class Quarantine:
    """The aggregates one reader has quarantined. `found` lists problems new or changed since it was made."""

    def __init__(self, problems: Iterable[Problem] = ()) -> None:
        self.problems = {p.aggregate_id: p for p in problems}
        self.found: list[Problem] = []

    def __contains__(self, aggregate_id: UUID) -> bool:
        """Quarantined and not put to rest."""
        problem = self.problems.get(aggregate_id)
        return problem is not None and problem.rested is None

    def admit(self, event: Event, position: int | None = None) -> bool:
        """Whether a reader may fold `event`. An unreadable event quarantines its aggregate; a quarantined
        aggregate's later events are refused, except one that puts it to rest, which ends the quarantine."""
        if isinstance(event, Unreadable):
            self._record(event.problem(position))
            return False
        problem = self.problems.get(event.originator_id)
        if problem is None or problem.rested is not None:
            return True
        if type(event) not in REST:
            return False
        user = getattr(event, "user", None)
        self._record(replace(problem, rested=event.originator_version,
                             rest=event.action + (f" by {user}" if user else "")))
        return True

    def apply(self, aggregate: Any, event: Event, position: int | None = None,
              then: Callable[[Any], object] | None = None) -> bool:
        """Fold an admitted event (and run `then` on what `apply` returned: the reader's own follow-up); quarantine
        the aggregate if either raises. The event that put an aggregate to rest applies over its last good state,
        skipping the gap."""
        if self.problems and self.rests(event):
            aggregate.version = event.originator_version - 1
        try:  # inline, not through `guard`: every event of every reader passes here
            result = aggregate.apply(event)
            if then is not None:
                then(result)
        except Exception as error:  # noqa: BLE001 - whatever one aggregate does wrong must not stop the reader
            self._record(Problem(kind_of(type(event)), event.originator_id, event.originator_version,
                                 f"cannot fold event ({event.action}): {describe(error)}", position))
            return False
        return True

    def fold(self, aggregate: Any, event: Event, position: int | None = None,
             then: Callable[[Any], object] | None = None) -> bool:
        """`admit`, then `apply`: True if the event was folded."""
        return self.admit(event, position) and self.apply(aggregate, event, position, then)

    def rests(self, event: Event) -> bool:
        """Whether `event` is the one that put its quarantined aggregate to rest (its version skips a gap)."""
        problem = self.problems.get(event.originator_id)
        return problem is not None and problem.rested == event.originator_version

    def guard(self, kind: str, aggregate_id: UUID, version: int, action: Callable[[], object], what: str,
              position: int | None = None) -> bool:
        """Run a reader's work on one aggregate; if it raises, quarantine that aggregate instead. True if it ran."""
        try:
            action()
        except Exception as error:  # noqa: BLE001 - whatever one aggregate does wrong must not stop the reader
            self._record(Problem(kind, aggregate_id, version, f"{what}: {describe(error)}", position))
            return False
        return True

    def take_found(self) -> list[Problem]:
        """The problems found since the last call (for a reader that reports them as it goes)."""
        found, self.found = self.found, []
        return found

    def _record(self, problem: Problem) -> None:
        self.problems[problem.aggregate_id] = problem
        self.found.append(problem)


def fold_stream(factory: Callable[[], A], events: Sequence[Event]) -> A:
    """An aggregate folded from all its events, as a command loads it; Quarantined if it is quarantined. One put
    to rest is its last good state with the resting event and those after it applied."""
    quarantine = Quarantine()
    aggregate = _fold_all(factory, events, quarantine)
    problem = quarantine.problems.get(events[-1].originator_id)
    if problem is not None and problem.rested is not None:
        # A fold that raised may have changed the aggregate halfway: fold again without the bad events.
        bad, rested = problem.version, problem.rested
        good = [e for e in events if not bad <= e.originator_version < rested]
        quarantine = Quarantine([problem])
        aggregate = _fold_all(factory, good, quarantine)
        problem = quarantine.problems[problem.aggregate_id]
    if problem is not None and problem.rested is None:
        raise Quarantined(problem, events[-1].originator_version)
    return aggregate


def _fold_all(factory: Callable[[], A], events: Iterable[Event], quarantine: Quarantine) -> A:
    aggregate = factory()
    for event in events:
        quarantine.fold(aggregate, event)
    return aggregate


def describe(error: BaseException) -> str:
    """An error in one line: its type, and its message if it has one."""
    text = str(error)
    return _one_line(f"{type(error).__name__}: {text}" if text else type(error).__name__)


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_REASON else line[:MAX_REASON - 1] + "…"
