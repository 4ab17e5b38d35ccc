"""Store fixtures: every store test runs on SQLite and on a throw-away PostgreSQL cluster."""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres_dsn():
    """A DSN of a private PostgreSQL cluster listening only on a unix socket; skips when
    psycopg or the server binaries are missing or the cluster does not start."""
    pytest.importorskip("psycopg")
    tools = {name: shutil.which(name) for name in ("initdb", "pg_ctl", "postgres")}
    if not all(tools.values()):
        pytest.skip(f"PostgreSQL binaries not on PATH: {', '.join(n for n, p in tools.items() if not p)}")
    as_postgres = []
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="apel-pg-"))
    data, sock, log = root / "data", root / "sock", root / "server.log"
    sock.mkdir()
    if as_postgres:
        for path in (root, sock):
            shutil.chown(path, "postgres", "postgres")

    def pg(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*as_postgres, *args], capture_output=True, text=True, timeout=60)

    options = f"-c listen_addresses='' -c unix_socket_directories={sock} -c fsync=off -c synchronous_commit=off"
    init = pg(tools["initdb"], "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
    start = init if init.returncode else pg(tools["pg_ctl"], "-D", str(data), "-l", str(log), "-w", "-t", "60",
                                            "-o", options, "start")
    if start.returncode:
        reason = (start.stderr or start.stdout).strip()[-500:]
        if log.exists():
            reason += "\n" + log.read_text()[-500:]
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"cannot start a PostgreSQL cluster: {reason}")
    try:
        yield f"postgresql:///postgres?host={sock}&user=postgres"
    finally:
        pg(tools["pg_ctl"], "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    """The URL of an empty store: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "store.db")
        return
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    dsn = request.getfixturevalue("postgres_dsn")
    name = f"apel_test_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield f"postgresql:///{name}?host={conninfo_to_dict(dsn)['host']}&user=postgres"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def store(store_url):
    from geomir.apel.store import open_store

    with open_store(store_url) as s:
        yield s
