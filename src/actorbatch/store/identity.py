"""Who the store can vouch for: the user a connection really is, whatever name a command line gives.

On PostgreSQL the database authenticated the connection's role; on SQLite whoever can write the file can do
anything, so the best the store can say is which OS user this process runs as (its effective uid, not `$USER`,
which anyone can set).
"""

import getpass
import os

from actorbatch.store.sql import SqlDb


def os_user() -> str:
    """The OS user of this process's effective uid (getpass's name where the uid has no entry)."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return getpass.getuser()


def vouched_user(db: SqlDb) -> str:
    """The connection's database role on PostgreSQL, else the OS user."""
    if db.dialect == "postgresql":
        return str(db.query("SELECT current_user")[0][0])
    return os_user()
