"""A PostgreSQL server of the test's own: its own data directory and port, so the test can stop and
start it (the shared server of EPOCHLINE_TEST_POSTGRES is never touched).

Needs Debian's postgresql server binaries (``/usr/lib/postgresql/*/bin``); the server runs as the
``postgres`` user when the tests run as root (PostgreSQL refuses to run as root). Password
authentication over TCP on 127.0.0.1, so the tests also cover passwords in URIs, PGPASSWORD and
``.pgpass``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from typing import List, Optional

USER, PASSWORD, DB = "faults", "s3cretPW", "faults"


def _bin_dir() -> Optional[str]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(found[-1]) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        if self.bin is None:
            raise RuntimeError("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
        self.root = tempfile.mkdtemp(prefix="epochline-pg-")
        self.data = os.path.join(self.root, "data")
        self.port = _free_port()
        self._as: List[str] = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root and there is no 'postgres' user to run the server"
                ) from None
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        pwfile = os.path.join(self.root, "pw")
        with open(pwfile, "w") as f:
            f.write("unused-superuser-password\n")
        if self._as:
            os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
        self._run(
            [
                f"{self.bin}/initdb",
                "-D",
                self.data,
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\n"
            )
        self.start()
        self.psql(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
        self.psql(f"CREATE DATABASE {DB} OWNER {USER}")

    def _run(self, cmd: List[str], check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(self._as + cmd, capture_output=True, text=True, check=check, timeout=120)

    def psql(self, sql: str) -> str:
        return self._run(
            [
                f"{self.bin}/psql",
                "-h",
                self.root,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qAtc",
                sql,
            ]
        ).stdout

    def uri(self, password: bool = True, **params: str) -> str:
        auth = f"{USER}:{PASSWORD}" if password else USER
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{DB}" + (f"?{query}" if query else "")

    def start(self) -> None:
        self._run(
            [
                f"{self.bin}/pg_ctl",
                "-D",
                self.data,
                "-l",
                os.path.join(self.root, "log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )

    def stop(self) -> None:
        self._run([f"{self.bin}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop"])

    def is_up(self) -> bool:
        return (
            self._run(
                [f"{self.bin}/pg_isready", "-h", "127.0.0.1", "-p", str(self.port)], check=False
            ).returncode
            == 0
        )

    def destroy(self) -> None:
        try:
            self._run([f"{self.bin}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"], check=False)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
