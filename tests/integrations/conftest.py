"""Fixtures for the integration tests: throwaway PostgreSQL and MariaDB servers."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

def _pg_bindir() -> Path | None:
    """Directory holding initdb and pg_ctl: Debian's versioned dirs first, then PATH."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2])
                  if p.split("/")[-2].isdigit() else 0, reverse=True)
    for d in dirs:
        if os.access(os.path.join(d, "initdb"), os.X_OK) and os.access(os.path.join(d, "pg_ctl"), os.X_OK):
            return Path(d)
    for name in ("pg_ctl", "initdb"):
        found = shutil.which(name)
        if found and os.access(os.path.join(os.path.dirname(found), "initdb"), os.X_OK):
            return Path(os.path.dirname(os.path.realpath(found)))
    return None


def _missing(what: str, package: str) -> NoReturn:
    """Skip; under CI (env ``CI`` set) fail: ``.ci/run`` installs the server package."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} not found although CI is set: .ci/run must `apt-get install {package}`")
    pytest.skip(f"{what} not found")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server started for this test session on a free loopback port.

    initdb refuses to run as root, so as root the server runs as the ``postgres``
    user (created by the Debian package) in a temporary directory it owns. Without
    server binaries the tests skip, except under CI (env ``CI`` set), where they fail:
    ``.ci/run`` installs PostgreSQL, so missing binaries there are a CI defect.
    """
    bindir = _pg_bindir()
    if bindir is None:
        _missing("PostgreSQL server binaries (initdb, pg_ctl)", "postgresql")
    prefix: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="zoar-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(base)
            msg = "running as root and there is no `postgres` user to run the server as"
            if os.environ.get("CI"):
                pytest.fail(msg)
            pytest.skip(msg)
        os.chown(base, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else []
        if not prefix:  # pragma: no cover - runuser is in util-linux on every Debian
            shutil.rmtree(base)
            pytest.fail("running as root but `runuser` is missing")
    os.chmod(base, 0o755)
    data, port = base / "data", _free_port()
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8", "--no-sync"],
                   check=True, capture_output=True)
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
    start = subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l",
                            str(base / "server.log"), "-w", "-t", "60", "-o", opts, "start"],
                           capture_output=True, text=True)
    if start.returncode != 0:
        log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed: {start.stderr}\n{log}")
    try:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE zoar")
        conn.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/zoar"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "-w", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _mariadb_binaries() -> tuple[str, str] | None:
    """mariadbd (or mysqld) and mariadb-install-db (or mysql_install_db), if installed."""
    server = next((p for p in (shutil.which("mariadbd"), "/usr/sbin/mariadbd", shutil.which("mysqld"),
                               "/usr/sbin/mysqld") if p and os.access(p, os.X_OK)), None)
    install = next((p for p in (shutil.which("mariadb-install-db"), shutil.which("mysql_install_db"))
                    if p), None)
    return (server, install) if server and install else None


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """A MariaDB server started for this test session on a free loopback port.

    The data directory is a fresh temporary one (``mariadb-install-db``); as root the
    server runs as the ``mysql`` user (created by Debian's ``mariadb-server``). Grant
    tables are skipped (loopback only, throwaway data). Strict SQL mode (MariaDB's
    default) makes a value longer than a ``TEXT`` column an error, not a silent cut.
    Without the binaries the tests skip, except under CI (env ``CI``), where they fail:
    ``.ci/run`` installs ``mariadb-server``.
    """
    found = _mariadb_binaries()
    if found is None:
        _missing("MariaDB server binaries (mariadbd, mariadb-install-db)", "mariadb-server")
    server, install = found
    try:
        import pymysql  # noqa: F401  (the driver comes from PyPI: the `optuna` extra)
    except ImportError:
        pytest.fail("PyMySQL is missing: install the `optuna` extra")
    base = Path(tempfile.mkdtemp(prefix="zoar-mariadb-"))
    os.chmod(base, 0o755)
    user: list[str] = []
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("mysql")
        except KeyError:
            shutil.rmtree(base)
            pytest.fail("running as root and there is no `mysql` user to run the server as")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        user = ["--user=mysql"]
    data, port, sock = base / "data", _free_port(), base / "mysqld.sock"
    init = subprocess.run([install, "--no-defaults", *user, f"--datadir={data}",
                           "--auth-root-authentication-method=normal", "--skip-test-db"],
                          capture_output=True, text=True)
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"mariadb-install-db failed: {init.stdout[-2000:]}\n{init.stderr[-2000:]}")
    log = base / "server.log"
    proc = subprocess.Popen([server, "--no-defaults", *user, f"--datadir={data}", f"--port={port}",
                             "--bind-address=127.0.0.1", f"--socket={sock}", f"--log-error={log}",
                             f"--pid-file={base / 'mysqld.pid'}", "--skip-grant-tables",
                             "--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=64M",
                             "--max-connections=200", "--skip-log-bin"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import pymysql

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = pymysql.connect(host="127.0.0.1", port=port, user="root")
                break
            except pymysql.err.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    text = log.read_text() if log.exists() else ""
                    pytest.fail(f"mariadbd did not start:\n{text[-3000:]}")
                time.sleep(0.3)
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE zoar")
        conn.close()
        yield f"mysql+pymysql://root@127.0.0.1:{port}/zoar"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(base, ignore_errors=True)
