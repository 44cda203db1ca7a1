"""eventsourcing's PostgreSQL factory, keeping every parameter of the store URL (sslmode, options, ...), with a
recorder that can append on condition (see `ConditionalRecorder`).

eventsourcing's settings name only host, port, user, password and database; the rest of the URL's libpq
parameters, as conninfo in the application's `ACTORBATCH_CONNINFO` setting, go to its pool before the pool opens
its first connection.
"""

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from eventsourcing.utils import Environment
from psycopg.sql import SQL, Identifier

from actorbatch.errors import Moved

CONNINFO = "ACTORBATCH_CONNINFO"


class ConditionalRecorder(PostgresApplicationRecorder):
    """eventsourcing's recorder, and `insert_if(stored, unchanged={id: version})`, which appends on condition:
    under the table lock that serialises every append, if one of those aggregates is not at the version given
    (0: no events), Moved is raised and nothing is written.

    It is one round trip: `BEGIN`, the lock, the look at the versions, the insert (which carries the look as its
    own condition, so nothing is written if it fails) and `COMMIT` go out in one pipeline, and the answers are read
    once. eventsourcing's own insert waits for the `BEGIN`, for the insert and for the commit in turn, so the event
    store sends every append here, with no aggregate to look at when it has no condition."""

    @property
    def appends_on_condition(self) -> bool:
        return not self.datastore.enable_db_functions  # the database-function insert takes no condition

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        table = {"schema": Identifier(self.datastore.schema), "table": Identifier(self.events_table_name)}
        self.look_statement = SQL(
            "SELECT originator_id, MAX(originator_version) AS version FROM {schema}.{table} "
            "WHERE originator_id = ANY(%s) GROUP BY originator_id"
        ).format(**table)
        self.insert_if_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[]) "
            "WHERE NOT EXISTS (SELECT FROM unnest(%s::uuid[], %s::bigint[]) AS looked (id, version) "
            "WHERE COALESCE((SELECT MAX(originator_version) FROM {schema}.{table} "
            "WHERE originator_id = looked.id), 0) <> looked.version) "
            "RETURNING notification_id"
        ).format(**table)

    def insert_if(self, stored_events: Sequence[StoredEvent], unchanged: Mapping[UUID, int]) -> list[int]:
        """Insert the events unless an aggregate of `unchanged` moved (then Moved, naming those); returns their
        positions in the log. Like the store's other calls, it is tried once (see `eventstore._fail_fast`)."""
        rows = [[getattr(e, column) for e in stored_events] for column in STORED_COLUMNS]
        with self.datastore.get_connection() as conn:
            control, look, insert = conn.cursor(), conn.cursor(), conn.cursor()
            try:
                with conn.pipeline():
                    control.execute("BEGIN")
                    self._lock_table(control)
                    self._notify_channel(control)
                    look.execute(self.look_statement, (list(unchanged),), prepare=True)
                    insert.execute(self.insert_if_statement, (*rows, list(unchanged), list(unchanged.values())),
                                   prepare=True)
                    control.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):  # a lost connection: the pool drops it
                    conn.rollback()  # the failed transaction, and the pipeline's aborted state
                raise
            found = {row["originator_id"]: row["version"] for row in look.fetchall()}
            inserted = [row["notification_id"] for row in insert.fetchall()]
        if len(inserted) != len(stored_events):  # the condition failed: nothing was written
            raise Moved(frozenset(a for a, version in unchanged.items() if found.get(a, 0) != version)
                        or frozenset(unchanged))
        return inserted


STORED_COLUMNS = ("originator_id", "originator_version", "topic", "state")


class Factory(PostgresFactory):
    application_recorder_class = ConditionalRecorder

    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        self.datastore.pool.conninfo = env.get(CONNINFO) or ""
