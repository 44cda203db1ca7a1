"""Database upkeep after a prune: give the space of archived rows back and refresh the planner's statistics.

SQLite: `PRAGMA wal_checkpoint(TRUNCATE)`, `VACUUM`, `ANALYZE` of the whole file. PostgreSQL: `VACUUM ANALYZE`
and `REINDEX TABLE CONCURRENTLY` (writers keep writing) of each of the project's tables. Each step is tried on its
own; its outcome (`ok` with its duration, or the error in one line) is returned for the run log.
"""

import time
from collections.abc import Sequence

from actorbatch.store.outage import first_line
from actorbatch.store.sql import SqlDb

EVENTS_TABLES = {"sqlite": "stored_events", "postgresql": "actorbatch_events"}


def statements(dialect: str, tables: Sequence[str]) -> list[str]:
    """The upkeep statements for a store of `dialect` whose read-model tables are `tables`."""
    if dialect == "sqlite":
        return ["PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "ANALYZE"]
    every = [EVENTS_TABLES["postgresql"], *tables]
    return [*(f"VACUUM ANALYZE {t}" for t in every), *(f"REINDEX TABLE CONCURRENTLY {t}" for t in every)]


def upkeep(db: SqlDb, tables: Sequence[str]) -> list[dict[str, str | float]]:
    """Run every upkeep statement outside any transaction; one outcome per statement, none stops the next."""
    outcomes: list[dict[str, str | float]] = []
    for statement in statements(db.dialect, tables):
        started = time.perf_counter()
        try:
            db.execute(statement)
        except Exception as error:  # noqa: BLE001 - each step's outcome is reported, whatever the driver raised
            outcomes.append({"step": statement, "outcome": "error", "error": first_line(error)})
            continue
        outcomes.append({"step": statement, "outcome": "ok", "seconds": round(time.perf_counter() - started, 3)})
    return outcomes
