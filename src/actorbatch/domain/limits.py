"""The limits of every value that comes from outside, and the checks that hold them.

Whatever becomes an event passes these checks first, whether it came from a job file, a command-line option, a
`--param` or the Python API: a stored value is one every reader, and all time arithmetic on it, can handle. The
numbers are documented in docs/operations.md (Limits). Each check raises InvalidJob with one line naming `field`.
"""

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from actorbatch.errors import InvalidJob

DAY_S = 86_400.0
# Times users give (run later, schedule start/end/at) and the last fire time: far inside datetime's years 1-9999,
# so adding the longest delay, jitter, lease or retry wait to any of them stays representable.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
MAX_DURATION_S = 366 * DAY_S  # retry_delay, timeout, jitter (a retry waits at most 10x retry_delay)
MAX_EVERY_S = 3650 * DAY_S  # schedule.every
MIN_EVERY_S = 1.0
LEASE_TIMEOUT_S = (0.5, DAY_S)  # a server heartbeats 3 times per lease timeout: at most 6 writes a second
MAX_THREADS = 1000
LOAD_BIAS = (0.0, 100.0)  # server start --load-bias: a busy server holds a new task back at most 100 x 0.1 s
MAX_TASKS = 100_000  # per job
MAX_RETRIES = 1000  # retries and lost_retries
MAX_NAME_CHARS = 128  # jobs, tasks, groups, servers
MAX_USER_CHARS = 256  # OS users, database roles, e-mail addresses
MAX_TEXT_CHARS = 65_536  # description, run, each command argument, each string in params
MAX_COMMAND_ARGS = 1000
MAX_KEY_CHARS = 256  # an idempotency key of `job run --key`
MAX_URL_CHARS = 2048  # a webhook URL
MAX_WEBHOOKS = 20  # per job
MAX_PARAMS_BYTES = 65_536  # one params table (a task's, or a run's), about as stored
MAX_PARAMS_DEPTH = 32  # tables and lists inside params
MAX_JOB_BYTES = 64 * 1024 * 1024  # a whole job definition, about as stored (each run carries a copy)
INT_RANGE = (-(2**63), 2**64 - 1)  # what msgpack stores

_URL = re.compile(r"[!-~]+")  # printable ASCII, no spaces: an IRI must be written percent-encoded
_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.\-]{{0,{MAX_NAME_CHARS - 1}}}")
_HEAD = re.compile(r"[0-9]{1,18}:[0-9a-f]{64}")
_SCALAR_BYTES = 9  # a number, a boolean or null as stored, at most
_TIME_BYTES = 12


def check_name(value: object, field: str) -> str:
    """Names identify jobs, tasks, groups and servers in ids, URLs and tables: a short, plain word."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):  # fullmatch: "$" would let "abc\n" through
        raise InvalidJob(f"{field}: expected a name of 1-{MAX_NAME_CHARS} letters, digits, '.', '_' or '-' "
                         f"starting with a letter or digit, got {show(value)}")
    return value


def check_head(value: object, field: str) -> tuple[int, str]:
    """A head digest as `audit head` prints it: a log position, a colon and 64 hexadecimal digits."""
    if not isinstance(value, str) or not _HEAD.fullmatch(value):
        raise InvalidJob(f"{field}: expected POSITION:DIGEST as `actorbatch audit head` prints it, got {show(value)}")
    position, digest = value.split(":")
    return int(position), digest


def check_user(value: object, field: str) -> str:
    """The acting user is written into every event it causes and shown in every listing."""
    user = check_text(value, field, MAX_USER_CHARS)
    if not user.isprintable() or not user.strip():
        raise InvalidJob(f"{field}: expected a user name of printable characters, got {show(user)}")
    return user


_EMAIL = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;.]+")


def check_email(value: object, field: str) -> str:
    """An e-mail address run-completion mail goes to: one plain `local@domain.tld`, no display name, no list."""
    email = check_text(value, field, MAX_USER_CHARS)
    if not _EMAIL.fullmatch(email) or not email.isprintable():
        raise InvalidJob(f"{field}: expected an e-mail address like alice@example.com, got {show(email)}")
    return email


def check_privilege(value: object, field: str) -> str:
    """A privilege is a name (`job.run`, `invoice.post`): the job-file key and `user grant` share this check."""
    return check_name(value, field)


def check_url(value: object, field: str) -> str:
    """A webhook URL: http or https, a host, no spaces or control characters, no user:password part (it would
    be shown in `run show` and the logs)."""
    url = check_text(value, field, MAX_URL_CHARS)
    parts = urlsplit(url) if _URL.fullmatch(url) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidJob(f"{field}: expected an http:// or https:// URL, got {show(url)}")
    if "@" in parts.netloc:
        raise InvalidJob(f"{field}: a webhook URL may not hold a user or password, got {show(url)}")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise InvalidJob(f"{field}: invalid port in {show(url)}") from None
    return url


def check_text(value: object, field: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """A string the store and every reader can hold: bounded, UTF-8, no NUL (PostgreSQL text refuses it)."""
    if not isinstance(value, str):
        raise InvalidJob(f"{field}: expected a string, got {show(value)}")
    if len(value) > max_chars:
        raise InvalidJob(f"{field}: at most {max_chars} characters, got {len(value)}")
    if "\x00" in value:
        raise InvalidJob(f"{field}: a NUL character cannot be stored")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidJob(f"{field}: not valid Unicode text (a lone surrogate), got {show(value)}") from None
    return value


def check_count(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidJob(f"{field}: expected a whole number from {low} to {high}, got {show(value)}")
    return value


def check_number(value: object, field: str, low: float, high: float, unit: str = "") -> float:
    """A finite number in [low, high]: nan and inf would poison every comparison and sum made with it."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidJob(f"{field}: expected a number from {low:g}{unit} to {high:g}{unit}, got {show(value)}")
    return float(value)


def check_time(value: object, field: str) -> datetime:
    """An aware time between EARLIEST and LATEST, as UTC: readers convert every stored time to UTC."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidJob(f"{field}: expected a time with a time zone or offset, got {show(value)}")
    if not EARLIEST <= value <= LATEST:  # compared before converting, which overflows near years 1 and 9999
        raise InvalidJob(f"{field}: must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} UTC, "
                         f"got {value.isoformat()}")
    return value.astimezone(UTC)


def check_params(value: object, field: str) -> dict[str, Any]:
    """Parameters are stored in events and shown as JSON: a table of strings, finite numbers, booleans, null,
    date-times, lists and tables, bounded in size and depth."""
    if type(value) is not dict and not isinstance(value, Mapping):
        raise InvalidJob(f"{field}: params must be a table, got {show(value)}")
    try:
        _walk(value, MAX_PARAMS_DEPTH, [MAX_PARAMS_BYTES])
    except _Refused as refused:
        raise InvalidJob(f"{field}{''.join(refused.path[::-1])}: {refused.reason}") from None
    return dict(value)


def check_run(params: object, at: object) -> tuple[dict[str, Any], datetime | None]:
    """What a run request brings from outside: its params, and its due time (None: now)."""
    return check_params({} if params is None else params, "params"), None if at is None else check_time(at, "at")


def stored_bytes(value: object) -> int:
    """About how many bytes checked params take as stored, counted as `check_params` counts them."""
    budget = [MAX_PARAMS_BYTES]
    _walk(value, MAX_PARAMS_DEPTH, budget)
    return MAX_PARAMS_BYTES - budget[0]


class _Refused(Exception):
    """Raised deep in a walk; each level adds its key on the way out, so paths are built only for a refusal."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason, self.path = reason, list[str]()


_PLAIN = frozenset({int, float, bool, type(None)})


def _walk(value: object, depth: int, budget: list[int]) -> None:
    """Check one value of a tree and charge its stored size to `budget`; the walk stops when either runs out."""
    if type(value) is str:
        budget[0] -= len(value) + 5
        _text(value)
    elif type(value) in _PLAIN:  # the `else` below, without first asking the Mapping ABC about a number
        budget[0] -= 9
        _scalar(value)
    elif type(value) is dict or isinstance(value, Mapping | list | tuple):  # a dict: no need to ask the ABC
        if depth == 0:
            raise _Refused(f"nested deeper than {MAX_PARAMS_DEPTH} levels")
        budget[0] -= 5
        if type(value) is dict or isinstance(value, Mapping):
            for key, item in value.items():
                _child(item, key, depth, budget, table=True)
        else:
            for index, item in enumerate(value):
                _child(item, index, depth, budget, table=False)
    else:
        budget[0] -= 12 if isinstance(value, datetime) else 9
        _scalar(value)
    if budget[0] < 0:
        raise _Refused(f"params too big: more than {MAX_PARAMS_BYTES:,} bytes as stored")


def _child(item: object, key: object, depth: int, budget: list[int], *, table: bool) -> None:
    try:
        if table:
            if type(key) is not str:
                raise _Refused(f"keys are strings, got {show(key)}")
            budget[0] -= len(key) + 5
            _text(key)
        _walk(item, depth - 1, budget)
    except _Refused as refused:
        refused.path.append(f".{key}" if isinstance(key, str) and key.isprintable() else f"[{show(key)}]")
        raise


def _text(value: str) -> None:
    if value.isascii() and len(value) <= MAX_TEXT_CHARS and "\x00" not in value:
        return  # nearly every string: no need to encode it
    try:
        check_text(value, "")
    except InvalidJob as error:
        raise _Refused(str(error).removeprefix(": ")) from None


def _scalar(value: object) -> None:
    """Exact types only: the encoder sends a subclass (an enum, say) down another path."""
    if value is None or type(value) is bool:
        return
    if type(value) is int:
        if not INT_RANGE[0] <= value <= INT_RANGE[1]:
            raise _Refused("integers must lie in -2**63..2**64-1; write a bigger one as a string")
    elif type(value) is float:
        if not math.isfinite(value):
            raise _Refused(f"{value!r} is not a finite number; write it as a string")
    elif isinstance(value, datetime):
        if value.tzinfo is not None:
            try:
                value.astimezone(UTC)
            except OverflowError:
                raise _Refused(f"{value.isoformat()} is out of range in UTC") from None
    else:
        raise _Refused(f"a {type(value).__name__} cannot be a parameter; write it as a string")


def show(value: object) -> str:
    """A value in a message: its repr, cut short so that a huge input still gives one short line."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int of more than 4300 digits, a list nested thousands deep
        return f"a {type(value).__name__} too big to show"
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"
