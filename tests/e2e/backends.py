"""Databases for running the suite against Chronicle on PostgreSQL or MySQL/MariaDB.

CHRONICLE_TEST_BACKEND=postgres|mysql (default sqlite) selects the backend; every server a
test starts gets a database of its own on the machine's server (CHRONICLE_TEST_POSTGRES /
CHRONICLE_TEST_MYSQL give the admin URL), created with the database's own command-line
client and dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from urllib.parse import urlparse

BACKENDS = ("sqlite", "postgres", "mysql")
DEFAULT_URLS = {
    "postgres": "postgres://postgres@127.0.0.1:5432/test",
    "mysql": "mysql://root@127.0.0.1:3306/test",
}


def backend() -> str:
    name = os.environ.get("CHRONICLE_TEST_BACKEND", "sqlite").strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"CHRONICLE_TEST_BACKEND must be one of {BACKENDS}, got {name!r}")
    return name


def admin_url(kind: str) -> str:
    return os.environ.get(f"CHRONICLE_TEST_{kind.upper()}", DEFAULT_URLS[kind])


def sql(kind: str, statement: str, database: str | None = None) -> str:
    """Runs one statement with the backend's command-line client; returns its output."""
    url = urlparse(admin_url(kind))
    if kind == "postgres":
        cmd = ["psql", "-h", url.hostname, "-p", str(url.port or 5432), "-U", url.username or "postgres",
               "-d", database or url.path.lstrip("/"), "-Atqc", statement]
        env = {**os.environ, "PGPASSWORD": url.password or ""}
    else:
        cmd = ["mariadb", "-h", url.hostname, "-P", str(url.port or 3306), "-u", url.username or "root",
               "-N", "-e", statement, *([database] if database else [])]
        if url.password:
            cmd.insert(1, f"-p{url.password}")
        env = dict(os.environ)
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, timeout=60).stdout


def create_database(kind: str) -> tuple[str, str]:
    """A new, empty database: (its name, its URL). On MySQL the URL names a user of the same
    name with rights on that database only, as a production node would have, which also
    lets `block_connections` shut this server out without touching anyone else."""
    name = f"chronicle_e2e_{uuid.uuid4().hex[:12]}"
    sql(kind, f"CREATE DATABASE {name}")
    url = urlparse(admin_url(kind))
    if kind == "mysql":
        sql(kind, f"CREATE USER '{name}'@'%'; GRANT ALL ON {name}.* TO '{name}'@'%'")
        return name, f"mysql://{name}@{url.hostname}:{url.port or 3306}/{name}"
    return name, f"{admin_url(kind).rsplit('/', 1)[0]}/{name}"


def drop_database(kind: str, name: str) -> None:
    statements = [f"DROP DATABASE IF EXISTS {name}" + (" WITH (FORCE)" if kind == "postgres" else "")]
    if kind == "mysql":
        statements.append(f"DROP USER IF EXISTS '{name}'@'%'")
    for statement in statements:
        try:
            sql(kind, statement)
        except subprocess.CalledProcessError:
            pass  # best effort: a leftover test database harms nothing


def block_connections(kind: str, name: str) -> None:
    """The database goes away for its server: open connections are killed, new ones refused."""
    if kind == "postgres":
        sql(kind, f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        sql(kind, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    else:
        sql(kind, f"ALTER USER '{name}'@'%' ACCOUNT LOCK")
        ids = sql(kind, f"SELECT id FROM information_schema.processlist WHERE user = '{name}'")
        for connection in ids.split():
            try:
                sql(kind, f"KILL {connection}")
            except subprocess.CalledProcessError:
                pass  # it closed by itself meanwhile


def allow_connections(kind: str, name: str) -> None:
    if kind == "postgres":
        sql(kind, f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    else:
        sql(kind, f"ALTER USER '{name}'@'%' ACCOUNT UNLOCK")


def config(kind: str, dsn: str, port: int) -> str:
    """A node's configuration file for the test server."""
    return (
        "[server]\n"
        f'ip = "127.0.0.1"\nport = {port}\nlog_level = "info"\n\n'
        "[persistence]\n"
        f'backend = "{kind}"\ndsn = "{dsn}"\nmax_connections = 8\n\n'
        "[history]\nshard_count = 4\n"
    )
