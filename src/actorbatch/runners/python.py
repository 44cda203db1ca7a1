"""Python task bodies: `package.module:function`, called with a TaskContext in an executor thread."""

import importlib
import traceback
from collections.abc import Callable
from functools import cache
from typing import Any

import msgpack

from actorbatch.runners.capture import capturing
from actorbatch.runners.context import TaskContext

MAX_RESULT_BYTES = 1 << 20  # a result rides in an event: every reader of the run decodes it, so it stays small


class TaskError(Exception):
    """The body failed; the message is the task's exit status."""


@cache
def resolve(target: str) -> Callable[[TaskContext], Any]:
    module_name, _, function_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise TaskError(f"cannot import {module_name}: {error}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise TaskError(f"{target} is not a callable")
    return function  # type: ignore[no-any-return]


def run_python(target: str, ctx: TaskContext) -> Any:
    """Call the body; returns its (msgpack-able) result or raises TaskError with a one-line exit status. What the
    body prints or logs, and the traceback it raises, go to the run log."""
    function = resolve(target)
    with capturing(ctx.log):
        try:
            result = function(ctx)
        except BaseException as error:  # noqa: BLE001 - sys.exit or KeyboardInterrupt in a body end its attempt only
            if not isinstance(error, SystemExit):
                for chunk in traceback.format_exception(type(error), error, _body_frames(error)):
                    for line in chunk.rstrip("\n").splitlines():
                        ctx.log.write(line)
            raise TaskError(exit_status(error)) from None
    if ctx.cancelled():
        raise TaskError("cancelled")
    check_result(result)
    return result


def _body_frames(error: BaseException) -> Any:
    """The traceback from the body's frame on: this module's call is no part of what the author needs to read."""
    frames = error.__traceback__
    return frames.tb_next if frames is not None and frames.tb_next is not None else frames


def exit_status(error: BaseException) -> str:
    """One line that says how the body ended: `ValueError: bad input`, `SystemExit: 3`, `KeyboardInterrupt`."""
    detail = error.code if isinstance(error, SystemExit) else error
    text = f"{type(error).__name__}: {detail}" if str(detail) not in ("", "None") else type(error).__name__
    return (text.splitlines() or [type(error).__name__])[0][:500]


def check_result(result: Any) -> None:
    """A result that cannot be stored, or is over MAX_RESULT_BYTES encoded, fails the attempt, naming why."""
    try:
        size = len(msgpack.packb(result))
    except (TypeError, ValueError, OverflowError):
        raise TaskError(f"result of type {type(result).__name__} cannot be stored (must be msgpack-able)") from None
    if size > MAX_RESULT_BYTES:
        raise TaskError(f"result too large: {size / (1 << 20):.1f} MiB encoded > {MAX_RESULT_BYTES >> 20} MiB")
