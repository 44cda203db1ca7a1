"""msgpack encoding of event state that round-trips UUIDs, aware datetimes, Decimal, enums, tuples and bytes.

msgpack is compact and several times faster than JSON here; each extra Python type gets one extension code.
"""

import enum
import functools
import struct
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgpack
from eventsourcing.persistence import Transcoder
from eventsourcing.utils import get_topic, resolve_topic

_UUID, _DATETIME, _DECIMAL, _ENUM, _TUPLE, _UTC_DATETIME = 1, 2, 3, 4, 5, 6
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROS = struct.Struct(">q")
_ONE_MICROSECOND = timedelta(microseconds=1)
_EMPTY_TUPLE = msgpack.ExtType(_TUPLE, msgpack.packb([]))  # in every run's row (`retried_by`)


# The same ids and moments recur in thousands of events and rows (a run's id, a step's timestamp): their
# extension values are kept, which halves the cost of encoding and decoding a wide batch.
_CACHE = 65_536


@functools.lru_cache(maxsize=_CACHE)
def _uuid_ext(obj: UUID) -> msgpack.ExtType:
    return msgpack.ExtType(_UUID, obj.bytes)


@functools.lru_cache(maxsize=_CACHE)
def _utc_ext(obj: datetime) -> msgpack.ExtType:
    """Only ever called with UTC times, so two equal keys are the same moment in the same zone."""
    return msgpack.ExtType(_UTC_DATETIME, _MICROS.pack((obj - _EPOCH) // _ONE_MICROSECOND))


@functools.lru_cache(maxsize=_CACHE)
def _uuid_of(data: bytes) -> UUID:
    return UUID(bytes=data)


@functools.lru_cache(maxsize=_CACHE)
def _utc_of(data: bytes) -> datetime:
    return _EPOCH + timedelta(microseconds=_MICROS.unpack(data)[0])


def _default(obj: Any) -> msgpack.ExtType:
    kind = type(obj)
    if kind is UUID:
        return _uuid_ext(obj)
    if kind is datetime and obj.tzinfo is UTC:  # nearly every time in an event: 8 bytes, no text to format or parse
        return _utc_ext(obj)
    if isinstance(obj, UUID):
        return msgpack.ExtType(_UUID, obj.bytes)
    if isinstance(obj, datetime):
        if obj.tzinfo is UTC:
            return msgpack.ExtType(_UTC_DATETIME, _MICROS.pack((obj - _EPOCH) // _ONE_MICROSECOND))
        # An IANA zone is kept as wall time, key and fold, so even a skipped or repeated local time comes back
        # as the same object; any other tzinfo is a fixed offset, which the ISO text keeps exactly.
        if isinstance(obj.tzinfo, ZoneInfo):
            return msgpack.ExtType(_DATETIME, msgpack.packb((obj.replace(tzinfo=None).isoformat(), obj.tzinfo.key,
                                                             obj.fold)))
        return msgpack.ExtType(_DATETIME, msgpack.packb((obj.isoformat(), None, obj.fold)))
    if isinstance(obj, Decimal):
        return msgpack.ExtType(_DECIMAL, str(obj).encode())
    if isinstance(obj, enum.Enum):
        return msgpack.ExtType(_ENUM, _pack((get_topic(type(obj)), obj.value)))
    if isinstance(obj, tuple):
        return msgpack.ExtType(_TUPLE, _pack(list(obj))) if obj else _EMPTY_TUPLE
    if type(obj) is int:  # msgpack hands over only the integers it cannot store
        raise TypeError("cannot encode an integer outside -2**63..2**64-1 in an event")
    raise TypeError(f"cannot encode {type(obj).__name__} in an event")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _UUID:
        return _uuid_of(data)
    if code == _UTC_DATETIME:
        return _utc_of(data)
    if code == _DATETIME:
        text, key, fold = msgpack.unpackb(data)
        moment = datetime.fromisoformat(text).replace(fold=fold)
        return moment.replace(tzinfo=ZoneInfo(key)) if key else moment
    if code == _DECIMAL:
        return Decimal(data.decode())
    if code == _ENUM:
        topic, value = _unpack(data)
        return resolve_topic(topic)(value)
    if code == _TUPLE:
        return tuple(_unpack(data))
    return msgpack.ExtType(code, data)


def _pack(obj: Any) -> bytes:
    # strict_types: tuples and str/int subclasses (enums) reach _default instead of passing as lists and plain values.
    idle = _packers.idle
    packer = idle.pop() if idle else msgpack.Packer(default=_default, strict_types=True, use_bin_type=True)
    try:
        packed: bytes = packer.pack(obj)
    finally:
        idle.append(packer)
    return packed


class _Packers(threading.local):
    """Packers kept per thread: `packb` makes one per call, a third of the cost of a small object. A tuple is
    packed (by `_default`) while the packer of what holds it is busy: it takes a second one."""

    def __init__(self) -> None:
        self.idle: list[msgpack.Packer] = []


_packers = _Packers()


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)


unpack = _unpack  # for readers that decode events in bulk (`EventStore.decode_many`)
pack = _pack  # for writers that encode events in bulk (`store.shapes`) or rows of a fixed shape (`ext_time`)
EMPTY_TUPLE = _EMPTY_TUPLE


def ext_time(moment: datetime | None) -> Any:
    """A time as `pack` writes it: a UTC one as its extension value (kept), any other as it is (`_default` sees
    to it). Called by a writer on a field it knows holds a time, it spares the packer a call back per value."""
    if moment is None or moment.tzinfo is not UTC or type(moment) is not datetime:
        return moment
    ext = _TIMES.get(moment)  # a dict, not `_utc_ext`'s cache: half the cost of a look-up
    if ext is None:
        if len(_TIMES) >= _CACHE:
            _TIMES.clear()
        ext = _TIMES[moment] = _utc_ext(moment)
    return ext


def ext_uuid(uuid: UUID | None) -> Any:
    """A UUID as `pack` writes it (see `ext_time`); kept by its number, whose hash is the C one."""
    if type(uuid) is not UUID:
        return uuid
    ext = _UUIDS.get(uuid.int)
    if ext is None:
        if len(_UUIDS) >= _CACHE:
            _UUIDS.clear()
        ext = _UUIDS[uuid.int] = _uuid_ext(uuid)
    return ext


_TIMES: dict[datetime, msgpack.ExtType] = {}  # only UTC times: an equal time in another zone is another value
_UUIDS: dict[int, msgpack.ExtType] = {}


class MsgpackTranscoder(Transcoder):
    """The event store's transcoder: state dict <-> msgpack bytes."""

    def encode(self, obj: Any) -> bytes:
        return _pack(obj)

    def decode(self, data: bytes) -> Any:
        return _unpack(data)
