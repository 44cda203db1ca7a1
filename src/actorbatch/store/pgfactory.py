"""eventsourcing's PostgreSQL factory, keeping every parameter of the store URL (sslmode, options, ...), with a
recorder that can append on condition (see `ConditionalRecorder`).

eventsourcing's settings name only host, port, user, password and database; the rest of the URL's libpq
parameters, as conninfo in the application's `ACTORBATCH_CONNINFO` setting, go to its pool before the pool opens
its first connection.
"""

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from eventsourcing.utils import Environment
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from actorbatch.errors import Moved

CONNINFO = "ACTORBATCH_CONNINFO"


class ConditionalRecorder(PostgresApplicationRecorder):
    """eventsourcing's recorder; `insert_events(stored, unchanged={id: version})` first takes the table lock that
    serialises every append, then looks at those aggregates' versions, in the same transaction: if one is not at
    the version given (0: no events), Moved is raised and nothing is written."""

    @property
    def appends_on_condition(self) -> bool:
        return not self.datastore.enable_db_functions  # the database-function insert takes no condition

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.look_statement = SQL(
            "SELECT originator_id, MAX(originator_version) AS version FROM {schema}.{table} "
            "WHERE originator_id = ANY(%s) GROUP BY originator_id"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))

    def _insert_stored_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
                              ) -> None:
        unchanged: Mapping[UUID, int] | None = kwargs.pop("unchanged", None)
        if unchanged:
            self._lock_table(curs)  # taken again by the insert below: a lock held is not waited for
            curs.execute(self.look_statement, (list(unchanged),), prepare=True)
            found = {row["originator_id"]: row["version"] for row in curs.fetchall()}
            moved = frozenset(a for a, version in unchanged.items() if found.get(a, 0) != version)
            if moved:
                raise Moved(moved)
        super()._insert_stored_events(curs, stored_events, **kwargs)


class Factory(PostgresFactory):
    application_recorder_class = ConditionalRecorder

    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        self.datastore.pool.conninfo = env.get(CONNINFO) or ""
