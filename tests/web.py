"""Helpers to run a real `actorbatch web` process in tests and talk to it over HTTP."""

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from tests.processes import ROOT, stop


@contextmanager
def web_console(url: str, *args: str, log: Path | None = None) -> Iterator[str]:
    """A console on a free port of 127.0.0.1; yields its base URL, stops it (SIGTERM) afterwards."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "actorbatch", "--db", url, "web", "--port", "0", *args],
                                env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            yield _started(proc, err)
        finally:
            code = stop(proc)
            err.seek(0)
            assert code == 0, err.read().decode()[-3000:]


def _started(proc: subprocess.Popen[bytes], err: IO[bytes]) -> str:
    """The console's base URL, once it answers."""
    deadline = time.monotonic() + 60
    while True:
        err.seek(0)
        match = re.search(rb"http://127\.0\.0\.1:(\d+)/", err.read())
        if match:
            base = f"http://127.0.0.1:{match[1].decode()}"
            try:
                httpx.get(base + "/api/openapi.json", trust_env=False, timeout=5)
                return base
            except httpx.TransportError:
                pass
        assert proc.poll() is None and time.monotonic() < deadline, err.read().decode()[-3000:]
        time.sleep(0.05)


def http(base: str) -> httpx.Client:
    """A client that talks to the console directly, whatever proxy the environment names."""
    return httpx.Client(base_url=base, trust_env=False, timeout=30)
