"""Python task bodies: `package.module:function`, called with a TaskContext in an executor thread."""

import importlib
from collections.abc import Callable
from functools import cache
from typing import Any

import msgpack

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
    """Call the body; returns its (msgpack-able) result or raises TaskError with a one-line exit status."""
    function = resolve(target)
    try:
        result = function(ctx)
    except BaseException as error:  # noqa: BLE001 - sys.exit or KeyboardInterrupt in a body end its attempt only
        raise TaskError(exit_status(error)) from None
    if ctx.cancelled():
        raise TaskError("cancelled")
    check_result(result)
    return result


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
