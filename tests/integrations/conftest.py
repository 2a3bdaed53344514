"""Fixtures for the integration tests: a throwaway PostgreSQL server, study checks."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

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
        msg = "PostgreSQL server binaries (initdb, pg_ctl) not found"
        if os.environ.get("CI"):
            pytest.fail(msg + " although CI is set: .ci/run must `apt-get install postgresql`")
        pytest.skip(msg)
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
