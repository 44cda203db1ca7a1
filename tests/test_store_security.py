"""The store refuses what it can (DESIGN §3, docs/security.md): a SQLite file only its owner can open; PostgreSQL
URLs whose every parameter reaches the server (TLS mode, Unix sockets, options); no password in any process's
argv; a role whose members may append events but never change or delete them."""

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

import actorbatch
from actorbatch.domain.jobfile import parse_job
from actorbatch.errors import PermissionDenied
from tests.processes import ROOT, wait_for

JOB = parse_job({"name": "j", "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]})
ROLE, MEMBER = "ab_identity_users", "ab_identity_alice"  # cluster-wide names: this suite's own


def cli(url: str, *args: str, env: dict[str, str] | None = None, **options: object
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "actorbatch", *args], env={**os.environ, "ACTORBATCH_DB": url,
                          "PYTHONPATH": str(ROOT), **(env or {})}, capture_output=True, text=True, timeout=120,
                          check=False, **options)  # type: ignore[call-overload]


def test_init_creates_the_sqlite_file_for_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    actorbatch.init(f"sqlite:///{path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another OS user")
def test_another_os_user_cannot_read_the_store(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    path = tmp_path / "store.db"
    actorbatch.init(f"sqlite:///{path}")
    done = subprocess.run(["cat", str(path)], user="nobody", cwd="/", capture_output=True, check=False)
    assert done.returncode != 0 and b"Permission denied" in done.stderr


@pytest.mark.postgres
@pytest.mark.slow
def test_no_process_shows_the_password(pg_url: str) -> None:
    secret = "s3cret-never-in-argv"
    url = pg_url.replace("postgresql://postgres@", f"postgresql://postgres:{secret}@", 1)  # trust: not checked
    server = subprocess.Popen([sys.executable, "-m", "actorbatch", "server", "start", "--name", "ps-check"],
                              env={**os.environ, "ACTORBATCH_DB": url, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def projector_running() -> bool:
            listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
            return "projections follow" in listing
        wait_for(projector_running, 60, "the projector child")
        listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
        assert secret not in listing
        with actorbatch.connect(pg_url) as client:
            wait_for(lambda: any(s["name"] == "ps-check" for s in client.servers()), 60, "the server")
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0].decode()
    assert server.returncode == 0 and secret not in output


@pytest.mark.postgres
def test_every_url_parameter_reaches_the_server(pg_url: str) -> None:
    tagged = f"{pg_url}?sslmode=disable&application_name=ab-identity-check"
    with actorbatch.connect(tagged) as client:
        client.add_job(JOB)
        assert client.views.db.query("SELECT current_setting('application_name')") == [("ab-identity-check",)]
        with client.store._app.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
            assert conn.execute("SHOW application_name").fetchone()["application_name"] == "ab-identity-check"
        assert [j["name"] for j in client.jobs()] == ["j"]
    with pytest.raises(actorbatch.ActorbatchError, match=r"SSL|ssl") as refused:
        actorbatch.connect(f"{pg_url}?sslmode=require")  # the test server has no TLS: the mode was passed on
    assert "password" not in str(refused.value)


@pytest.mark.postgres
def test_a_unix_socket_url_works(pg_url: str) -> None:
    dbname = pg_url.rsplit("/", 1)[1]
    socket = f"postgresql://postgres@/{dbname}?host=/var/run/postgresql"
    if not Path("/var/run/postgresql/.s.PGSQL.5432").exists():
        pytest.skip("PostgreSQL listens on no Unix socket here")
    actorbatch.init(socket)
    with actorbatch.connect(socket) as client:
        client.add_job(JOB)
        assert client.identity == "postgres" and [j["name"] for j in client.jobs()] == ["j"]
        assert str(client.store.url) == socket.replace("/var/run/postgresql", "%2Fvar%2Frun%2Fpostgresql")
    done = cli(socket, "job", "list", "--json")
    assert done.returncode == 0 and '"name": "j"' in done.stdout


@pytest.mark.postgres
def test_members_of_the_role_append_and_read_but_cannot_change_the_log(pg_url: str) -> None:
    actorbatch.init(pg_url, role=ROLE)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (MEMBER,)).fetchone():
            conn.execute(f"CREATE ROLE {MEMBER} LOGIN")
        conn.execute(f"GRANT {ROLE} TO {MEMBER}")
    with actorbatch.connect(pg_url) as owner:
        owner.grant(owner.user, ["admin"])
        owner.grant(MEMBER, ["job.manage"])
    alice_url = pg_url.replace("postgresql://postgres@", f"postgresql://{MEMBER}@", 1)
    with actorbatch.connect(alice_url) as alice:
        assert alice.user == MEMBER  # the connection's role: the store vouches for it
        alice.add_job(JOB)
        assert [e["user"] for e in alice.audit(job="j")] == [MEMBER]
        with pytest.raises(PermissionDenied, match=f"^permission denied: {MEMBER} lacks admin$"):
            actorbatch.connect(alice_url, user="postgres")  # --user is honoured for admins only
    with psycopg.connect(alice_url, autocommit=True) as conn:
        for statement in ("UPDATE actorbatch_events SET topic = topic", "DELETE FROM actorbatch_events",
                          "TRUNCATE actorbatch_events"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with actorbatch.connect(pg_url) as owner:
        assert owner.verify()["ok"] and [j["name"] for j in owner.jobs()] == ["j"]
