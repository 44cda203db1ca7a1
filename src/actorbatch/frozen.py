"""`@frozen`: a frozen dataclass that costs about half the time to define.

On Python 3.11, `dataclass` compiles each generated method of each class from source: 0.5-0.7 ms for a frozen
class, tens of milliseconds for the hundred or so that a server or a listing imports before doing any work.
Here `__repr__`, `__eq__` and `__hash__` are closures over the class's field names (an `attrgetter` for the
compared ones), so only `__init__` and the frozen `__setattr__` and `__delattr__` are compiled. They behave as
the generated ones do: `repr` shows the fields with `repr=True`, equality and hashing use the fields with
`compare=True`, instances of different classes are never equal.
"""

from collections.abc import Callable
from dataclasses import Field, dataclass, field, fields
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def frozen(cls: type[T]) -> type[T]:
    """`@dataclass(frozen=True)`, with `__repr__`, `__eq__` and `__hash__` made as closures, not compiled."""
    made = dataclass(frozen=True, repr=False, eq=False)(cls)
    every: tuple[Field[Any], ...] = fields(made)  # type: ignore[arg-type]  # a dataclass since the line above
    shown = tuple(f.name for f in every if f.repr)
    compared = tuple(f.name for f in every if f.compare)
    key: Callable[[Any], Any] = attrgetter(*compared) if compared else _nothing

    def shows(self: Any) -> str:
        return f"{type(self).__qualname__}({', '.join(f'{name}={getattr(self, name)!r}' for name in shown)})"

    def equals(self: Any, other: object) -> Any:
        return key(self) == key(other) if other.__class__ is self.__class__ else NotImplemented

    def hashes(self: Any) -> int:
        return hash(key(self))

    for name, method in (("__repr__", shows), ("__eq__", equals), ("__hash__", hashes)):
        method.__name__, method.__qualname__ = name, f"{made.__qualname__}.{name}"
        setattr(made, name, method)
    return made


def _nothing(value: object) -> tuple[()]:
    return ()
