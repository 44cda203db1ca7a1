"""`@frozen` behaves as `@dataclass(frozen=True)` does, with its shared methods."""

from dataclasses import FrozenInstanceError, dataclass, field

import pytest

from actorbatch.frozen import frozen


@frozen
class Point:
    x: int
    y: int
    label: str = field(default="", compare=False)
    secret: str = field(default="", repr=False)


@frozen
class Labelled(Point):
    note: str = ""


@dataclass(frozen=True)
class Reference:
    x: int
    y: int
    label: str = field(default="", compare=False)
    secret: str = field(default="", repr=False)


def test_repr_shows_the_fields_a_dataclass_shows() -> None:
    assert repr(Point(1, 2, "a", "hidden")) == repr(Reference(1, 2, "a", "hidden")).replace("Reference", "Point")
    assert "hidden" not in repr(Point(1, 2, secret="hidden"))
    assert repr(Labelled(1, 2, note="n")) == "Labelled(x=1, y=2, label='', note='n')"


def test_equality_and_hash_follow_the_compared_fields() -> None:
    assert Point(1, 2, "a") == Point(1, 2, "b")  # label is not compared
    assert Point(1, 2) != Point(1, 3)
    assert Point(1, 2, secret="s") != Point(1, 2, secret="t")
    assert hash(Point(1, 2, "a")) == hash(Point(1, 2, "b"))
    assert len({Point(1, 2), Point(1, 2), Point(2, 1)}) == 2


def test_instances_of_different_classes_are_never_equal() -> None:
    assert Point(1, 2) != Labelled(1, 2)
    assert Labelled(1, 2) != Point(1, 2)
    assert Point(1, 2) != (1, 2)


def test_it_stays_frozen() -> None:
    point = Point(1, 2)
    with pytest.raises(FrozenInstanceError):
        point.x = 3  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del point.y  # type: ignore[misc]


@frozen
class Empty:
    pass


def test_a_class_with_no_fields() -> None:
    assert Empty() == Empty()
    assert hash(Empty()) == hash(Empty())
    assert repr(Empty()) == "Empty()"
