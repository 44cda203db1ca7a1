"""Everything a python body says reaches the run log of its attempt: `print`, `sys.stderr`, logging records.

Several attempts run at once on the executor's threads, so the process-wide `sys.stdout`, `sys.stderr` and the root
logger get a router each that looks up the attempt running on the calling thread: its lines go to that attempt's
run log, any other thread's to where they went before. Threads a body starts itself are not its attempt's.
"""

import io
import logging
import sys
import threading
from typing import Any, TextIO

from actorbatch.runners.context import TaskLogger

CAPTURE_LEVEL = logging.INFO  # logging records of a body at this level and above reach its run log


class _Attempt:
    """The sink of the attempt on this thread, with the partial line each stream holds until its newline."""

    def __init__(self, log: TaskLogger) -> None:
        self.log = log
        self.partial: dict[str, str] = {}

    def write(self, stream: str, text: str) -> None:
        pending = self.partial.pop(stream, "") + text
        *lines, rest = pending.split("\n")
        for line in lines:
            self.line(stream, line)
        if rest:
            self.partial[stream] = rest[-65_536:]  # a line with no end is cut, not held without bound

    def line(self, stream: str, line: str) -> None:
        self.log.write(line if stream == "stdout" else f"{stream}: {line}")

    def close(self) -> None:
        for stream, rest in self.partial.items():
            self.line(stream, rest)
        self.partial.clear()


_current = threading.local()


def _attempt() -> _Attempt | None:
    return getattr(_current, "attempt", None)


class _Router(io.TextIOBase):
    """Stands in for `sys.stdout` or `sys.stderr`: the attempt's run log on an attempt's thread, else the original."""

    def __init__(self, stream: str, original: TextIO | None) -> None:
        super().__init__()
        self.stream, self.original = stream, original  # None: a process without that stream (a daemon's, say)

    def write(self, text: str) -> int:
        attempt = _attempt()
        if attempt is not None:
            attempt.write(self.stream, text)
        elif self.original is not None:
            return self.original.write(text)
        return len(text)

    def flush(self) -> None:
        if _attempt() is None and self.original is not None:
            self.original.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return _attempt() is None and self.original is not None and self.original.isatty()

    def fileno(self) -> int:
        if self.original is None:
            raise io.UnsupportedOperation("fileno")
        return self.original.fileno()

    def __getattr__(self, name: str) -> Any:  # encoding, errors, buffer ... of the stream it stands in for
        return getattr(self.original, name)


class _Handler(logging.Handler):
    """On the root logger: a record logged on an attempt's thread goes to its run log, with level and logger."""

    def __init__(self) -> None:
        super().__init__(CAPTURE_LEVEL)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        attempt = _attempt()
        if attempt is None:
            last_resort = logging.lastResort
            if last_resort and len(logging.getLogger().handlers) == 1 and record.levelno >= last_resort.level:
                last_resort.handle(record)  # only ours on the root: keep what Python did without it
            return
        for line in self.format(record).splitlines() or [""]:
            attempt.log.write(line)


_install_lock = threading.Lock()
_handler = _Handler()
_root = logging.getLogger()


def _install() -> None:
    """Put the routers in place (again, if someone replaced `sys.stdout` since) and the handler on the root
    logger. A root logger quieter than CAPTURE_LEVEL is opened to it, its other handlers keeping their level."""
    if type(sys.stdout) is _Router and type(sys.stderr) is _Router and _handler in _root.handlers:
        return  # every attempt after the first: no lock
    with _install_lock:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router("stdout", sys.stdout)
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router("stderr", sys.stderr)
        if _handler not in _root.handlers:
            if _root.level > CAPTURE_LEVEL:
                for handler in _root.handlers:
                    if handler.level < _root.level:
                        handler.setLevel(_root.level)
                _root.setLevel(CAPTURE_LEVEL)
            _root.addHandler(_handler)


class capturing:  # noqa: N801 - used as a function: `with capturing(log):`
    """While the body runs on this thread, what it prints or logs goes to `log`."""

    def __init__(self, log: TaskLogger) -> None:
        self._attempt = _Attempt(log)

    def __enter__(self) -> None:
        _install()
        _current.attempt = self._attempt

    def __exit__(self, *exc: object) -> None:
        _current.attempt = None
        self._attempt.close()
