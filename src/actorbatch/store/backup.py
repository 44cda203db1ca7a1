"""Backup and restore of a whole store: the log, the archive, the seals and the read models.

SQLite: the online backup API (`sqlite3.Connection.backup`), a consistent copy while servers write, into a SQLite
file. PostgreSQL: `pg_dump --format=custom` of the store's database, restored with `pg_restore --clean`, so the
event table's type and the commit-notification trigger come back with it (a database per store, as documented).
"""

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from actorbatch.errors import ActorbatchError
from actorbatch.store.urls import StoreUrl


def backup(url: StoreUrl, target: Path) -> None:
    """Write a consistent copy of the store to `target` (replaced if it exists)."""
    if url.kind == "sqlite":
        if not os.path.exists(url.path):
            raise ActorbatchError(f"no store at {url.path}")
        _sqlite_copy(url.path, target)
    elif url.kind == "postgresql":
        _run("pg_dump", url, ["--format=custom", "--no-owner", f"--file={target}", url.database()])
    else:
        raise ActorbatchError(f"store {url} cannot be backed up: it lives in memory")


def restore(url: StoreUrl, source: Path) -> None:
    """Replace the store's contents with the backup `source` (stop every server first)."""
    if not source.is_file():
        raise ActorbatchError(f"no backup at {source}")
    if url.kind == "sqlite":
        _sqlite_copy(str(source), Path(url.path))
    elif url.kind == "postgresql":
        _run("pg_restore", url, ["--clean", "--if-exists", "--no-owner", "--single-transaction",
                                 f"--dbname={url.database()}", str(source)])
    else:
        raise ActorbatchError(f"store {url} cannot be restored: it lives in memory")


def _sqlite_copy(source: str, target: Path) -> None:
    """Page by page, in one read transaction of `source`: writers may go on meanwhile."""
    try:
        src, dst = sqlite3.connect(source, timeout=30), sqlite3.connect(target, timeout=30)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
    except sqlite3.Error as error:
        raise ActorbatchError(f"cannot copy {source} to {target}: {error}") from None


def _run(tool: str, url: StoreUrl, args: list[str]) -> None:
    """Run a PostgreSQL client tool against the store's server; its error, in one line, if it fails."""
    program = shutil.which(tool)
    if program is None:
        raise ActorbatchError(f"{tool} not found: install the PostgreSQL client tools (postgresql-client)")
    env = {**os.environ, "PGPASSWORD": url.password} if url.password else dict(os.environ)
    done = subprocess.run([program, f"--host={url.host}", f"--port={url.port}", f"--username={url.user}",
                           "--no-password", *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise ActorbatchError(f"{tool} failed: {lines[-1] if lines else f'exit {done.returncode}'}")
