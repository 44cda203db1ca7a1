"""Store URLs: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `postgresql://user@host:port/db`,
and `memory://` (an in-process store for tests and simulations).

A PostgreSQL URL keeps every query parameter (`sslmode`, `options`, `application_name`, a Unix-socket folder as
`host`, ...): each connection gets them all as libpq conninfo. A password is kept in memory only, never shown.
"""

import os
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from actorbatch.errors import ActorbatchError
from actorbatch.frozen import frozen

DEFAULT_URL = "sqlite:///actorbatch.db"


def default_url() -> str:
    """The store when none is named: `ACTORBATCH_DB`, else `sqlite:///actorbatch.db`."""
    return os.environ.get("ACTORBATCH_DB") or DEFAULT_URL


@frozen
class StoreUrl:
    kind: str  # "sqlite" | "postgresql" | "memory"
    path: str = ""  # sqlite: the database file
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    dbname: str = ""
    params: tuple[tuple[str, str], ...] = ()  # the URL's other libpq parameters, in order

    def conninfo(self, **defaults: str | int) -> str:
        """libpq conninfo with every parameter of the URL; `defaults` (e.g. connect_timeout) where it gives none."""
        from psycopg.conninfo import make_conninfo

        given = dict(self.params)
        chosen = {k: v for k, v in defaults.items() if k not in given}
        return make_conninfo("", host=self.host, port=self.port, user=self.user, password=self.password or None,
                             dbname=self.dbname, **chosen, **given)

    def database(self) -> str:
        """The database and the URL's other parameters as conninfo, without any password: what a client tool
        (pg_dump, pg_restore) takes as its database name on a command line, which `ps` shows."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo("", dbname=self.dbname, **{k: v for k, v in self.params if "password" not in k})

    def extra_conninfo(self) -> str:
        """The parameters beyond host, port, user, password and database, as conninfo."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo("", **dict(self.params))

    def read_only(self) -> bool:
        """A SQLite file this process cannot write (a read-only file, folder or mount): it is opened read-only,
        so reads still work (SQLite could not even read it otherwise: WAL mode writes beside the file)."""
        if self.kind != "sqlite" or not os.path.exists(self.path):
            return False
        return not (os.access(self.path, os.W_OK) and os.access(os.path.dirname(self.path), os.W_OK))

    def sqlite_target(self) -> str:
        """What to hand `sqlite3.connect(..., uri=True)`: the path, or a read-only URI for a read-only file."""
        return f"file:{quote(self.path)}?mode=ro&immutable=1" if self.read_only() else self.path

    def with_password(self) -> str:
        """The URL to connect with again, every parameter kept (`str()` leaves passwords out, for showing)."""
        shown = str(self)
        secret = [(k, v) for k, v in self.params if "password" in k]
        if self.kind != "postgresql" or not (secret or self.password):
            return shown
        secret += [("password", self.password)] if self.password else []
        return f"{shown}{'&' if '?' in shown else '?'}{urlencode(secret)}"

    def __str__(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.path}"
        if self.kind == "postgresql":
            shown = [(k, v) for k, v in self.params if "password" not in k]  # sslpassword, say
            query = f"?{urlencode(shown)}" if shown else ""
            if self.host.startswith("/"):  # a Unix-socket folder
                return f"postgresql://{self.user}@/{self.dbname}?{urlencode([('host', self.host), *shown])}"
            return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}{query}"
        return "memory://"


def parse_url(url: str) -> StoreUrl:
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if not path:
            raise ActorbatchError(f"store URL {url!r} names no file; e.g. sqlite:///actorbatch.db")
        return StoreUrl("sqlite", path=os.path.abspath(path))
    if url in ("memory://", "memory:"):
        return StoreUrl("memory")
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres"):
        return _postgresql(url, parts.hostname, parts.path, parts.query, parts.username, parts.password, parts.port)
    raise ActorbatchError(f"unsupported store URL {_without_password(url)!r}: use sqlite:///FILE or "
                          "postgresql://user@host:port/db")


def _postgresql(url: str, hostname: str | None, path: str, query: str, username: str | None,
                password: str | None, port: int | None) -> StoreUrl:
    """`postgresql://user[:password]@host[:port]/db[?param=value&...]`; `host`, `port`, `user`, `password` and
    `dbname` may be given as parameters instead (`postgresql://user@/db?host=/var/run/postgresql`)."""
    shown = _without_password(url)
    try:
        params = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise ActorbatchError(f"store URL {shown!r}: cannot read its parameters") from None
    host = params.pop("host", "") or hostname
    dbname = params.pop("dbname", "") or unquote(path.lstrip("/"))
    if not host or not dbname:
        raise ActorbatchError(f"store URL {shown!r}: expected postgresql://user@host:port/dbname "
                              "(or postgresql://user@/dbname?host=/socket/folder)")
    port_text = params.pop("port", None)
    try:
        number = int(port_text) if port_text is not None else port or 5432
    except ValueError:
        raise ActorbatchError(f"store URL {shown!r}: port must be a number") from None
    return StoreUrl("postgresql", host=host, port=number, user=params.pop("user", "") or unquote(username or
                    "postgres"), password=params.pop("password", "") or unquote(password or ""), dbname=dbname,
                    params=tuple(params.items()))


def _without_password(url: str) -> str:
    """The URL as an error may show it."""
    parts = urlsplit(url)
    if parts.password is None:
        return url.split("?", 1)[0]
    return url.split("?", 1)[0].replace(f":{parts.password}@", ":***@", 1)
