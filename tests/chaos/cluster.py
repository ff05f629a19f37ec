"""A PostgreSQL cluster of the run's own: ``initdb`` in a temporary folder, ``pg_ctl`` on a free
loopback port.  The chaos scenarios stop and start it, which they must never do to a shared
server.

PostgreSQL refuses to run as root: when this process is root, the cluster's folder belongs to the
unprivileged ``nobody`` user, and ``initdb`` and ``pg_ctl`` run as that user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

from tests import processes

__all__ = ["Cluster", "ClusterError", "find_bin"]

#: initdb's other options: no fsync (a test cluster), UTF-8, the C locale.
_INITDB = ("--no-sync", "-E", "UTF8", "--locale=C")

#: The unprivileged user the cluster runs as when this process is root.
NOBODY = 65534


class ClusterError(Exception):
    """The cluster could not be made or started."""


def find_bin(name: str) -> str | None:
    """The newest PostgreSQL installation's ``name`` (``initdb``, ``pg_ctl``), or None."""
    found = shutil.which(name)
    if found and name != "initdb":  # Debian's PATH has wrappers, not the real initdb
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return candidates[-1] if candidates else found


def _as_user(argv: Sequence[str]) -> list[str]:
    if os.geteuid() != 0:
        return list(argv)
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *argv]


class Cluster:
    """One PostgreSQL server in a temporary folder, on ``127.0.0.1:<port>``, trust auth."""

    def __init__(self) -> None:
        initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise ClusterError("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
        self._pg_ctl = pg_ctl
        self.root = Path(tempfile.mkdtemp(prefix="mediatasks-chaos-pg-", dir="/tmp"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.log_path = self.root / "server.log"
        self.port = processes.free_port()
        if os.geteuid() == 0:
            os.chown(self.root, NOBODY, NOBODY)
        done = subprocess.run(
            _as_user([initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", *_INITDB]),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            shutil.rmtree(self.root, ignore_errors=True)
            raise ClusterError(f"initdb failed: {done.stderr.strip()}")
        with (self.data / "postgresql.conf").open("a") as conf:
            # Loopback only, and its socket in its own folder.  Everything else stays at
            # PostgreSQL's defaults (autovacuum included), as a deployment would have it.
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\n"
                "max_connections = 200\n"
            )

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        """The URL of ``database`` on this cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str, timeout_s: float = 60) -> None:
        done = subprocess.run(
            _as_user([self._pg_ctl, "-D", str(self.data), *args]),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if done.returncode != 0:
            tail = (
                self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            )
            raise ClusterError(f"pg_ctl {' '.join(args)} failed: {done.stderr.strip()}\n{tail}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._ctl("start", "-w", "-t", "60", "-l", str(self.log_path))

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: sessions are ended, as ``docker stop`` does to the image's
        PostgreSQL; ``immediate``: a crash, no checkpoint)."""
        self._ctl("stop", "-w", "-t", "60", "-m", mode)

    def running(self) -> bool:
        done = subprocess.run(
            _as_user([self._pg_ctl, "-D", str(self.data), "status"]),
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """A new database, empty or a copy of ``template``; its URL."""
        copy = f' TEMPLATE "{template}"' if template else ""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{copy}'.encode())
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, ending whatever still uses it (an autovacuum worker included)."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())

    def wait_ready(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.admin_url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def destroy(self) -> None:
        """Stop the server (if it runs) and remove its folder."""
        try:
            if self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
