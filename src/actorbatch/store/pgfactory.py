"""eventsourcing's PostgreSQL factory, keeping every parameter of the store URL (sslmode, options, ...).

eventsourcing's settings name only host, port, user, password and database; the rest of the URL's libpq
parameters, as conninfo in the application's `ACTORBATCH_CONNINFO` setting, go to its pool before the pool opens
its first connection.
"""

from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import Environment

CONNINFO = "ACTORBATCH_CONNINFO"


class Factory(PostgresFactory):
    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        self.datastore.pool.conninfo = env.get(CONNINFO) or ""
