"""Python task bodies: `package.module:function`, called with a TaskContext in an executor thread."""

import importlib
from collections.abc import Callable
from functools import cache
from typing import Any

import msgpack

from actorbatch.runners.context import TaskContext


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
    except Exception as error:  # any failure of user code is the task's failure
        raise TaskError(f"{type(error).__name__}: {error}".splitlines()[0][:500]) from error
    if ctx.cancelled():
        raise TaskError("cancelled")
    try:
        msgpack.packb(result)
    except (TypeError, ValueError, OverflowError):
        raise TaskError(f"result of type {type(result).__name__} cannot be stored (must be msgpack-able)") from None
    return result
