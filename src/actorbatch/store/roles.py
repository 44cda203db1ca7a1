"""PostgreSQL roles for people and servers that may append to the log but never change it (`init --role NAME`).

Members of the role may SELECT and INSERT events and keep the read models; the log's owner (who ran `init`)
keeps every right. eventsourcing locks the events table IN EXCLUSIVE MODE to append in order, which PostgreSQL
allows only with UPDATE (or DELETE, TRUNCATE) privilege: so the role gets UPDATE, and a trigger refuses every
UPDATE and DELETE of an event by anyone who is not a member of the table's owner.
"""

from typing import Any

from actorbatch.store.urls import StoreUrl

EVENTS = "actorbatch_events"
APPEND_ONLY = (
    "CREATE OR REPLACE FUNCTION actorbatch_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'USAGE') THEN "
    "RETURN COALESCE(NEW, OLD); END IF; "
    "RAISE EXCEPTION 'the event log is append-only: % of an event refused for %', TG_OP, current_user "
    "USING ERRCODE = 'insufficient_privilege'; END $$",
    f"DROP TRIGGER IF EXISTS actorbatch_append_only ON {EVENTS}",
    f"CREATE TRIGGER actorbatch_append_only BEFORE UPDATE OR DELETE ON {EVENTS} FOR EACH ROW "
    "EXECUTE FUNCTION actorbatch_append_only()",
)


def restrict(url: StoreUrl, role: str) -> None:
    """Create `role` (NOLOGIN) if it does not exist and give it exactly what using the store needs; grant it to
    login roles with `GRANT role TO alice`."""
    from psycopg import sql

    from actorbatch.store import notify

    name = sql.Identifier(role)
    with notify.connect(url) as conn, conn.transaction():
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(name))
        for statement in APPEND_ONLY:
            conn.execute(statement)
        _grant(conn, sql, name)


def _grant(conn: Any, sql: Any, name: Any) -> None:
    events, sequence = sql.Identifier(EVENTS), sql.Identifier(f"{EVENTS}_notification_id_seq")
    conn.execute(sql.SQL("REVOKE ALL ON {} FROM PUBLIC").format(events))
    conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE ON {} TO {}").format(events, name))
    conn.execute(sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(sequence, name))
    tables = [t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                                         "AND tablename LIKE 'ab\\_%'")]
    for table in tables:  # the read models, their seals and archive: rebuildable, checked against the log
        conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(sql.Identifier(table), name))
