"""Store URLs: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `postgresql://user@host:port/db`,
and `memory://` (an in-process store for tests and simulations)."""

import os
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from actorbatch.errors import ActorbatchError

DEFAULT_URL = "sqlite:///actorbatch.db"


def default_url() -> str:
    """The store when none is named: `ACTORBATCH_DB`, else `sqlite:///actorbatch.db`."""
    return os.environ.get("ACTORBATCH_DB") or DEFAULT_URL


@dataclass(frozen=True)
class StoreUrl:
    kind: str  # "sqlite" | "postgresql" | "memory"
    path: str = ""  # sqlite: the database file
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    dbname: str = ""

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
        """The URL to connect with again (`str()` leaves the password out, for showing)."""
        if self.kind != "postgresql" or not self.password:
            return str(self)
        return f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}@{self.host}:{self.port}/" \
               f"{self.dbname}"

    def __str__(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.path}"
        if self.kind == "postgresql":
            return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"
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
        dbname = parts.path.lstrip("/")
        if not parts.hostname or not dbname:
            raise ActorbatchError(f"store URL {url!r}: expected postgresql://user@host:port/dbname")
        return StoreUrl("postgresql", host=parts.hostname, port=parts.port or 5432,
                        user=unquote(parts.username or "postgres"), password=unquote(parts.password or ""),
                        dbname=dbname)
    raise ActorbatchError(f"unsupported store URL {url!r}: use sqlite:///FILE or postgresql://user@host:port/db")
